"""Atomic file writes: a crash leaves the previous good file or the new one, never half of one.

Every writer here also refuses what a rename would wrongly replace: a target that is not a regular file
(``/dev/null``, a FIFO, a folder) is refused by name; a symbolic link is written through (its target is
replaced, the link stays). A full or read-only disk ends in a one-line error and the previous file is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import FashionCNNError, first_line


def _create_temporary(folder: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """A new, empty file in ``folder`` with a name no other writer has, open for writing: (descriptor, path).

    Unlike ``tempfile.mkstemp`` (mode 0o600: readable by its owner only) it is created with mode 0o666, so
    the kernel applies the umask and the result gets the permissions ``open()`` would give it: a model file
    written here can be served by another user. The umask is never read or changed.
    """
    for _ in range(100):
        name = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), str(name)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def resolved(path: str | os.PathLike) -> Path:
    """``path`` made absolute with every symbolic link followed, or a one-line error where it cannot be (a link
    that points to itself, a loop of links, a name too long, a folder that cannot be read).

    Example:
        >>> resolved("/tmp/../tmp/x").as_posix()
        '/tmp/x'
    """
    path = Path(path)
    try:
        return path.resolve()
    except (OSError, RuntimeError) as e:  # Python 3.11/3.12 raise RuntimeError("Symlink loop ..."), 3.13 OSError(ELOOP)
        reason = getattr(e, "strerror", None) or ("a loop of symbolic links" if "loop" in str(e).lower() else first_line(e, 80))
        raise FashionCNNError(f"{path} cannot be followed to a file ({reason}); fix the link or choose another path") from None


def _target(path: str | os.PathLike) -> Path:
    """Where the bytes of ``path`` really go: the file a symlink points to; refused when not a regular file."""
    path = Path(path)
    try:
        if path.is_symlink():
            path = resolved(path)
        exists, is_file, is_dir = path.exists(), path.is_file(), path.is_dir()
    except OSError as e:
        raise _disk_error(path, e) from None
    if exists and not is_file:
        kind = "a folder" if is_dir else "not a regular file (a device, a FIFO or a socket)"
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
        fd, tmp = _create_temporary(path.parent, f".{path.name}.", ".tmp")
    except OSError as e:
        raise _disk_error(path, e) from None
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
        fd, tmp = _create_temporary(path.parent, f".{path.stem}.", f".tmp{path.suffix}")
    except OSError as e:
        raise _disk_error(path, e) from None
    os.close(fd)
    try:
        yield Path(tmp)  # a writer that replaces the file (safetensors) creates it with open()'s usual mode too
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
