import struct

import numpy as np
import pytest

from conftest import gz
from fashion_cnn import FashionCNNError
from fashion_cnn.data import read_idx, write_idx


def header(code=0x08, dims=(3, 2, 2)):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_round_trip_plain_and_gzip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, arr)
        out = read_idx(tmp_path / name, ndim=3)
        assert out.shape == (2, 3, 4) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, arr)
        out[0, 0, 0] = 7  # a writable array (torch.from_numpy warns on read-only ones)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (b"\x12\x34\x08\x03" + b"\x00" * 24, "magic number 0x12340803"),
        (header(code=0x0D) + b"\x00" * 48, "float32"),
        (header(dims=(3, 2)) + b"\x00" * 6, "2 dimensions, expected 3"),
        (header() + b"\x00" * 11, "truncated"),
        (header() + b"\x00" * 13, "trailing data"),
        (bytes([0, 0, 8, 3]) + b"\x00\x00", "ends inside its header"),
        (header(dims=(0xFFFFFFFF, 0xFFFF, 0xFFFF)), "far beyond"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(tmp_path, data, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(FashionCNNError, match=message):
        read_idx(path, ndim=3)
    path = tmp_path / "bad.idx.gz"
    path.write_bytes(gz(data))
    with pytest.raises(FashionCNNError, match=message):
        read_idx(path, ndim=3)


def test_not_gzip_and_truncated_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"this is not gzip")
    with pytest.raises(FashionCNNError, match="not a readable gzip"):
        read_idx(tmp_path / "x.gz")
    good = gz(header() + b"\x01" * 12)
    (tmp_path / "y.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(FashionCNNError, match=r"y.gz is not a readable gzip file \(Compressed file ended before the end-of-stream marker"):
        read_idx(tmp_path / "y.gz")


def test_missing_file(tmp_path):
    with pytest.raises(FashionCNNError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")
