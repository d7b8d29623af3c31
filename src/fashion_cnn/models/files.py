"""Model files: weights in safetensors, everything else as JSON in the same file's header.

Loading never unpickles, so opening a model file from a stranger cannot run code. A file is refused, by
name, when it is a pickle, not safetensors, not a fashion-cnn model, or when its tensors do not match the
architecture its metadata names. The architecture is first built on the ``meta`` device (no memory) and
compared with the file's tensors, so metadata naming a huge model cannot exhaust memory.

A plain PyTorch ``state_dict`` (``torch.save``) is refused by ``load_model``; ``load_torch_weights`` reads
one through ``torch.load(weights_only=True)`` (tensors and plain containers only) for the explicit
``fashion-cnn export WEIGHTS.pt --allow-torch-weights --format safetensors`` conversion.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import FashionCNNError, first_line
from ..files import atomic_write_bytes
from ..rundir import BEST
from ..version import __version__
from .metadata import OOD_TENSOR, check_classes, check_meta, describe_input, ood_of
from .registry import build_model

FORMAT = "fashion-cnn"
FORMAT_VERSION = 1


def save_model(path: str | os.PathLike, model: nn.Module, **meta) -> Path:
    """Write ``model``'s weights and metadata to ``path`` atomically.

    Args:
        path: the ``.safetensors`` file to write.
        model: a model from ``build_model`` (it carries ``arch``).
        **meta: anything JSON-serialisable to keep with it: ``classes``, ``classes_ko``, ``dataset``,
            ``metrics``, ``epoch``... (a loaded model's own ``meta`` is kept unless overridden).
    """
    from safetensors.torch import save

    if not hasattr(model, "arch"):
        raise FashionCNNError(
            "this model was not made by fashion_cnn.build_model, so its architecture cannot be recorded; build it with build_model(name)"
        )
    header = {
        **getattr(model, "meta", {}),
        **meta,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "versions": {"fashion_cnn": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    # Every consumer (predict, ONNX, the web service) must scale pixels the way training did.
    header["input"] = describe_input(header)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in unwrap(model).state_dict().items()}
    prototypes = getattr(unwrap(model), "ood_prototypes", None)
    if prototypes is not None and ood_of(header):  # the not-clothing detector's tensor (inference.ood), beside the weights
        tensors[OOD_TENSOR] = prototypes.detach().to("cpu", torch.float32).contiguous()
    else:
        header.pop("ood", None)  # settings without their tensor would describe a detector the file does not hold
    path = Path(path)
    # Serialised in memory and written by our atomic helper: safetensors' own save_file adds a second
    # temporary file that a kill would leave behind, with owner-only permissions.
    atomic_write_bytes(path, save(tensors, metadata={"format": FORMAT, "fashion_cnn": json.dumps(header, ensure_ascii=False)}))
    return path


def resolve_model_path(run_or_model: str | os.PathLike) -> Path:
    """A run directory means its ``best.safetensors``; anything else is taken as a model file."""
    path = Path(run_or_model)
    if path.is_dir():
        path = path / BEST
        if not path.is_file():
            raise FashionCNNError(
                f"{run_or_model} is a folder without {BEST}; pass a run directory written by 'fashion-cnn train' or a .safetensors model file"
            )
    elif not path.exists():
        raise FashionCNNError(f"{run_or_model} does not exist; pass a run directory (runs/NAME) or a .safetensors model file")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise FashionCNNError(f"{path} is not a regular file; pass a run directory (runs/NAME) or a .safetensors model file")
    return path


def load_model(run_or_model: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a saved model: architecture from the metadata, then the weights, checked tensor by tensor.

    The returned module is in eval mode and carries ``arch`` and ``meta`` (classes, dataset, metrics...). Its
    convolution weights are channels-last, as in training: the convolutions then run the same kernels, so
    ``evaluate`` reproduces the run's metrics to the last bit, 1.7–2.5× faster on the CPU than NCHW.

    Example:
        >>> model = load_model(run_dir)                       # a run directory: its best.safetensors
        >>> model.meta["classes"][9], model.meta["input"]["height"]
        ('Ankle boot', 28)
    """
    path = resolve_model_path(run_or_model)
    meta, tensors = _read_safetensors(path)
    prototypes = _ood_prototypes(path, meta, tensors)
    model = _build_checked(path, meta, tensors)
    model.meta = meta
    if prototypes is not None:
        model.ood_prototypes = prototypes
    return model.to(device, memory_format=torch.channels_last).eval()


def _read_safetensors(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The fashion-cnn metadata and the tensors of ``path``, or a FashionCNNError saying what it is instead."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    kind = sniff(path)
    if kind == "pickle":
        raise FashionCNNError(
            f"{path} is a pickle/torch.save file, which can run code when loaded; fashion-cnn loads only "
            "safetensors model files. Convert a plain state_dict once with 'fashion-cnn export FILE "
            "--allow-torch-weights --format safetensors', or retrain with 'fashion-cnn train'"
        )
    if kind != "safetensors":
        hint = "; it looks like an ONNX model: use --engine onnx" if path.suffix == ".onnx" else ""
        raise FashionCNNError(f"{path} is not a readable safetensors file ({kind}){hint}; pass a model written by fashion-cnn")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        first = first_line(e, 120)
        raise FashionCNNError(f"{path} is not a readable safetensors file ({first}); pass a model written by fashion-cnn") from None
    if header.get("format") != FORMAT or "fashion_cnn" not in header:
        raise FashionCNNError(
            f"{path} is a safetensors file but not a fashion-cnn model (no fashion-cnn metadata); pass a model written by fashion-cnn"
        )
    try:
        meta = json.loads(header["fashion_cnn"])
    except (ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands of levels deep
        raise FashionCNNError(
            f"{path} has unreadable fashion-cnn metadata ({first_line(e, 80)}); the file is damaged, use another copy"
        ) from None
    if not isinstance(meta, dict):
        raise FashionCNNError(f"{path} has fashion-cnn metadata that is not a JSON object; the file is damaged, use another copy")
    check_meta(meta, str(path))
    return meta, tensors


def _ood_prototypes(path: Path, meta: dict, tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Take the not-clothing detector's tensor out of ``tensors`` (the rest must be the architecture's), checked
    against the metadata that describes it: both or neither, a finite float32 (prototypes, features) matrix."""
    prototypes = tensors.pop(OOD_TENSOR, None)
    settings = ood_of(meta)
    if (prototypes is None) != (settings is None):
        have, lack = ("the ood settings", OOD_TENSOR) if prototypes is None else (OOD_TENSOR, "the ood settings")
        raise FashionCNNError(f"{path} holds {have} without {lack}; the file is damaged or was edited")
    if prototypes is None:
        return None
    if prototypes.dtype != torch.float32 or prototypes.ndim != 2 or 0 in prototypes.shape or not bool(torch.isfinite(prototypes).all()):
        raise FashionCNNError(
            f"{path}: {OOD_TENSOR} is {tuple(prototypes.shape)} {prototypes.dtype}, not a finite float32 (prototypes, features) "
            "matrix; the file is damaged or was edited"
        )
    return prototypes


def _build_checked(path: Path, meta: dict, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """The architecture ``meta`` names, holding ``tensors``, after checking that they fit it exactly."""
    arch = meta.get("arch")
    name = arch.get("name") if isinstance(arch, dict) else None
    kwargs = arch.get("kwargs", {}) if isinstance(arch, dict) else None
    if not isinstance(name, str) or not isinstance(kwargs, dict):
        raise FashionCNNError(
            f"{path} has fashion-cnn metadata without a valid 'arch' (name and kwargs); the file is damaged, use another copy"
        )
    try:
        with torch.device("meta"), warnings.catch_warnings():  # shapes only: metadata naming a giant model allocates nothing
            warnings.simplefilter("ignore")  # e.g. "initializing zero-element tensors": the size check below decides
            skeleton = build_model(name, **kwargs)
    except FashionCNNError as e:
        raise FashionCNNError(f"{path}: {e}") from None
    except Exception as e:  # any builder failure on hostile arguments (negative sizes, wrong types...)
        raise FashionCNNError(
            f"{path} names architecture {name!r} with arguments it cannot be built with ({type(e).__name__}); the file is damaged or was edited"
        ) from None
    check_tensors(path, skeleton.state_dict(), tensors)
    linear = [m for m in skeleton.modules() if isinstance(m, nn.Linear)]
    if linear:
        check_classes(meta, linear[-1].out_features, str(path))
    nonfinite = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if nonfinite:
        raise FashionCNNError(
            f"{path} holds NaN or infinite weights ({', '.join(nonfinite[:3])}), so every prediction would be NaN; "
            "it comes from a training that diverged: use an earlier checkpoint or retrain with a smaller --lr"
        )
    with torch.random.fork_rng(devices=[]):  # loading a model must not move a seeded experiment's RNG
        model = build_model(name, **kwargs)
    model.load_state_dict(tensors)
    return model


def sniff(path: Path) -> str:
    """What a would-be model file is, from its first bytes: ``safetensors``, ``pickle`` or a description.

    Only for the error message: safety comes from never unpickling, not from this guess.
    """
    with open(path, "rb") as f:
        head = f.read(9)
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(-1, os.SEEK_END)
        last = f.read(1)
    if size == 0:
        return "an empty file"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    # Protocol 2+ pickles start with PROTO (0x80), torch.save's zip archives with "PK", older protocols end in STOP (".").
    if head[:1] == b"\x80" or head.startswith(b"PK\x03\x04") or last == b".":
        return "pickle"
    return "no safetensors header"


def load_torch_weights(path: str | os.PathLike, model: str = "tutorial-cnn", **meta) -> nn.Module:
    """Read a plain PyTorch ``state_dict`` of a registered architecture without running code from it.

    ``torch.load(weights_only=True)`` rebuilds only tensors and plain containers; a file carrying any
    other object (a pickled function call, a custom class) is refused before anything in it runs. Use it
    once, to convert to safetensors (``fashion-cnn export FILE --allow-torch-weights --format safetensors``).

    Args:
        path: the ``torch.save`` file: a state_dict, or a dict holding one under ``state_dict`` /
            ``model_state_dict``.
        model: the architecture the weights belong to (``tutorial-cnn`` with its default arguments).
        **meta: metadata to attach (``classes``, ``classes_ko``, ``dataset``...).
    """
    path = Path(path)
    if not path.is_file():
        raise FashionCNNError(f"{path} does not exist; pass the PyTorch weights file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes about pickle protocols: the refusal below says what matters
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for forbidden globals, RuntimeError/EOFError for damage
        first = first_line(e)
        raise FashionCNNError(
            f"{path} is not a plain PyTorch state_dict that can be loaded without running code ({first}); fashion-cnn refuses it"
        ) from None
    for key in ("state_dict", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        raise FashionCNNError(f"{path} holds {type(obj).__name__}, not a state_dict (names to tensors); save model.state_dict() instead")
    with torch.random.fork_rng(devices=[]):
        built = build_model(model)
    check_tensors(path, built.state_dict(), obj)
    built.load_state_dict(obj)
    built.meta = {**meta, "arch": built.arch}
    return built.eval()


def check_tensors(path: Path, expected: dict, got: dict) -> None:
    """Refuse, naming ``path`` and the first difference, tensors whose names, shapes or dtypes differ."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise FashionCNNError(
            f"{path} does not match the architecture its metadata names ({'; '.join(parts)}); the file is damaged or was edited"
        )
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
