"""Atomic file writes: a crash leaves the previous good file or the new one, never half of one.

Every writer here also refuses what a rename would wrongly replace: a target that is not a regular file
(``/dev/null``, a FIFO, a folder) is refused by name; a symbolic link is written through (its target is
replaced, the link stays). A full or read-only disk ends in a one-line error and the previous file is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import FashionCNNError

# mkstemp creates files readable by their owner only; a result file should get the permissions open()
# would give it (0o666 less the umask), or a model file written here could not be served by another user.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _usual_mode(tmp: str) -> None:
    os.chmod(tmp, 0o666 & ~_UMASK)


def _target(path: str | os.PathLike) -> Path:
    """Where the bytes of ``path`` really go: the file a symlink points to; refused when not a regular file."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a device, a FIFO or a socket)"
        raise FashionCNNError(f"{path} is {kind}; fashion-cnn writes only regular files: choose another output path")
    return path


def _disk_error(path: Path, error: OSError) -> FashionCNNError:
    return FashionCNNError(
        f"cannot write {path} ({error.strerror or error}); the previous file, if any, is kept: free some space or choose a writable location"
    )


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    Example:
        >>> with atomic_open("/tmp/fashion-cnn-doc.txt") as f:
        ...     _ = f.write("done")
    """
    path = _target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _disk_error(path, e) from None
    _usual_mode(tmp)
    if "b" in mode:
        encoding = None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _disk_error(path, e) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a library that writes by file name; rename on success.

    The temporary name keeps ``path``'s extension, so writers that choose a format from it (matplotlib,
    safetensors) still work.
    """
    path = _target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as e:
        raise _disk_error(path, e) from None
    os.close(fd)
    try:
        yield Path(tmp)
        _usual_mode(tmp)  # after the writer: some (safetensors) replace the file with one of their own
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _disk_error(path, e) from None
        raise


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that a killed writer of this module left in ``folder``; return them.

    Only for a folder no other process is writing to (a run directory being resumed).
    """
    folder = Path(folder)
    stale = [p for pattern in (".*.tmp", ".*.tmp.*") for p in folder.glob(pattern) if p.is_file()]
    for p in stale:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return stale
