"""What a run was trained on: library versions, the CPU and the GPU, for the report's environment table.

python -c "from fashion_cnn.environment import environment; print(environment())"
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

PACKAGES = ("fashion-cnn", "torch", "numpy", "scikit-learn", "matplotlib", "safetensors", "pillow")


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo(*keys: str) -> str | None:
    """The value of the first line of /proc/cpuinfo (Linux) starting with one of ``keys``, or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(keys):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    return _cpuinfo("model name", "hardware", "cpu model") or platform.processor() or platform.machine()


#: The vector and matrix extensions that decide which kernels oneDNN and PyTorch run (and whether bf16 is native).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_isa() -> dict:
    """What the CPU offers and what this process uses of it, for the line next to every speed figure.

    Returns:
        ``{"flags": [...], "torch": "AVX2"|"AVX512"|..., "onednn_max_isa": str | None, "native_bf16": bool}``:
        the CPU's flags among ``ISA_FLAGS`` (Linux), PyTorch's kernel level (``ATEN_CPU_CAPABILITY`` lowers it),
        oneDNN's ceiling when ``ONEDNN_MAX_CPU_ISA`` sets one, and whether oneDNN computes bf16 natively
        (what ``--precision auto`` follows).

    Example:
        >>> sorted(cpu_isa())
        ['flags', 'native_bf16', 'onednn_max_isa', 'torch']
    """
    import torch

    from .torch_private import native_bf16_cpu, onednn_max_isa

    flags = set((_cpuinfo("flags") or "").split())
    return {
        "flags": [f for f in ISA_FLAGS if f in flags],
        "torch": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": onednn_max_isa(),
        "native_bf16": native_bf16_cpu(),
    }


def isa_line(isa: dict | None = None) -> str:
    """``AVX512 kernels (CPU: avx2 fma avx512f avx512_bf16), native bf16``, or with ``ONEDNN_MAX_CPU_ISA=AVX2``:
    ``AVX2 kernels, oneDNN capped at AVX2 (CPU: ...), no native bf16``."""
    isa = isa if isinstance(isa, dict) else cpu_isa()
    line = f"{isa.get('torch', '?')} kernels"
    if isa.get("onednn_max_isa"):
        line += f", oneDNN capped at {isa['onednn_max_isa']}"
    if isa.get("flags"):
        line += f" (CPU: {' '.join(map(str, isa['flags']))})"
    return line + (", native bf16" if isa.get("native_bf16") else ", no native bf16")


def environment() -> dict:
    """Versions and hardware of this process, as JSON-ready values.

    Returns:
        ``{"python", "platform", "cpu", "cpu_isa", "cpu_cores", "torch_threads", "gpu", "cuda", "versions": {...}}``
    """
    import torch

    gpu = None
    if torch.cuda.is_available():
        gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_isa": cpu_isa(),
        "cpu_cores": cores,
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "cuda": torch.version.cuda if gpu else None,
        "versions": {p: package_version(p) for p in PACKAGES},
    }
