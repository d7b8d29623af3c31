"""Model files: weights in safetensors, everything else as JSON in the same file's header.

Loading never unpickles, so opening a model file from a stranger cannot run code. A file is refused, by
name, when it is a pickle, not safetensors, not a fashion-cnn model, or when its tensors do not match the
architecture its metadata names.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch
from torch import nn

from ..errors import FashionCNNError
from ..files import atomic_path
from .registry import build_model

FORMAT = "fashion-cnn"
FORMAT_VERSION = 1
#: What a run directory's model is called; ``RUN_OR_MODEL`` arguments resolve a folder to this file.
BEST = "best.safetensors"


def save_model(path: str | os.PathLike, model: nn.Module, **meta) -> Path:
    """Write ``model``'s weights and metadata to ``path`` atomically.

    Args:
        path: the ``.safetensors`` file to write.
        model: a model from ``build_model`` (it carries ``arch``).
        **meta: anything JSON-serialisable to keep with it: ``classes``, ``classes_ko``, ``dataset``,
            ``metrics``, ``epoch``... (a loaded model's own ``meta`` is kept unless overridden).
    """
    from safetensors.torch import save_file

    from .. import __version__

    if not hasattr(model, "arch"):
        raise FashionCNNError("this model was not made by fashion_cnn.build_model, so its architecture cannot be recorded; build it with build_model(name)")
    header = {
        **getattr(model, "meta", {}),
        **meta,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "versions": {"fashion_cnn": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in unwrap(model).state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "fashion_cnn": json.dumps(header, ensure_ascii=False)})
    return path


def resolve_model_path(run_or_model: str | os.PathLike) -> Path:
    """A run directory means its ``best.safetensors``; anything else is taken as a model file."""
    path = Path(run_or_model)
    if path.is_dir():
        path = path / BEST
        if not path.is_file():
            raise FashionCNNError(f"{run_or_model} is a folder without {BEST}; pass a run directory written by 'fashion-cnn train' or a .safetensors model file")
    elif not path.exists():
        raise FashionCNNError(f"{run_or_model} does not exist; pass a run directory (runs/NAME) or a .safetensors model file")
    return path


def load_model(run_or_model: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a saved model: architecture from the metadata, then the weights, checked tensor by tensor.

    The returned module is in eval mode and carries ``arch`` and ``meta`` (classes, dataset, metrics...).

    Example:
        >>> model = load_model("runs/tutorial")  # doctest: +SKIP
        >>> model.meta["classes"][9]
        'Ankle boot'
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_model_path(run_or_model)
    _refuse_pickle(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise FashionCNNError(f"{path} is not a readable safetensors file ({str(e).splitlines()[0][:120]}); pass a model written by fashion-cnn") from None
    if header.get("format") != FORMAT or "fashion_cnn" not in header:
        raise FashionCNNError(f"{path} is a safetensors file but not a fashion-cnn model (no fashion-cnn metadata); pass a model written by fashion-cnn")
    try:
        meta = json.loads(header["fashion_cnn"])
        arch = meta["arch"]
        model = build_model(arch["name"], **arch.get("kwargs", {}))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FashionCNNError(f"{path} has unreadable fashion-cnn metadata ({type(e).__name__}: {e}); the file is damaged, use another copy") from None
    _check_tensors(path, model.state_dict(), tensors)
    model.load_state_dict(tensors)
    model.meta = meta
    return model.to(device).eval()


def _refuse_pickle(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80" or head.startswith(b"PK\x03\x04"):
        raise FashionCNNError(
            f"{path} is a pickle/torch.save file, which can run code when loaded; fashion-cnn loads only "
            "safetensors model files. Re-save the weights with safetensors or retrain with 'fashion-cnn train'"
        )


def _check_tensors(path: Path, expected: dict, got: dict) -> None:
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise FashionCNNError(f"{path} does not match the architecture its metadata names ({'; '.join(parts)}); the file is damaged or was edited")
    for key, t in expected.items():
        if tuple(got[key].shape) != tuple(t.shape) or got[key].dtype != t.dtype:
            raise FashionCNNError(
                f"{path}: tensor {key} is {tuple(got[key].shape)} {got[key].dtype}, the architecture needs {tuple(t.shape)} {t.dtype}; the file is damaged or was edited"
            )


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DistributedDataParallel or compiled wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model
