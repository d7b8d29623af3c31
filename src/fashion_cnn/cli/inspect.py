"""``fashion-cnn plot-model | plot-history | show | report``: the tutorial's pictures, one command each.

    fashion-cnn plot-model --show-shapes --dpi 300 -o cnn-architecture.png       # the architecture diagram
    fashion-cnn plot-history runs/tutorial                                       # loss.png, accuracy.png
    fashion-cnn show --split val --index 0 --data-dir ../shared/data/fashion-mnist   # the handbag
    fashion-cnn show --grid 5x5 --lang ko --data-dir ../shared/data/fashion-mnist    # a labelled gallery
    fashion-cnn report runs/tutorial --data-dir ../shared/data/fashion-mnist     # runs/tutorial/report.html

Also here: the options the pictures add to ``predict`` (``--plot``) and ``evaluate`` (``--report``,
``--top-losses``, ``--out-dir``). Files are written atomically; the format follows the extension.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..data.dataset import SPLITS
from ..errors import FashionCNNError
from .common import add_data_args, add_model_args, model_from_args


def _use_agg() -> None:
    """Draw off-screen: the command line never opens a window (and there may be no display)."""
    import matplotlib

    matplotlib.use("Agg")


def _wrote(paths, quiet: bool = False) -> None:
    if paths:
        print(f"Wrote {', '.join(str(p) for p in paths)}", file=sys.stderr if quiet else sys.stdout)


def _dpi_arg(p) -> None:
    p.add_argument("--dpi", type=float, default=None, help="dots per inch for PNG/JPEG (default 150; 300 for print)")


def register(sub) -> None:
    p = sub.add_parser("plot-model", help="draw the architecture: one box per layer (Keras' plot_model)")
    add_model_args(p)
    p.add_argument("--show-shapes", action="store_true", help="show each layer's input and output shape")
    _dpi_arg(p)
    p.add_argument("-o", "--output", default="model.png", help="image file; .png, .svg or .pdf (default: model.png)")
    p.set_defaults(run=run_plot_model)

    p = sub.add_parser("plot-history", help="draw a run's loss and accuracy per epoch (loss.png, accuracy.png)")
    p.add_argument("run_dir", metavar="RUN", help="a run directory written by 'fashion-cnn train'")
    p.add_argument("-o", "--out-dir", metavar="DIR", help="folder for loss.png and accuracy.png (default: the run directory)")
    _dpi_arg(p)
    p.set_defaults(run=run_plot_history)

    p = sub.add_parser("show", help="draw an image of a split, or a labelled grid of them")
    p.add_argument("--split", choices=SPLITS, default="val", help="which split (default: val, the tutorial's)")
    p.add_argument("--index", type=int, default=0, help="image number within the split (default 0: the tutorial's handbag); first image of a grid")
    p.add_argument("--grid", metavar="ROWSxCOLS", help="draw a gallery of ROWS x COLS images with their labels, e.g. 5x5")
    p.add_argument("--cmap", default="gray_r", help="matplotlib colour map (default gray_r: dark on white, as in the tutorial)")
    p.add_argument("--lang", choices=("en", "ko"), default="en", help="class names in English or the tutorial's Korean")
    add_data_args(p)
    _dpi_arg(p)
    p.add_argument("-o", "--output", help="image file (default: SPLIT-INDEX.png, or SPLIT-grid-ROWSxCOLS.png)")
    p.set_defaults(run=run_show)

    p = sub.add_parser("report", help="write a run's self-contained HTML report (curves, confusion matrix, top losses...)")
    p.add_argument("run_dir", metavar="RUN", help="a run directory written by 'fashion-cnn train'")
    p.add_argument("--split", choices=SPLITS, default="test", help="split for the confusion matrix, per-class table and top losses (default: test)")
    p.add_argument("--top-losses", type=int, default=16, metavar="N", help="how many most-confidently-wrong images to show (default 16; 0: none)")
    add_data_args(p, dataset_default=None)
    p.add_argument("-o", "--output", help="HTML file (default: RUN/report.html)")
    p.set_defaults(run=run_report)


def run_plot_model(args) -> int:
    from ..inspection.architecture import plot_model
    from ..inspection.figures import check_format, save_figure

    check_format(args.output)  # before any work
    _use_agg()
    model = model_from_args(args)
    _wrote([save_figure(plot_model(model, show_shapes=args.show_shapes), args.output, args.dpi)])
    return 0


def run_plot_history(args) -> int:
    from ..inspection.run_outputs import write_curves

    _use_agg()
    _wrote(write_curves(args.run_dir, out_dir=args.out_dir, dpi=args.dpi))
    return 0


def parse_grid(text: str) -> tuple[int, int]:
    """``"5x5"`` → (5, 5)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m or not (0 < int(m[1]) <= 50 and 0 < int(m[2]) <= 50):
        raise FashionCNNError(f"--grid {text!r} is not ROWSxCOLS with 1 to 50 each; write it like 5x5")
    return int(m[1]), int(m[2])


def run_show(args) -> int:
    from ..data.dataset import load_split
    from ..data.registry import get_spec
    from ..inspection.figures import check_format, save_figure
    from ..inspection.plots import plot_images, show_image

    grid = parse_grid(args.grid) if args.grid else None
    output = args.output or (f"{args.split}-grid-{grid[0]}x{grid[1]}.png" if grid else f"{args.split}-{args.index}.png")
    check_format(output)
    _use_agg()
    data = load_split(args.split, args.dataset, args.data_dir)
    names = get_spec(args.dataset).class_names(args.lang)
    if not 0 <= args.index < len(data):
        raise FashionCNNError(f"--index {args.index} is out of range: the {args.split} split has {len(data):,} images (0 to {len(data) - 1})")
    if grid:
        rows, cols = grid
        stop = min(len(data), args.index + rows * cols)
        labels = [names[int(k)] for k in data.labels[args.index:stop]]
        fig = plot_images(data.images[args.index:stop], labels, rows, cols, cmap=args.cmap)
    else:
        fig = show_image(data.images[args.index], f"{args.split}[{args.index}]: {names[int(data.labels[args.index])]}", cmap=args.cmap)
    _wrote([save_figure(fig, output, args.dpi)])
    return 0


def _run_data_dir(run_dir: Path, data_dir: str | None) -> str | None:
    """--data-dir, else the data folder the run was trained from when it still exists (and no $FASHION_CNN_DATA)."""
    import json

    from ..data.fetch import DATA_ENV
    from ..training.run_dir import CONFIG

    if data_dir or os.environ.get(DATA_ENV):
        return data_dir
    try:
        recorded = json.loads((run_dir / CONFIG).read_text()).get("data_dir")
    except (OSError, ValueError):
        return None
    return recorded if recorded and Path(recorded).is_dir() else None


def run_report(args) -> int:
    from ..inspection.analysis import analyze
    from ..inspection.report import write_report
    from ..models.files import load_model
    from .common import model_split

    run = Path(args.run_dir)
    if not run.is_dir():
        raise FashionCNNError(f"{run} is not a folder; pass a run directory written by 'fashion-cnn train'")
    if args.top_losses < 0:
        raise FashionCNNError(f"--top-losses must be 0 or more, got {args.top_losses}")
    _use_agg()
    model = load_model(run)
    data = model_split(model, args.split, args.dataset, _run_data_dir(run, args.data_dir))
    analysis = analyze(model, data, split=args.split)
    _wrote([write_report(run, args.output, analysis, model=model, top_losses=args.top_losses)])
    return 0


# --- the options pictures add to ``predict`` and ``evaluate`` (cli/evaluate.py calls these) ---------------

def add_predict_args(p) -> None:
    p.add_argument("--plot", metavar="FILE", help="also draw the probabilities as a bar chart (.png, .svg, .pdf)")


def plot_prediction(args, probs, names, true: int | None = None, source: str | None = None) -> None:
    """``predict --plot FILE``: the 10-bar chart of one image's probabilities."""
    if not getattr(args, "plot", None):
        return
    from ..inspection.figures import check_format, save_figure
    from ..inspection.plots import plot_probabilities

    check_format(args.plot)
    _use_agg()
    top = int(probs.argmax())
    title = (f"{source} · " if source else "") + f"predicted {names[top]} ({probs[top]:.1%})" + ("" if true is None else f" · true {names[true]}")
    _wrote([save_figure(plot_probabilities(probs, names, true, title), args.plot)], quiet=getattr(args, "json", False))


def add_evaluate_args(p) -> None:
    p.add_argument("--report", action="store_true", help="print per-class precision / recall / F1 and write confusion.png")
    p.add_argument("--top-losses", type=int, default=0, metavar="N", help="write top-losses.png: the N most confidently wrong images")
    p.add_argument("-o", "--out-dir", metavar="DIR", help="folder for the pictures (default: the run directory, else the current folder)")
    p.add_argument("--lang", choices=("en", "ko"), default="en", help="class names in the pictures and table: English or Korean")


def evaluate_outputs(args, model, data) -> dict:
    """``evaluate --report / --top-losses``: the analysis, its files, and (unless --json) its printout.

    Returns what to add to ``evaluate --json``'s output (empty when neither option is given).
    """
    if not (args.report or args.top_losses):
        return {}
    from ..inspection.analysis import analyze
    from ..inspection.figures import save_figure
    from ..inspection.plots import plot_confusion_matrix, plot_top_losses
    from .common import class_names

    if args.top_losses < 0:
        raise FashionCNNError(f"--top-losses must be 0 or more, got {args.top_losses}")
    _use_agg()
    out_dir = Path(args.out_dir) if args.out_dir else (Path(args.model_or_run) if Path(args.model_or_run).is_dir() else Path("."))
    analysis = analyze(model, data, class_names(model, args.lang), split=args.split)
    written, extra = [], {}
    if args.report:
        written.append(save_figure(plot_confusion_matrix(analysis.confusion, analysis.names), out_dir / "confusion.png"))
        extra.update(per_class=analysis.per_class, averages=analysis.averages, confusion=analysis.confusion.tolist())
        if not args.json:
            print(analysis.report_text())
    if args.top_losses:
        idx = analysis.top_losses(args.top_losses)
        written.append(save_figure(plot_top_losses(analysis, args.top_losses), out_dir / "top-losses.png"))
        extra["top_losses"] = [{"index": int(i), "true": analysis.names[analysis.labels[i]], "predicted": analysis.names[analysis.predicted[i]],
                                "probability": float(analysis.probs[i, analysis.predicted[i]]), "loss": float(analysis.losses[i])} for i in idx]
    extra["files"] = [str(p) for p in written]
    _wrote(written, quiet=args.json)
    return extra
