"""Compile the C kernels (``csrc/``) into a shared library, cache it, load it with ctypes.

    fashion-cnn build-kernels            # compile now and say how the blocks will run; exit 1 if they did not build

The library is built with the system's C compiler (``$CC``, else ``cc``/``gcc``; under a second) into
``$FASHION_CNN_CACHE/kernels/`` under a name that hashes the sources, the compiler and the flags, so a changed
source or compiler builds afresh. Plain C: no PyTorch headers. Each build writes to a temporary name and renames,
so a second process compiling at the same time never loads half a file; a cached library that does not load (a
truncated or foreign file) is deleted and built again once. A build that fails keeps the compiler's whole output
in ``build.log`` beside the library, and the error names that file.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from ..data.fetch import cache_dir
from ..errors import FashionCNNError
from ..files import atomic_write_text

CSRC = Path(__file__).with_name("csrc")
#: Where PyTorch runs AVX-512 kernels, the library also gets 16-float vectors (used where the channels allow).
AVX512 = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-DFASHION_CNN_AVX512"]


class KernelBuildError(FashionCNNError):
    """The kernels could not be compiled or loaded here; the message says why and where the full log is."""


def sources() -> list[Path]:
    """The C files compiled into the library (each ``csrc/*.c``)."""
    return sorted(CSRC.glob("*.c"))


def compile_flags() -> list[list[str]]:
    """The vector instructions to compile for, best first, by what PyTorch's own kernels use here (an
    ``ATEN_CPU_CAPABILITY`` cap holds too): AVX-512 (as well as AVX2) where PyTorch runs AVX-512, then AVX2 + FMA
    (for a compiler that has no AVX-512), then none. The builds give the same results, bit for bit: each
    channel is its own lane, whatever the vector width."""
    capability = torch.backends.cpu.get_cpu_capability()
    base, avx2 = ["-O3", "-fPIC", "-shared"], ["-mavx2", "-mfma"]
    widths = [avx2 + AVX512, avx2] if capability.startswith("AVX512") else [avx2] if capability.startswith("AVX2") else []
    return [base + isa for isa in widths] + [base]


def compiler() -> str | None:
    """The C compiler to build with: ``$CC``, else ``cc``, else ``gcc``; None where there is none."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def library_folder() -> Path:
    return cache_dir() / "kernels"


@functools.cache
def load() -> tuple[ctypes.CDLL, str]:
    """The compiled library and a line saying what it is (``fused kernel (AVX-512, OpenMP)``), built on the
    first call in a process; raises ``KernelBuildError`` where it cannot be built or loaded."""
    if sys.platform == "win32":
        raise KernelBuildError("the CPU kernels are not built on Windows; PyTorch's operators run instead")
    cc = compiler()
    if not cc:
        raise KernelBuildError("no C compiler for the CPU kernels: install gcc (or set CC), or pass --kernels off")
    files = sources()
    contents = [p.read_bytes() for p in sorted(CSRC.glob("*.[ch]"))]
    failures: list[str] = []
    # The widest vectors first; without OpenMP (Apple's clang) one thread.
    for flags in (isa + threads for isa in compile_flags() for threads in (["-fopenmp"], [])):
        key = hashlib.sha256(b"\0".join([*contents, cc.encode(), platform.machine().encode(), *map(str.encode, flags)]))
        path = library_folder() / f"conv_pool-{key.hexdigest()[:16]}.so"
        try:
            lib = _open(cc, flags, files, path)
        except (OSError, subprocess.SubprocessError) as e:
            failures.append(f"$ {cc} {' '.join(flags)} -o {path.name} {' '.join(p.name for p in files)}\n{str(e).strip()}\n")
            continue
        _declare(lib)
        isa = "AVX-512" if AVX512[0] in flags else "AVX2" if "-mavx2" in flags else "baseline vectors"
        return lib, f"fused kernel ({isa}, {'OpenMP' if '-fopenmp' in flags else 'one thread'})"
    log = _write_log(failures)
    last = next((line for line in reversed(failures[-1].strip().splitlines()) if line.strip()), "no output")
    raise KernelBuildError(f"the CPU kernels did not compile ({last.strip()[:200]}); the compiler's whole output is in {log}")


def _open(cc: str, flags: list[str], files: list[Path], path: Path) -> ctypes.CDLL:
    """Load the cached library, building it first where it is missing or does not load."""
    if path.exists():
        try:
            return ctypes.CDLL(str(path))
        except OSError:  # truncated, foreign or from another machine: build it again
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    _compile(cc, flags, files, path)
    return ctypes.CDLL(str(path))


def _compile(cc: str, flags: list[str], files: list[Path], path: Path) -> None:
    """Compile to a temporary name beside ``path``, then rename: a concurrent run never loads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, *flags, "-o", tmp, *map(str, files)], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise subprocess.SubprocessError((done.stdout + done.stderr).strip() or f"{cc} exited with {done.returncode}")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write_log(failures: list[str]) -> Path:
    """Every failed attempt's command and whole output, in ``build.log`` (or a temporary file where the cache
    is not writable); returns its path."""
    text = "\n".join(failures)
    try:
        log = library_folder() / "build.log"
        atomic_write_text(log, text)
        return log
    except (OSError, FashionCNNError):
        fd, name = tempfile.mkstemp(prefix="fashion-cnn-kernels-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return Path(name)


def _declare(lib: ctypes.CDLL) -> None:
    p, i = ctypes.c_void_p, ctypes.c_int64
    signatures = {
        "conv_pool_relu_forward": [p, i, i, i, p, p, i, p, p],
        "conv_pool_relu_backward": [p, i, i, i, p, p, p, i, p, p],
        "pool_relu_forward": [p, i, i, i, i, p, p],
        "pool_relu_backward": [p, p, p, i, i, i, i, p],
        "winograd_conv_pool_relu_forward": [p, i, i, i, i, p, p, i, p, p],
        "winograd_conv_pool_relu_backward": [p, i, i, i, i, p, i, p, p, p, p, p, p],
    }
    for name, args in signatures.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, ctypes.c_int
