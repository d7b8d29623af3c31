"""``fashion-cnn import``: a Keras model file (the tutorial's own checkpoint) as a fashion-cnn model file or run.

fashion-cnn import best-cnn-model.keras                           # → best-cnn-model.safetensors
fashion-cnn import best-cnn-model.h5 -o cnn.safetensors --dataset fashion-mnist
fashion-cnn import best-cnn-model.keras --run runs/keras          # → a run directory: report and every RUN command take it
fashion-cnn evaluate runs/keras --data-dir ../shared/data/fashion-mnist

No Keras or TensorFlow is needed: ``fashion_cnn.models.keras_import`` reads the file (JSON and h5py only).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import FashionCNNError
from ..files import resolved
from ..models.files import save_model
from ..models.keras_import import import_keras
from ..models.summary import summary
from ..rundir import CONFIG, RunDir, check_run_name
from .common import add_json_arg, print_json
from .export import RUN_MODELS


def register(sub) -> None:
    p = sub.add_parser("import", help="read a Keras .keras or .h5 model (a Sequential like the tutorial's) into a fashion-cnn model file")
    p.add_argument("keras_file", metavar="MODEL.keras|MODEL.h5", help="the file Keras' model.save(...) wrote")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="FILE", help="the model file to write (default: the input's name with .safetensors)")
    where.add_argument(
        "--run",
        dest="run_dir",
        metavar="DIR",
        help="write a new run directory instead (DIR/best.safetensors, config.json, summary.txt), for 'report' and every command that takes RUN",
    )
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        help="what the model was trained on, for its class names: fashion-mnist (default), mnist, kmnist or folder:PATH",
    )
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    source = Path(args.keras_file)
    output = Path(args.output) if args.output else source.with_suffix(".safetensors")
    if args.run_dir is None and resolved(output) == resolved(source):
        raise FashionCNNError(f"the import would overwrite its input {source}; pass another -o FILE")
    if args.run_dir is None and output.name in RUN_MODELS and (resolved(output).parent / CONFIG).is_file():
        raise FashionCNNError(
            f"the import would overwrite {output.name} of the run {output.parent}, which training and --resume use; pass another -o FILE"
        )
    if args.run_dir is not None:
        check_run_name(Path(args.run_dir).name)
        if Path(args.run_dir).exists() and (not Path(args.run_dir).is_dir() or any(Path(args.run_dir).iterdir())):
            raise FashionCNNError(f"{args.run_dir} already exists and is not an empty folder; pass another --run DIR")
    model = import_keras(source, args.dataset)  # before anything is created: a refused file leaves nothing behind
    if args.run_dir is None:
        save_model(output, model)
    else:
        run_dir = RunDir.create(Path(args.run_dir).parent, Path(args.run_dir).name, "keras")
        output = run_dir.best
        try:
            run_dir.write_config({"model": model.arch["name"], "dataset": args.dataset, "imported_from": model.meta["keras"]})
            run_dir.write_summary(summary(model, print_fn=lambda text: None))
            save_model(output, model)
        except BaseException:  # a full disk, say: no half-made run is left under the name
            shutil.rmtree(run_dir.path, ignore_errors=True)
            raise
    params = sum(p.numel() for p in model.parameters())
    pixels = "0..255 pixels (its first layer rescales them)" if _rescales(model) else "pixels / 255, as the tutorial feeds it"
    if args.json:
        print_json({"path": str(output), "arch": model.arch, "parameters": params, "classes": model.meta["classes"], **model.meta["keras"]})
    else:
        print(
            f"Wrote {output} ({model.arch['name']}, {params:,} parameters, the {len(model.meta['classes'])} classes of {args.dataset}; "
            f"{model.meta['source']}; it takes {pixels})"
        )
    return 0


def _rescales(model) -> bool:
    layers = model.arch["kwargs"].get("layers") or [{}]
    return layers[0].get("type") == "Rescaling"
