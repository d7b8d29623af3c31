"""Compile the C kernels (``csrc/``) into a shared library, cache it, load it with ctypes.

    fashion-cnn build-kernels            # compile now and say how the blocks will run; exit 1 if they did not build

The library is built with the system's C compiler (``$CC``, else ``cc``/``gcc``; under a second) into
``$FASHION_CNN_CACHE/kernels/`` under a name that hashes the sources, the compiler and the flags, so a changed
source or compiler builds afresh. Plain C: no PyTorch headers. Each build writes to a temporary name and renames,
and records the library's SHA-256 beside it; one process at a time builds (a lock file), so a second one started
at the same time waits and loads the first one's library. A cached library whose SHA-256 is not the recorded one
(truncated, corrupted, swapped for another file) is deleted and built again, never loaded, and the status line
says so. A build that fails keeps the compiler's whole output
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
            lib, damage = _open(cc, flags, files, path)
        except (OSError, subprocess.SubprocessError) as e:
            failures.append(f"$ {cc} {' '.join(flags)} -o {path.name} {' '.join(p.name for p in files)}\n{str(e).strip()}\n")
            continue
        _declare(lib)
        isa = "AVX-512" if AVX512[0] in flags else "AVX2" if "-mavx2" in flags else "baseline vectors"
        rebuilt = f"; rebuilt {path.name}: the cached file was {damage}" if damage else ""
        return lib, f"fused kernel ({isa}, {'OpenMP' if '-fopenmp' in flags else 'one thread'}){rebuilt}"
    log = _write_log(failures)
    last = next((line for line in reversed(failures[-1].strip().splitlines()) if line.strip()), "no output")
    raise KernelBuildError(f"the CPU kernels did not compile ({last.strip()[:200]}); the compiler's whole output is in {log}")


def _open(cc: str, flags: list[str], files: list[Path], path: Path) -> tuple[ctypes.CDLL, str | None]:
    """Load the cached library, building it first where it is missing or is not the file this cache built;
    returns it and, where a damaged cached file was replaced, what was wrong with it.

    The cache is checked before anything of it is loaded, since loading runs its code: the file's SHA-256 must
    be the one recorded beside it when it was built (a truncated, bit-flipped or swapped-in library, another
    build's included, is deleted and built again, never loaded), and it must have every entry point. One
    process at a time checks and builds (a lock file in the cache folder): a second one started at the same
    time waits, then loads what the first built.
    """
    with _cache_lock(path.parent):
        damage = _damage(path) if path.exists() else None
        if path.exists() and damage is None:
            lib = ctypes.CDLL(str(path))
            if all(hasattr(lib, name) for name in SIGNATURES):
                return lib, None
            damage = "a library without the kernels' entry points"
        for stale in (path, _digest_file(path)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        return _compile(cc, flags, files, path), damage


def _digest_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _damage(path: Path) -> str | None:
    """Why the cached library at ``path`` must not be loaded, or None when it is the file built here."""
    try:
        recorded = _digest_file(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return "missing its recorded SHA-256"
    return None if hashlib.sha256(path.read_bytes()).hexdigest() == recorded else "not the file built here (its SHA-256 differs)"


@contextlib.contextmanager
def _cache_lock(folder: Path):
    """An exclusive lock on ``folder/.lock`` (fcntl), or none where the folder cannot hold one (read-only)."""
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _compile(cc: str, flags: list[str], files: list[Path], path: Path) -> ctypes.CDLL:
    """Compile to a temporary name beside ``path``, load it from there, record its SHA-256, then rename: a
    concurrent run never loads half a file, and this process holds the library it built (not one a later
    rename put at ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, *flags, "-o", tmp, *map(str, files)], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise subprocess.SubprocessError((done.stdout + done.stderr).strip() or f"{cc} exited with {done.returncode}")
        lib = ctypes.CDLL(tmp)
        missing = [name for name in SIGNATURES if not hasattr(lib, name)]
        if missing:
            raise OSError(f"the built library lacks {', '.join(missing)}")
        atomic_write_text(_digest_file(path), hashlib.sha256(Path(tmp).read_bytes()).hexdigest() + "\n")
        os.replace(tmp, path)
        return lib
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


_P, _I = ctypes.c_void_p, ctypes.c_int64
#: Every entry point of the library and its arguments (pointers and int64 sizes); each returns an int status.
SIGNATURES = {
    "conv_pool_relu_forward": [_P, _I, _I, _I, _P, _P, _I, _P, _P],
    "conv_pool_relu_backward": [_P, _I, _I, _I, _P, _P, _P, _I, _P, _P],
    "pool_relu_forward": [_P, _I, _I, _I, _I, _P, _P],
    "pool_relu_backward": [_P, _P, _P, _I, _I, _I, _I, _P],
    "winograd_conv_pool_relu_forward": [_P, _I, _I, _I, _I, _P, _P, _I, _P, _P],
    "winograd_conv_pool_relu_backward": [_P, _I, _I, _I, _I, _P, _I, _P, _P, _P, _P, _P, _P],
}


def _declare(lib: ctypes.CDLL) -> None:
    for name, args in SIGNATURES.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, ctypes.c_int
