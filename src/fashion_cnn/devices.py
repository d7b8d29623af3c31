"""Choose the device, the precision and the CPU thread count."""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import FashionCNNError
from .torch_private import native_bf16_cpu

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA if present, else Apple MPS, else CPU; an explicit device must exist."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise FashionCNNError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FashionCNNError(f"--device {name} was asked for but this PyTorch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FashionCNNError("--device mps was asked for but MPS is not available here; use --device cpu or auto")
    return torch.device(name)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_threads(threads: int | None) -> None:
    """Refuse a thread count below 1 or above the cores (thousands of threads crash or stall PyTorch)."""
    if threads is not None and not (isinstance(threads, int) and 1 <= threads <= cores()):
        raise FashionCNNError(f"--threads must be a whole number from 1 to {cores()} (this machine's cores), got {threads!r}")


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op threads (default: this process's share of the cores it may run on)."""
    check_threads(threads)
    if threads is None:
        # torchrun's processes on one machine share its cores.
        threads = max(1, cores() // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    torch.set_num_threads(threads)
    return threads


def has_native_bf16(device: torch.device) -> bool:
    """bf16 matrix units: CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX (oneDNN not capped below them)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return native_bf16_cpu()
    return False


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise FashionCNNError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → ``bf16`` where the hardware computes it natively, else ``fp32``."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if has_native_bf16(device) else "fp32"
    if precision == "bf16" and device.type == "mps":
        raise FashionCNNError("--precision bf16 is not supported on MPS; use --precision fp32")
    return precision


def autocast(device: torch.device, precision: str):
    """A context factory: bf16 autocast for the forward pass (weights, optimizer and loss stay fp32)."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext
