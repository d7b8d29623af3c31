"""``fashion-cnn predict RUN photo.jpg shirt.png some_dir/``: the model on your own pictures.

    fashion-cnn predict runs/NAME sneaker.jpg --top-k 3
    fashion-cnn predict runs/NAME photos/ --csv predictions.csv --show-input --show-input-dir seen/
    fashion-cnn predict runs/NAME drawing.png --invert never --no-trim --json

Each picture is decoded and made to look like Fashion-MNIST (see ``fashion_cnn.data.images``: grayscale,
inverted when the background is light, background trimmed, levelled to black, padded to a square, 28×28);
``--show-input`` writes those 28×28 images (to ``model-input/``, or ``--show-input-dir DIR``) so you can see
what the model saw.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from ..data.images import INVERT_CHOICES, Preprocessing, list_images, load_image, to_png
from ..errors import FashionCNNError
from ..files import atomic_open, atomic_write_bytes
from .common import class_names, print_json
from .inspect import plot_prediction


def add_image_args(p: argparse.ArgumentParser) -> None:
    """The options of ``predict`` that apply to image files."""
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (PNG, JPEG, WebP, BMP, GIF) or folders of them, instead of --index")
    g = p.add_argument_group("image files")
    g.add_argument("--top-k", type=int, default=3, metavar="K", help="print the K most likely classes of each image (default: 3)")
    g.add_argument("--csv", metavar="FILE", help="also write every image's probabilities to a CSV file")
    g.add_argument("--show-input", action="store_true", help="write the 28×28 image the model saw for each file, as PNG, to --show-input-dir")
    g.add_argument("--show-input-dir", metavar="DIR", help="where --show-input writes (default: ./model-input; implies --show-input)")
    g.add_argument("--invert", choices=INVERT_CHOICES, default="auto", help="make the object light on black: when the background is light (auto), always or never")
    g.add_argument("--no-trim", dest="trim", action="store_false", help="keep the whole picture instead of cropping to the object")
    g.add_argument("--no-level", dest="level", action="store_false", help="keep the background's shade instead of making it black")
    g.add_argument("--stretch", dest="keep_aspect", action="store_false", help="stretch to a square instead of padding (distorts the shape)")


def preprocessing_from_args(args, model) -> Preprocessing:
    size = int(getattr(model, "meta", {}).get("input", {}).get("height", 28))
    return Preprocessing(size=size, invert=args.invert, trim=args.trim, level=args.level, keep_aspect=args.keep_aspect)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files as given, folders as the images directly inside them (sorted)."""
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise FashionCNNError(f"{path} holds no images (.png, .jpg, .jpeg, .webp, .bmp, .gif); pass image files or a folder of them")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FashionCNNError(f"{path} does not exist; pass image files or folders of images")
    return files


def run_predict_images(args, model) -> int:
    """``model``: a classifier from ``fashion_cnn.inference.engines.load_classifier`` (torch or onnx)."""
    if args.json and args.csv:
        raise FashionCNNError("--json and --csv both choose the output; pass one of them")
    if args.top_k < 1:
        raise FashionCNNError(f"--top-k must be at least 1, got {args.top_k}")
    options = preprocessing_from_args(args, model)
    files = expand_paths(args.images)
    if getattr(args, "plot", None) and len(files) != 1:
        raise FashionCNNError(f"--plot draws one image's probabilities but {len(files)} images were given; pass a single image file")
    inputs = np.stack([load_image(f, options) for f in files])
    probs = model.predict_proba(inputs)
    names = class_names(model, args.lang)
    show_dir = args.show_input_dir or ("model-input" if args.show_input else None)
    shown = _write_inputs(show_dir, files, inputs) if show_dir else [None] * len(files)
    results = [_result(f, p, names, args.top_k, s) for f, p, s in zip(files, probs, shown)]
    plot_prediction(args, probs[0], names, source=files[0].name)  # --plot FILE (one image)
    if args.csv:
        _write_csv(args.csv, results, names)
    if args.json:
        print_json({"preprocessing": options.to_dict(), "images": results})
        return 0
    width = max(len(str(f)) for f in files)
    for r in results:
        top = r["top_k"]
        rest = ", ".join(f"{t['name']} {t['probability']:.1%}" for t in top[1:])
        print(f"{r['file']:<{width}}  {top[0]['name']} ({top[0]['probability']:.1%})" + (f"   then {rest}" if rest else ""))
    if show_dir:
        print(f"Wrote the {options.size}×{options.size} model inputs to {show_dir}/")
    if args.csv:
        print(f"Wrote {args.csv}")
    return 0


def _result(file: Path, probs: np.ndarray, names: list[str], k: int, shown: Path | None) -> dict:
    order = np.argsort(-probs, kind="stable")[:k]
    result = {
        "file": str(file),
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
            w.writerow([r["file"], r["predicted"]["name"], f"{r['predicted']['probability']:.6f}", *(f"{r['probabilities'][n]:.6f}" for n in names)])
