"""Arguments and output shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from ..data.fetch import DATA_ENV
from ..data.folder import is_folder_dataset
from ..data.loading import load_split
from ..data.types import SPLITS, LabeledImages
from ..errors import FashionCNNError
from ..experiment.config import TrainConfig, flag_of, value_type
from ..kernels.backend import MODES as KERNEL_MODES
from ..models.files import load_model
from ..models.registry import build_model
from ..rundir import CONFIG, RunDir


def add_config_args(p: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """One option per ``TrainConfig`` field (``names``: only those), made from its type, help and choices.

    Only the options typed reach ``args`` (every default is ``argparse.SUPPRESS``; ``typed_settings`` collects
    them), so ``train --resume`` can tell ``--batch-size 32`` from the default 32.
    """
    for f in fields(TrainConfig):
        if names is not None and f.name not in names:
            continue
        meta = f.metadata
        default = "" if f.default is None else f" (default: {f.default})"
        if value_type(f.name) is bool:
            # A boolean setting is a switch that turns the tutorial's default off.
            p.add_argument(
                flag_of(f.name), dest=f.name, action="store_const", const=not f.default, default=argparse.SUPPRESS, help=meta["help"]
            )
        else:
            p.add_argument(
                flag_of(f.name),
                *meta["aliases"],
                dest=f.name,
                type=value_type(f.name),
                choices=meta["choices"],
                metavar=meta["metavar"],
                default=argparse.SUPPRESS,
                help=meta["help"] + default,
            )


def typed_settings(args) -> dict:
    """The ``TrainConfig`` settings typed on the command line (``add_config_args``'s options), by field name."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}


def config_from_args(args) -> TrainConfig:
    """The ``TrainConfig`` the typed options describe: ``--recipe``'s values under them, else the defaults."""
    given = typed_settings(args)
    return TrainConfig.from_recipe(given.pop("recipe"), **given) if given.get("recipe") else TrainConfig(**given)


def add_data_args(p: argparse.ArgumentParser, dataset_default: str | None = "fashion-mnist") -> None:
    p.add_argument(
        "--data-dir", metavar="DIR", help="folder with the four IDX .gz files (default $FASHION_CNN_DATA, then the cache, then download)"
    )
    p.add_argument(
        "--dataset",
        default=dataset_default,
        help=f"fashion-mnist, mnist, kmnist, or folder:PATH for your own images in PATH/train/<class>/ (default: {dataset_default or 'the one the model was trained on'})",
    )


def add_saved_model_args(p: argparse.ArgumentParser) -> None:
    """A saved model and the split of its dataset to run it on (evaluate, predict), with --json."""
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("--split", choices=SPLITS, default="test", help="which split (default: test)")
    add_data_args(p, dataset_default=None)
    add_json_arg(p)


def add_kernels_arg(p: argparse.ArgumentParser) -> None:
    """``--kernels auto|on|off``: the CPU kernels for the conv blocks (``fashion_cnn.kernels.use_kernels``)."""
    p.add_argument(
        "--kernels",
        choices=KERNEL_MODES,
        default=None,
        help="the CPU kernels for the conv blocks: auto (build them, else PyTorch's operators), on (refuse to run without them) "
        "or off (default: $FASHION_CNN_KERNELS, else auto)",
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    """An optional saved model, or else a fresh architecture by name (summary, plot-model)."""
    p.add_argument(
        "model_or_run", nargs="?", metavar="MODEL_OR_RUN", help="a run directory or .safetensors file (default: a fresh --model)"
    )
    p.add_argument("--model", default="tutorial-cnn", help="architecture name when no file is given (see 'fashion-cnn summary --list')")


def model_from_args(args):
    """The model ``add_model_args`` asked for: loaded from the file, or built fresh."""
    return load_model(args.model_or_run) if args.model_or_run else build_model(args.model)


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")


def add_lang_arg(p: argparse.ArgumentParser, what: str = "class names") -> None:
    p.add_argument("--lang", choices=("en", "ko"), default="en", help=f"{what} in English or the tutorial's Korean")


def add_dpi_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dpi", type=float, default=None, help="dots per inch for PNG/JPEG (default 150; 300 for print)")


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def use_agg() -> None:
    """Draw off-screen: the command line never opens a window (and there may be no display)."""
    import matplotlib

    matplotlib.use("Agg")


def wrote(paths, quiet: bool = False) -> None:
    """Say which files were written (on stderr when stdout carries JSON)."""
    if paths:
        print(f"Wrote {', '.join(str(p) for p in paths)}", file=sys.stderr if quiet else sys.stdout)


def report_written(args, paths, **details) -> None:
    """The end of a command that draws: ``Wrote FILE`` for a person, or with ``--json`` the files and details."""
    if getattr(args, "json", False):
        print_json({"written": [str(p) for p in paths], **details})
    else:
        wrote(paths)


def model_split(model, which: str, dataset: str | None, data_dir: str | None, source: str | os.PathLike | None = None) -> LabeledImages:
    """The split a saved model was trained with: its dataset, validation fraction and seed, from the model
    file, else from the run directory ``source`` belongs to, else the tutorial's; and the data folder from
    ``--data-dir``, else ``$FASHION_CNN_DATA``, else the one the run recorded (when it still exists)."""
    run = run_of(source)
    config = (run.config() or {}) if run else {}
    info = {"name": config.get("dataset"), "val_fraction": config.get("val_fraction"), "split_seed": config.get("split_seed")}
    info.update({k: v for k, v in (getattr(model, "meta", {}).get("dataset") or {}).items() if v is not None})
    name = dataset or info.get("name") or "fashion-mnist"
    if not dataset and is_folder_dataset(name) and not is_folder_dataset(config.get("dataset")):
        # A model file from elsewhere must not choose which folder of this machine gets read.
        raise FashionCNNError(
            f"the model was trained on the image folder {name[len('folder:') :]}, which only its own run directory may "
            f"point to; to evaluate on that folder, say so: --dataset {name}"
        )
    if data_dir is None and not os.environ.get(DATA_ENV) and config.get("data_dir") and Path(config["data_dir"]).is_dir():
        data_dir = config["data_dir"]
    return load_split(
        which,
        name,
        data_dir,
        val_fraction=info.get("val_fraction") or 0.2,
        split_seed=info["split_seed"] if info.get("split_seed") is not None else 42,
    )


def run_of(source: str | os.PathLike | None) -> RunDir | None:
    """The run directory a command's RUN_OR_MODEL argument belongs to: the folder itself, or the folder of a
    model file inside one (``runs/NAME/model.onnx``); None for a file outside any run."""
    if source is None:
        return None
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    return RunDir(folder) if (folder / CONFIG).is_file() else None


def check_index(index: int, data: LabeledImages, split: str) -> None:
    if not 0 <= index < len(data):
        raise FashionCNNError(f"--index {index} is out of range: the {split} split has {len(data):,} images (0 to {len(data) - 1})")


def shown_path(path: str | os.PathLike) -> str:
    """A file name as text that can be printed and written to CSV/JSON, even when it is not valid UTF-8."""
    return os.fsencode(path).decode("utf-8", "replace")


def add_one_image_args(p: argparse.ArgumentParser, default_split: str = "test") -> None:
    """One image to look at: ``--split``/``--index`` of the model's dataset, or ``--image FILE`` (your own picture,
    made to look like Fashion-MNIST as ``predict`` does)."""
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("--split", choices=SPLITS, default=default_split, help=f"which split (default: {default_split})")
    p.add_argument("--index", type=int, default=0, help="image number within the split (default: 0)")
    p.add_argument("--image", metavar="FILE", help="your own picture (PNG, JPEG, WebP, BMP, GIF) instead of --split/--index")
    add_data_args(p, dataset_default=None)


def one_image(args, model) -> tuple:
    """The image ``add_one_image_args`` asked for: (uint8 pixels (H, W), its true label or None, a caption)."""
    if args.image:
        from ..data.images import Preprocessing, load_image
        from ..models.metadata import input_side

        image = load_image(args.image, Preprocessing(size=input_side(model.meta)))
        return image, None, Path(args.image).name
    data = model_split(model, args.split, args.dataset, args.data_dir, source=args.model_or_run)
    check_index(args.index, data, args.split)
    return data.images[args.index], int(data.labels[args.index]), f"{args.split}[{args.index}]"
