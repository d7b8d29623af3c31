"""Read IDX files (the format of MNIST, Fashion-MNIST and Kuzushiji-MNIST), refusing anything malformed.

An IDX file is: two zero bytes, a dtype code, the number of dimensions, one big-endian uint32 per
dimension, then the values in row-major order. fashion-cnn reads unsigned-byte files only, which is what
the image and label files of all three datasets are.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import FashionCNNError
from ..files import atomic_write_bytes

UBYTE = 0x08
#: The four files of every IDX dataset, by role, and their official names.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_DTYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_CHUNK = 1 << 20
#: No IDX file of these datasets comes near this; a larger declared size is a corrupt or hostile header.
MAX_PAYLOAD = 1 << 31


def read_idx(path: str | Path, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a uint8 array, checking every part of its header.

    Args:
        path: the file; a name ending in ``.gz`` is decompressed.
        ndim: the number of dimensions the caller expects (3 for images, 1 for labels), or None.

    Raises:
        FashionCNNError: the file is missing, not gzip, has a wrong magic number, dtype or dimension
            count, or holds more or fewer bytes than its header declares.

    Example:
        >>> images = read_idx(toy_data / "train-images-idx3-ubyte.gz", ndim=3)
        >>> images.shape, images.dtype     # (60000, 28, 28) for the real Fashion-MNIST
        ((300, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    if not path.is_file():
        raise FashionCNNError(f"IDX file {path} does not exist; check --data-dir or let fashion-cnn download the data")
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            return _parse(f, path, ndim)
    except (OSError, EOFError, zlib.error) as e:
        raise FashionCNNError(
            f"{path} is not a readable {'gzip' if path.name.endswith('.gz') else 'IDX'} file ({e}); delete it and download it again"
        ) from None


def _parse(f, path: Path, ndim: int | None) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4:
        raise FashionCNNError(f"{path} is too short to be an IDX file ({len(head)} bytes); download it again")
    zero0, zero1, code, dims = head
    if zero0 or zero1:
        raise FashionCNNError(
            f"{path} has magic number 0x{int.from_bytes(head, 'big'):08X}, not an IDX file "
            "(expected 0x00000801 for labels or 0x00000803 for images); check that it is the right file"
        )
    if code != UBYTE:
        kind = _DTYPE_NAMES.get(code, f"unknown code 0x{code:02X}")
        raise FashionCNNError(f"{path} holds {kind} values; fashion-cnn reads unsigned-byte IDX files (code 0x08)")
    if dims == 0 or (ndim is not None and dims != ndim):
        want = f"{ndim}" if ndim is not None else "at least 1"
        raise FashionCNNError(f"{path} has {dims} dimensions, expected {want}; check that it is the right file")
    raw_shape = f.read(4 * dims)
    if len(raw_shape) < 4 * dims:
        raise FashionCNNError(f"{path} ends inside its header; download it again")
    shape = struct.unpack(f">{dims}I", raw_shape)
    size = math.prod(shape)
    # Zero-sized dimensions do not excuse the others: numpy refuses (0, 2**32-1, 2**32-1) too.
    if math.prod(max(d, 1) for d in shape) > MAX_PAYLOAD:
        raise FashionCNNError(
            f"{path} declares shape {shape} ({size:,} bytes), far beyond any dataset fashion-cnn reads; the header is corrupt"
        )
    buf = bytearray()  # grows with what is really there, however large the header claims the data is
    while len(buf) <= size:
        chunk = f.read(min(_CHUNK, size + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
    got = len(buf)
    if got != size:
        what = "is truncated" if got < size else "has trailing data"
        shown = f"{got:,}" if got <= size else f"more than {size:,}"
        raise FashionCNNError(
            f"{path} {what}: its header declares shape {shape} = {size:,} bytes of data but it holds {shown}; download it again"
        )
    return np.frombuffer(buf, dtype=np.uint8).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed when the name ends in ``.gz``).

    Used by the tests to build small datasets and by anyone exporting data in the MNIST format.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
