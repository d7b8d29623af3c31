"""Arguments and output shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import sys


def add_data_args(p: argparse.ArgumentParser, dataset_default: str | None = "fashion-mnist") -> None:
    p.add_argument("--data-dir", metavar="DIR", help="folder with the four IDX .gz files (default $FASHION_CNN_DATA, then the cache, then download)")
    p.add_argument("--dataset", default=dataset_default, help=f"fashion-mnist, mnist, kmnist, or folder:PATH for your own images in PATH/train/<class>/ (default: {dataset_default or 'the one the model was trained on'})")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """An optional saved model, or else a fresh architecture by name (summary, plot-model)."""
    p.add_argument("model_or_run", nargs="?", metavar="MODEL_OR_RUN", help="a run directory or .safetensors file (default: a fresh --model)")
    p.add_argument("--model", default="tutorial-cnn", help="architecture name when no file is given (see 'fashion-cnn summary --list')")


def model_from_args(args):
    """The model ``add_model_args`` asked for: loaded from the file, or built fresh."""
    from ..models.files import load_model
    from ..models.registry import build_model

    return load_model(args.model_or_run) if args.model_or_run else build_model(args.model)


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def model_split(model, which: str, dataset: str | None, data_dir: str | None):
    """The split a saved model was trained with (its dataset, validation fraction and seed)."""
    from ..data.dataset import load_split

    info = getattr(model, "meta", {}).get("dataset", {})
    return load_split(
        which,
        dataset or info.get("name", "fashion-mnist"),
        data_dir,
        val_fraction=info.get("val_fraction", 0.2),
        split_seed=info.get("split_seed", 42),
    )


def class_names(model, lang: str) -> list[str]:
    meta = getattr(model, "meta", {})
    names = meta.get("classes_ko") if lang == "ko" else None
    return list(names or meta.get("classes") or [str(i) for i in range(10)])
