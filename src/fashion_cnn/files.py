"""Atomic file writes: a crash leaves the previous good file or the new one, never half of one.

On Linux the new file is written unnamed (``O_TMPFILE``) in the target's folder and given a name only when it
is complete: a writer killed with ``kill -9`` (or by the out-of-memory killer) leaves nothing behind, not even
a temporary file; only in the microseconds between naming it and renaming it over the target could a
``.NAME.*.tmp`` be left. Where the kernel or the filesystem cannot (macOS, Windows, some network filesystems)
the file is written under a temporary name from the start, and a killed writer leaves that name, which
``remove_temporaries`` deletes (``train --resume`` does).

Every writer here also refuses what a rename would wrongly replace: a target that is not a regular file
(``/dev/null``, a FIFO, a folder) is refused by name; a symbolic link is written through (its target is
replaced, the link stays). A full or read-only disk ends in a one-line error and the previous file is kept.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
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
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return _first_free_name(folder, prefix, suffix, lambda name: (os.open(name, flags, 0o666), name))


def _first_free_name(folder: Path, prefix: str, suffix: str, make):
    """``make(name)`` for the first ``folder/PREFIX<random>SUFFIX`` it can create (it raises FileExistsError
    for a name another writer has), and what it returns."""
    for _ in range(100):
        try:
            return make(str(folder / f"{prefix}{secrets.token_hex(4)}{suffix}"))
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def _open_unnamed(folder: Path) -> int | None:
    """An unnamed new file in ``folder`` (Linux ``O_TMPFILE``, mode 0o666 less the umask), or None where the
    kernel, the filesystem or a missing ``/proc`` cannot give one (then the caller names it from the start)."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):  # no O_TMPFILE on this kernel or filesystem
            return None
        raise


def _name_unnamed(fd: int, folder: Path, prefix: str, suffix: str) -> str:
    """Give the complete unnamed file of ``fd`` a temporary name in ``folder`` (``linkat`` through /proc, as
    open(2) documents for O_TMPFILE), ready to be renamed over the target."""
    # linkat(2) with AT_SYMLINK_FOLLOW: CPython calls it only when a dir_fd is given (else link(2), which would
    # link /proc's own symlink and fail with EXDEV), so the link is named relative to /proc/self/fd.
    proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:

        def link(name: str) -> str:
            os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
            return name

        return _first_free_name(folder, prefix, suffix, link)
    finally:
        os.close(proc)


@contextlib.contextmanager
def _new_file(path: Path, prefix: str, suffix: str) -> Iterator[tuple[int, str | None]]:
    """``(descriptor, name)`` of a new file beside ``path`` (name None while it is unnamed); on success it is
    fsynced and renamed over ``path``; on any failure nothing of it is left and the previous file is kept."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_unnamed(path.parent)
        fd, tmp = (fd, None) if fd is not None else _create_temporary(path.parent, prefix, suffix)
    except OSError as e:
        raise _disk_error(path, e) from None
    try:
        yield fd, tmp
        os.fsync(fd)
        if tmp is None:
            tmp = _name_unnamed(fd, path.parent, prefix, suffix)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise _disk_error(path, e) from None
        raise
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


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


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """``open(path, "rb")`` that never waits: a FIFO, a device, a socket or a folder raises ``OSError`` (its
    ``strerror`` says which) instead of blocking until a writer comes or reading forever from ``/dev/zero``.

    The file is opened without blocking and checked with ``fstat`` on the open descriptor (no race with a
    rename between a check and the open), then read as usual.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or a socket"
            raise OSError(errno.EINVAL, f"it is {kind}, not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
    """Open a new file beside ``path``; on success fsync it and rename it over ``path``.

    Example:
        >>> with atomic_open("/tmp/fashion-cnn-doc.txt") as f:
        ...     _ = f.write("done")
    """
    path = _target(path)
    with _new_file(path, f".{path.name}.", ".tmp") as (fd, _):
        with os.fdopen(os.dup(fd), mode, encoding=None if "b" in mode else encoding) as f:
            yield f


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
    """Yield a path of a new file beside ``path``, for a library that writes by file name; rename on success.

    The path is the new file's own ``/proc/self/fd/N`` while it is unnamed (opening it opens that file), else
    a temporary name that keeps ``path``'s extension. Either way it may not end in ``path``'s extension: tell
    a writer that picks a format by extension the format (matplotlib's ``format=``).
    """
    path = _target(path)
    with _new_file(path, f".{path.stem}.", f".tmp{path.suffix}") as (fd, tmp):
        yield Path(tmp if tmp is not None else f"/proc/self/fd/{fd}")


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
