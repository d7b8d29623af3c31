"""``fashion-cnn show``: an image of a split as the tutorial shows it, or a labelled gallery.

fashion-cnn show --split val --index 0 --data-dir ../shared/data/fashion-mnist     # the handbag
fashion-cnn show --grid 5x5 --lang ko --data-dir ../shared/data/fashion-mnist      # a labelled gallery
"""

from __future__ import annotations

import re

from ..data.loading import load_split
from ..data.registry import get_spec
from ..data.types import SPLITS
from ..errors import FashionCNNError
from ..inspection.figures import check_format, save_figure
from ..inspection.plots import plot_images, show_image
from .common import add_data_args, add_dpi_arg, add_json_arg, add_lang_arg, check_index, report_written, use_agg


def register(sub) -> None:
    p = sub.add_parser("show", help="draw an image of a split, or a labelled grid of them")
    p.add_argument("--split", choices=SPLITS, default="val", help="which split (default: val, the tutorial's)")
    p.add_argument(
        "--index", type=int, default=0, help="image number within the split (default 0: the tutorial's handbag); first image of a grid"
    )
    p.add_argument("--grid", metavar="ROWSxCOLS", help="draw a gallery of ROWS x COLS images with their labels, e.g. 5x5")
    p.add_argument("--cmap", default="gray_r", help="matplotlib colour map (default gray_r: dark on white, as in the tutorial)")
    add_lang_arg(p)
    add_data_args(p)
    add_dpi_arg(p)
    p.add_argument("-o", "--output", help="image file (default: SPLIT-INDEX.png, or SPLIT-grid-ROWSxCOLS.png)")
    add_json_arg(p)
    p.set_defaults(run=run)


def parse_grid(text: str) -> tuple[int, int]:
    """``"5x5"`` → (5, 5).

    Example:
        >>> parse_grid("5x5"), parse_grid("2 × 8")
        ((5, 5), (2, 8))
    """
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m or not (0 < int(m[1]) <= 50 and 0 < int(m[2]) <= 50):
        raise FashionCNNError(f"--grid {text!r} is not ROWSxCOLS with 1 to 50 each; write it like 5x5")
    return int(m[1]), int(m[2])


def run(args) -> int:
    grid = parse_grid(args.grid) if args.grid else None
    output = args.output or (f"{args.split}-grid-{grid[0]}x{grid[1]}.png" if grid else f"{args.split}-{args.index}.png")
    check_format(output)
    use_agg()
    data = load_split(args.split, args.dataset, args.data_dir)
    names = get_spec(args.dataset).class_names(args.lang)
    check_index(args.index, data, args.split)
    stop = args.index + 1
    if grid:
        rows, cols = grid
        stop = min(len(data), args.index + rows * cols)
        labels = [names[int(k)] for k in data.labels[args.index : stop]]
        fig = plot_images(data.images[args.index : stop], labels, rows, cols, cmap=args.cmap)
    else:
        fig = show_image(data.images[args.index], f"{args.split}[{args.index}]: {names[int(data.labels[args.index])]}", cmap=args.cmap)
    shown = range(args.index, stop) if grid else [args.index]
    report_written(
        args,
        [save_figure(fig, output, args.dpi)],
        split=args.split,
        images=[{"index": i, "label": int(data.labels[i]), "name": names[int(data.labels[i])]} for i in shown],
    )
    return 0
