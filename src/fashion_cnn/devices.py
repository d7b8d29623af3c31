"""Choose the device and the CPU thread count."""

from __future__ import annotations

import os

import torch

from .errors import FashionCNNError

DEVICES = ("auto", "cpu", "cuda", "mps")


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


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op threads (default: this process's share of the cores it may run on)."""
    if threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        # torchrun's processes on one machine share its cores.
        threads = max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    if threads < 1:
        raise FashionCNNError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads
