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


def cpu_name() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Versions and hardware of this process, as JSON-ready values.

    Returns:
        ``{"python", "platform", "cpu", "cpu_cores", "torch_threads", "gpu", "cuda", "versions": {...}}``
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
        "cpu_cores": cores,
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "cuda": torch.version.cuda if gpu else None,
        "versions": {p: package_version(p) for p in PACKAGES},
    }
