"""``fashion-cnn predict``: one image's class probabilities, from a split of the dataset or from your own files.

    fashion-cnn predict runs/NAME --split val --index 0 --lang ko      # the tutorial's handbag: 가방
    fashion-cnn predict runs/NAME --split val --index 0 --plot probs.png
    fashion-cnn predict runs/NAME sneaker.jpg photos/ --top-k 3 --csv predictions.csv
    fashion-cnn predict runs/NAME drawing.png --invert never --no-trim --json
    fashion-cnn predict runs/NAME --index 0 --engine onnx              # runs/NAME/model.onnx with onnxruntime

Your own pictures are decoded and made to look like Fashion-MNIST (see ``fashion_cnn.data.images``:
grayscale, inverted when the background is light, background trimmed, levelled to black, padded to a
square, 28×28); ``--show-input`` writes those 28×28 images (to ``model-input/``, or ``--show-input-dir DIR``)
so you can see what the model saw.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from ..data.images import INVERT_CHOICES, Preprocessing, list_images, load_image, to_png
from ..errors import FashionCNNError
from ..files import atomic_open, atomic_write_bytes
from ..inference.engines import ENGINES, Classifier, load_classifier
from ..inference.ood import OOD_ACTIONS, verdict
from ..inspection.figures import check_format, save_figure
from ..inspection.plots import plot_probabilities
from ..models.metadata import class_names, input_side, ood_of
from ..terminal import ljust, width
from .common import add_lang_arg, add_saved_model_args, check_index, model_split, print_json, shown_path, use_agg, wrote


def register(sub) -> None:
    p = sub.add_parser("predict", help="class probabilities of one image of a split, or of your own image files")
    add_saved_model_args(p)
    p.add_argument("--index", type=int, help="image number within the split (val 0 is the tutorial's handbag); or pass image files")
    add_lang_arg(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="run the safetensors model with PyTorch, or RUN/model.onnx (or an .onnx file) with onnxruntime (default: onnx for an .onnx file, else torch)",
    )
    add_image_args(p)
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average each image's probabilities with its mirror image's")
    p.add_argument("--plot", metavar="FILE", help="also draw the probabilities as a bar chart (.png, .svg, .pdf)")
    add_ood_arg(p)
    p.set_defaults(run=run)


def add_ood_arg(p: argparse.ArgumentParser) -> None:
    """``--ood warn|reject``: what an image the model's detector finds unlike its training images gets."""
    p.add_argument(
        "--ood",
        choices=OOD_ACTIONS,
        default="warn",
        help="for an image that does not look like the training images (the model's not-clothing score over its threshold): "
        "warn (give the class and say so) or reject (no class) (default: warn)",
    )


def run(args) -> int:
    if (args.index is None) == (not args.images):
        raise FashionCNNError("pass either --index N (an image of a split) or image files, not both and not neither")
    model = load_classifier(args.model_or_run, args.engine, tta=args.tta)
    if args.images:
        return run_images(args, model)
    data = model_split(model, args.split, args.dataset, args.data_dir, source=args.model_or_run)
    check_index(args.index, data, args.split)
    probs, score = model.predict_with_scores(data.images[args.index])
    names = class_names(model.meta, args.lang, count=len(probs))
    top, true = int(probs.argmax()), int(data.labels[args.index])
    unlike = verdict(score, model.meta, args.lang)
    rejected = unlike is not None and args.ood == "reject"
    plot_prediction(args, probs, names, true, source=f"{args.split}[{args.index}]")  # --plot FILE
    if args.json:
        print_json(
            {
                "split": args.split,
                "index": args.index,
                "probabilities": {name: float(p) for name, p in zip(names, probs)},
                "predicted": None if rejected else {"index": top, "name": names[top], "probability": float(probs[top])},
                "true": {"index": true, "name": names[true]},
                **ood_fields(score, model.meta),
            }
        )
        return 0
    cells = width(names)
    print(f"{args.split}[{args.index}] (true class: {names[true]})")
    for i, (name, p) in enumerate(zip(names, probs)):
        print(f"  {i}  {ljust(name, cells)}  {p:.4f}  {'█' * round(p * 30)}")
    print(f"Not predicted: {unlike}" if rejected else f"Predicted: {names[top]} ({probs[top]:.2%})")
    if unlike and not rejected:
        print(f"Warning: {unlike}")
    return 0


def ood_fields(score, meta: dict) -> dict:
    """What ``--json`` adds for a model with a not-clothing detector: ``in_distribution``, ``ood_score``, ``ood_threshold``."""
    settings = ood_of(meta)
    if score is None or settings is None:
        return {}
    return {"in_distribution": bool(score <= settings["threshold"]), "ood_score": float(score), "ood_threshold": settings["threshold"]}


def plot_prediction(args, probs, names, true: int | None = None, source: str | None = None) -> None:
    """``--plot FILE``: the 10-bar chart of one image's probabilities."""
    if not args.plot:
        return
    check_format(args.plot)
    use_agg()
    top = int(probs.argmax())
    title = (
        (f"{source} · " if source else "")
        + f"predicted {names[top]} ({probs[top]:.1%})"
        + ("" if true is None else f" · true {names[true]}")
    )
    wrote([save_figure(plot_probabilities(probs, names, true, title), args.plot)], quiet=args.json)


def add_image_args(p: argparse.ArgumentParser) -> None:
    """The options of ``predict`` that apply to image files."""
    p.add_argument(
        "images", nargs="*", metavar="IMAGE", help="image files (PNG, JPEG, WebP, BMP, GIF) or folders of them, instead of --index"
    )
    g = p.add_argument_group("image files")
    g.add_argument("--top-k", type=int, default=3, metavar="K", help="print the K most likely classes of each image (default: 3)")
    g.add_argument("--csv", metavar="FILE", help="also write every image's probabilities to a CSV file")
    g.add_argument(
        "--show-input", action="store_true", help="write the 28×28 image the model saw for each file, as PNG, to --show-input-dir"
    )
    g.add_argument("--show-input-dir", metavar="DIR", help="where --show-input writes (default: ./model-input; implies --show-input)")
    g.add_argument(
        "--invert",
        choices=INVERT_CHOICES,
        default="auto",
        help="make the object light on black: when the background is light (auto), always or never",
    )
    g.add_argument("--no-trim", dest="trim", action="store_false", help="keep the whole picture instead of cropping to the object")
    g.add_argument("--no-level", dest="level", action="store_false", help="keep the background's shade instead of making it black")
    g.add_argument(
        "--stretch", dest="keep_aspect", action="store_false", help="stretch to a square instead of padding (distorts the shape)"
    )


def preprocessing_from_args(args, model) -> Preprocessing:
    size = input_side(model.meta)
    return Preprocessing(size=size, invert=args.invert, trim=args.trim, level=args.level, keep_aspect=args.keep_aspect)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given, folders as the images directly inside them (sorted)."""
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise FashionCNNError(
                    f"{path} holds no images (.png, .jpg, .jpeg, .webp, .bmp, .gif); pass image files or a folder of them"
                )
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise FashionCNNError(f"{path} is not a regular file (a FIFO, a device or a socket); pass image files or folders of images")
        else:
            raise FashionCNNError(f"{path} does not exist; pass image files or folders of images")
    return files


def run_images(args, model: Classifier) -> int:
    """``predict RUN photo.jpg ...``: each file decoded, made to look like Fashion-MNIST, and classified."""
    if args.json and args.csv:
        raise FashionCNNError("--json and --csv both choose the output; pass one of them")
    if args.top_k < 1:
        raise FashionCNNError(f"--top-k must be at least 1, got {args.top_k}")
    options = preprocessing_from_args(args, model)
    files = expand_paths(args.images)
    if args.plot and len(files) != 1:
        raise FashionCNNError(f"--plot draws one image's probabilities but {len(files)} images were given; pass a single image file")
    inputs = np.stack([load_image(f, options) for f in files])
    probs, scores = model.predict_with_scores(inputs)
    names = class_names(model.meta, args.lang, count=probs.shape[1])
    show_dir = args.show_input_dir or ("model-input" if args.show_input else None)
    shown = _write_inputs(show_dir, files, inputs) if show_dir else [None] * len(files)
    scores = [None] * len(files) if scores is None else scores
    results = [_result(f, p, names, args.top_k, s) | ood_fields(o, model.meta) for f, p, s, o in zip(files, probs, shown, scores)]
    for r, o in zip(results, scores):
        unlike = verdict(o, model.meta, args.lang)
        if unlike and args.ood == "reject":
            r["predicted"], r["top_k"] = None, []
        if unlike:
            r["verdict"] = unlike
    plot_prediction(args, probs[0], names, source=files[0].name)  # --plot FILE (one image)
    if args.csv:
        _write_csv(args.csv, results, names)
    if args.json:
        print_json({"preprocessing": options.to_dict(), "images": results})
        return 0
    cells = width(str(f) for f in files)
    for r in results:
        top = r["top_k"]
        if not top:  # --ood reject
            print(f"{ljust(r['file'], cells)}  not predicted: {r['verdict']}")
            continue
        rest = ", ".join(f"{t['name']} {t['probability']:.1%}" for t in top[1:])
        warning = f"   ! {r['verdict']}" if "verdict" in r else ""
        print(f"{ljust(r['file'], cells)}  {top[0]['name']} ({top[0]['probability']:.1%})" + (f"   then {rest}" if rest else "") + warning)
    if show_dir:
        print(f"Wrote the {options.size}×{options.size} model inputs to {show_dir}/")
    if args.csv:
        print(f"Wrote {args.csv}")
    return 0


def _result(file: Path, probs: np.ndarray, names: list[str], k: int, shown: Path | None) -> dict:
    order = np.argsort(-probs, kind="stable")[:k]
    result = {
        "file": shown_path(file),
        "predicted": {"index": int(order[0]), "name": names[order[0]], "probability": float(probs[order[0]])},
        "top_k": [{"index": int(i), "name": names[i], "probability": float(probs[i])} for i in order],
        "probabilities": {name: float(p) for name, p in zip(names, probs)},
    }
    if shown is not None:
        result["input"] = str(shown)
    return result


def _write_inputs(folder: str, files: list[Path], inputs: np.ndarray) -> list[Path]:
    out, used = [], set()
    for f, x in zip(files, inputs):
        stem, n = f.stem, 2
        while stem in used:  # photos/a.jpg and more/a.png must not overwrite each other
            stem, n = f"{f.stem}-{n}", n + 1
        used.add(stem)
        path = Path(folder) / f"{stem}.png"
        atomic_write_bytes(path, to_png(x))
        out.append(path)
    return out


def _write_csv(path: str, results: list[dict], names: list[str]) -> None:
    with atomic_open(path, "w") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "predicted", "probability", *names])
        for r in results:
            w.writerow(
                [
                    r["file"],
                    r["predicted"]["name"] if r["predicted"] else "not clothing",
                    f"{r['predicted']['probability']:.6f}" if r["predicted"] else "",
                    *(f"{r['probabilities'][n]:.6f}" for n in names),
                ]
            )
