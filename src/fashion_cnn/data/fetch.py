"""Find a dataset's four files: a local directory, the user cache, or a download from the mirrors.

Order of search:
  1. ``data_dir`` (the ``--data-dir`` flag) or the ``FASHION_CNN_DATA`` environment variable: the folder
     itself or its ``<dataset>/`` subfolder. Nothing is downloaded. Files are checked structurally when
     read; a file whose SHA-256 is that of *another* known dataset is refused.
  2. The user cache (``FASHION_CNN_CACHE``, else the platform cache folder, e.g. ``~/.cache/fashion-cnn``),
     where files are kept only once their SHA-256 matches.
  3. The official mirrors, in order, with pooch: each file is downloaded to a temporary name,
     its SHA-256 checked, and only then moved into the cache; on any failure the next mirror is tried.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import FashionCNNError, first_line
from ..files import resolved
from .idx import ROLES


class IdxFiles(Protocol):
    """What this module needs to know of an IDX dataset (``fashion_cnn.data.registry.DatasetSpec`` is one)."""

    name: str
    sha256: dict[str, str]
    mirrors: tuple[str, ...]

    def filename(self, role: str) -> str: ...


DATA_ENV = "FASHION_CNN_DATA"
CACHE_ENV = "FASHION_CNN_CACHE"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    import pooch

    return Path(os.environ.get(CACHE_ENV) or pooch.os_cache("fashion-cnn"))


def local_folder(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local folder ``locate`` reads from, made absolute (``data_dir``, else ``$FASHION_CNN_DATA``), or
    None when the files come from the cache or a download. What a run records to find its data again."""
    local = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    return resolved(Path(local).expanduser()) if local else None


def locate(
    spec: IdxFiles, data_dir: str | os.PathLike | None = None, *, download: bool = True, others: Iterable[IdxFiles] = ()
) -> dict[str, Path]:
    """Return the path of each of the dataset's four files, by role, downloading them if needed.

    Args:
        spec: the dataset (see ``fashion_cnn.data.registry``).
        data_dir: a local folder to use instead of the cache and the network; defaults to ``$FASHION_CNN_DATA``.
        download: when False, fail rather than reach the network.
        others: the other known datasets: a local folder holding one of them instead is refused by name.
    """
    local = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if local:
        return _from_local(spec, Path(local), "--data-dir" if data_dir is not None else f"${DATA_ENV}", others)
    cache = cache_dir() / spec.name
    paths = {role: cache / spec.filename(role) for role in ROLES}
    for role, path in paths.items():
        if path.is_file() and sha256_of(path) == spec.sha256[role]:
            continue
        if not download:
            raise FashionCNNError(f"{spec.name} is not in the cache {cache}; pass --data-dir with its four .gz files or allow the download")
        _download(spec, role, cache)
    return paths


def _from_local(spec: IdxFiles, folder: Path, source: str, others: Iterable[IdxFiles]) -> dict[str, Path]:
    if not folder.is_dir():
        raise FashionCNNError(f"{source} {folder} is not a folder; pass the folder that holds the four {spec.name} .gz files")
    for candidate in (folder / spec.name, folder):
        paths = {role: _find(candidate, spec.filename(role)) for role in ROLES}
        if all(paths.values()):
            _refuse_other_dataset(spec, paths, others)
            return paths
    missing = [spec.filename(r) for r in ROLES if not _find(folder, spec.filename(r))]
    raise FashionCNNError(
        f"{source} {folder} lacks {', '.join(missing)}; put the four {spec.name} files there "
        f"(or in {folder / spec.name}), or drop {source} to download them"
    )


def _find(folder: Path, name: str) -> Path | None:
    """The file by its ``.gz`` name or, unpacked, without the ``.gz``."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _refuse_other_dataset(spec: IdxFiles, paths: dict[str, Path], others: Iterable[IdxFiles]) -> None:
    path = paths["train_labels"]  # the smallest file tells the datasets apart
    digest = sha256_of(path)
    for other in others:
        if other.name != spec.name and digest == other.sha256["train_labels"]:
            raise FashionCNNError(
                f"{path} belongs to {other.name}, not {spec.name}; pass --dataset {other.name} or point --data-dir at the {spec.name} files"
            )


def _download(spec: IdxFiles, role: str, cache: Path) -> None:
    import pooch

    name = spec.filename(role)
    errors = []
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # pooch's "Downloading data from ..." line per try: the bar and our error say it
    try:
        for mirror in spec.mirrors:
            try:
                pooch.retrieve(
                    url=mirror + name,
                    known_hash=f"sha256:{spec.sha256[role]}",
                    fname=name,
                    path=cache,
                    progressbar=_progressbar(),
                )
                return
            except Exception as e:  # any failure of one mirror (HTTP, network, checksum) means: try the next
                errors.append(f"{urlsplit(mirror).netloc or mirror}: {download_problem(e)}")
    finally:
        logger.setLevel(level)
    raise FashionCNNError(
        f"could not download {name} of {spec.name} from any mirror ({'; '.join(errors)}); download the four files by hand "
        f"and pass --data-dir (or set ${DATA_ENV}), or retry when the network is back"
    )


def download_problem(error: BaseException) -> str:
    """A few words for why one download failed (a library's message can run to 1,600 characters).

    Example:
        >>> download_problem(OSError("HTTPSConnectionPool(host='x', port=443): Max retries exceeded (Caused by NameResolutionError(...))"))
        'the host name could not be resolved (no network?)'
        >>> download_problem(ValueError("SHA256 hash of downloaded file (abc) does not match the known hash: expected def"))
        "the file's SHA-256 did not match (a damaged or different file)"
    """
    text = str(error)
    low = text.lower()
    status = re.search(r"\b([45]\d\d) (?:client|server) error", low)
    for found, words in (
        (status, f"HTTP {status.group(1)}" if status else ""),
        (
            "nameresolution" in low
            or "name or service not known" in low
            or "getaddrinfo" in low
            or "temporary failure in name resolution" in low,
            "the host name could not be resolved (no network?)",
        ),
        ("connection refused" in low, "the connection was refused"),
        ("timed out" in low or "timeout" in low, "the connection timed out"),
        ("hash" in low and ("match" in low or "mismatch" in low), "the file's SHA-256 did not match (a damaged or different file)"),
        ("ssl" in low or "certificate" in low, "a TLS/certificate error"),
        ("no space left" in low, "the disk is full"),
    ):
        if found:
            return words
    first = first_line(error, 80)
    return first if len(first) < 80 else first[: first.rfind(" ", 0, 80)] + "..."


def _progressbar() -> bool:
    try:
        import tqdm  # noqa: F401  (pooch draws its bar with tqdm when it is installed)

        return True
    except ImportError:
        return False
