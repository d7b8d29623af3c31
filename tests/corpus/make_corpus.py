"""Build the malformed-input corpus: IDX files, dataset folders, model files and images, each with its expected outcome.

    python tests/corpus/make_corpus.py            # rewrites tests/corpus/files/ and tests/corpus/expected.json

``expected.json`` maps each file (relative to ``files/``) to ``{"kind", "error"}`` — the loader must raise
FashionCNNError whose message contains ``error`` — or, for images that must decode, ``{"kind", "shape"}``.
Kinds: ``idx1`` / ``idx3`` (``read_idx`` with 1 or 3 dimensions), ``dataset`` (a folder for
``load_dataset``), ``folder`` (a ``folder:`` dataset), ``model`` (``load_model``), ``image`` (``load_image``). tests/test_fuzz.py checks every
entry, and that this script still produces the same list. Everything is deterministic and small.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save

HERE = Path(__file__).resolve().parent
TINY = {"filters": [2, 2], "hidden": 5}  # a tutorial-cnn with a few hundred weights keeps model files small


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    array = np.ascontiguousarray(array)
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def images(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def idx_cases() -> dict[str, tuple[str, bytes, str]]:
    good = idx_bytes(images())
    corrupt = bytearray(gz(good))
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 16] = b"\xff" * 16
    return {
        "idx-truncated-gzip.gz": ("idx3", gz(good)[: len(gz(good)) // 2], "is not a readable gzip file"),
        "idx-corrupt-gzip.gz": ("idx3", bytes(corrupt), "is not a readable gzip file"),
        "idx-not-gzip.gz": ("idx3", good, "is not a readable gzip file"),
        "idx-wrong-magic-ubyte": ("idx3", b"\x12\x34" + good[2:], "has magic number 0x12340803, not an IDX file"),
        "idx-float-values-ubyte": ("idx3", idx_bytes(images(1).astype(">f4"), 0x0D), "holds float32 values"),
        "idx-unknown-dtype-ubyte": ("idx3", bytes([0, 0, 0x42]) + good[3:], "holds unknown code 0x42 values"),
        "idx-wrong-dimensions-ubyte": ("idx3", idx_bytes(images()[0]), "has 2 dimensions, expected 3"),
        "idx-zero-dimensions-ubyte": ("idx1", bytes([0, 0, 8, 0]), "has 0 dimensions, expected 1"),
        "idx-header-cut-ubyte": ("idx3", good[:10], "ends inside its header"),
        "idx-data-cut-ubyte": (
            "idx3",
            good[: 16 + 3 * 784],
            "is truncated: its header declares shape (5, 28, 28) = 3,920 bytes of data but it holds 2,352",
        ),
        "idx-trailing-data-ubyte": ("idx3", good + b"\x00" * 7, "has trailing data"),
        "idx-huge-declared-size-ubyte": (
            "idx3",
            bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 60000, 60000) + b"\x00" * 64,
            "far beyond any dataset",
        ),
        "idx-huge-declared-size.gz": ("idx3", gz(bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000, 28, 28)), "far beyond any dataset"),
        # Found by the fuzz tests: zero images of 4-gigapixel size passed the size check and crashed numpy.
        "idx-zero-images-huge-sides-ubyte": (
            "idx3",
            bytes([0, 0, 8, 3]) + struct.pack(">3I", 0, 2**32 - 1, 2**32 - 1),
            "far beyond any dataset",
        ),
        "idx-zero-length-ubyte": ("idx1", b"", "is too short to be an IDX file (0 bytes)"),
        "idx-zero-length.gz": ("idx1", gz(b""), "is too short to be an IDX file (0 bytes)"),
    }


FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def dataset_cases() -> dict[str, tuple[dict[str, bytes], str]]:
    x = images(6)
    y = np.arange(6, dtype=np.uint8)
    ok = [gz(idx_bytes(x)), gz(idx_bytes(y)), gz(idx_bytes(x)), gz(idx_bytes(y))]
    counts = list(ok)
    counts[1] = gz(idx_bytes(y[:4]))
    labels = list(ok)
    labels[3] = gz(idx_bytes(np.array([1, 2, 12, 3, 4, 5], np.uint8)))
    sizes = list(ok)
    sizes[2] = gz(idx_bytes(images(6)[:, :20, :20]))
    return {
        # Issue 11: a folder dataset of one class trained a "classifier" that always answers it.
        "folder-one-class": (
            {f"{split}/coat/{split}.png": encode(Image.new("L", (30, 30), 200), "PNG") for split in ("train", "test")},
            "a classifier needs at least two",
        ),
        "dataset-counts-disagree": (dict(zip(FILES, counts)), "holds 6 images but"),
        "dataset-label-out-of-range": (dict(zip(FILES, labels)), "has label 12 but the dataset has 10 classes"),
        "dataset-image-sizes-differ": (dict(zip(FILES, sizes)), "train images are (28, 28) but test images are (20, 20)"),
    }


def model_cases() -> dict[str, tuple[bytes, str]]:
    from fashion_cnn import build_model
    from fashion_cnn.models.files import save_model

    torch.manual_seed(0)
    model = build_model("tutorial-cnn", **TINY)
    with tempfile.TemporaryDirectory() as tmp:
        good = save_model(Path(tmp) / "good.safetensors", model, classes=[f"c{i}" for i in range(10)]).read_bytes()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"format_version": 1, "arch": {"name": "tutorial-cnn", "kwargs": TINY}}

    def forged(tensors, meta_text):
        return save(tensors, metadata={"format": "fashion-cnn", "fashion_cnn": meta_text})

    wrong = build_model("tutorial-cnn", filters=[2, 2], hidden=6)
    buf = io.BytesIO()
    torch.save(tensors, buf)
    return {
        "model-truncated.safetensors": (good[: len(good) // 2], "is not a readable safetensors file"),
        "model-header-cut.safetensors": (good[:40], "is not a readable safetensors file"),
        "model-zero-length.safetensors": (b"", "is not a readable safetensors file (an empty file)"),
        "model-huge-header.safetensors": (struct.pack("<Q", 1 << 60) + b"{}", "is not a readable safetensors file (no safetensors header)"),
        "model-without-metadata.safetensors": (save(tensors), "not a fashion-cnn model (no fashion-cnn metadata)"),
        "model-bad-json.safetensors": (forged(tensors, "{not json"), "has unreadable fashion-cnn metadata"),
        "model-wrong-shapes.safetensors": (
            forged({k: v.contiguous() for k, v in wrong.state_dict().items()}, json.dumps(meta)),
            "tensor dense.linear.weight is (6, 98) torch.float32, the architecture needs (5, 98)",
        ),
        "model-missing-key.safetensors": (
            forged({k: v for k, v in tensors.items() if k != "dense_1.linear.bias"}, json.dumps(meta)),
            "missing dense_1.linear.bias",
        ),
        "model-unknown-architecture.safetensors": (
            forged(tensors, json.dumps({"arch": {"name": "resnet-9000"}})),
            "unknown model 'resnet-9000'",
        ),
        "model-pickle.pt": (pickle.dumps({"weights": [1.0, 2.0, 3.0]}, protocol=2), "is a pickle/torch.save file"),
        "model-torch-save.pt": (buf.getvalue(), "is a pickle/torch.save file"),
        # Issue 11: metadata is checked (types, bounds, class names against outputs) before anything is built from it.
        "model-huge-input.safetensors": (
            forged(tensors, json.dumps({**meta, "input": {"height": 30000, "width": 30000}})),
            "input.height is 30000, not a whole number from 1 to 4,096",
        ),
        "model-input-is-text.safetensors": (forged(tensors, json.dumps({**meta, "input": "28x28"})), "input is a str, not an object"),
        "model-classes-is-a-number.safetensors": (forged(tensors, json.dumps({**meta, "classes": 10})), "classes is not a list"),
        "model-fewer-class-names.safetensors": (
            forged(tensors, json.dumps({**meta, "classes": ["a", "b", "c"]})),
            "classes names 3 classes but the model has 10 outputs",
        ),
        "model-dataset-is-text.safetensors": (
            forged(tensors, json.dumps({**meta, "dataset": "fashion-mnist"})),
            "dataset is not an object with a name",
        ),
        "model-huge-architecture.safetensors": (
            forged(tensors, json.dumps({"arch": {"name": "tutorial-cnn", "kwargs": {**TINY, "hidden": 10**100}}})),
            "arch.kwargs.hidden is 1e+100, beyond 16,777,216",
        ),
        "model-deeply-nested-metadata.safetensors": (forged(tensors, "[" * 100_000 + "]" * 100_000), "unreadable fashion-cnn metadata"),
        "model-nan-weights.safetensors": (
            forged({**tensors, "dense.linear.weight": torch.full_like(tensors["dense.linear.weight"], float("nan"))}, json.dumps(meta)),
            "holds NaN or infinite weights (dense.linear.weight)",
        ),
    }


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_cases() -> dict[str, tuple[bytes, object]]:
    yy, xx = np.mgrid[0:40, 0:30]
    shirt = ((yy > 5) & (yy < 35) & (xx > 5) & (xx < 25)).astype(np.uint8)
    gray = np.where(shirt, 40, 235).astype(np.uint8)  # a dark garment on a light background
    rgb = np.stack([gray, gray // 2, 255 - gray], -1)
    rgba = np.dstack([rgb, np.where(shirt, 255, 0).astype(np.uint8)])  # transparent around the garment
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )
    good_png = encode(Image.fromarray(gray), "PNG")
    ok = [28, 28]
    return {
        "image-16-bit.png": (encode(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"), ok),
        "image-cmyk.jpg": (encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=90), ok),
        "image-palette.png": (encode(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "PNG"), ok),
        "image-palette-transparent.gif": (encode(Image.fromarray(gray).convert("P"), "GIF", transparency=0), ok),
        "image-alpha.png": (encode(Image.fromarray(rgba), "PNG"), ok),
        "image-gray-alpha.png": (encode(Image.fromarray(rgba).convert("LA"), "PNG"), ok),
        "image-1-bit.bmp": (encode(Image.fromarray(gray > 128).convert("1"), "BMP"), ok),
        "image-one-pixel.png": (encode(Image.new("L", (1, 1), 200), "PNG"), ok),
        "image-truncated.png": (good_png[: len(good_png) // 2], "could not be decoded"),
        "image-zero-length.jpg": (b"", "is not a PNG, JPEG, WebP, BMP or GIF image"),
        "image-text.png": (b"this is not an image\n" * 4, "is not a PNG, JPEG, WebP, BMP or GIF image"),
        "image-tiff.tif": (encode(Image.fromarray(gray), "TIFF"), "is not a PNG, JPEG, WebP, BMP or GIF image"),
        "image-declares-10-gigapixels.png": (bomb, "more than the 40,000,000 allowed"),
    }


def build(out: Path) -> dict:
    """Write every case under ``out/files`` and return the expected outcomes (also written to ``out/expected.json``)."""
    files = out / "files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    expected = {}
    for name, (kind, data, error) in idx_cases().items():
        (files / name).write_bytes(data)
        expected[name] = {"kind": kind, "error": error}
    for name, (members, error) in dataset_cases().items():
        (files / name).mkdir()
        for member, data in members.items():
            (files / name / member).parent.mkdir(parents=True, exist_ok=True)
            (files / name / member).write_bytes(data)
        expected[name] = {"kind": name.split("-")[0], "error": error}
    for name, (data, error) in model_cases().items():
        (files / name).write_bytes(data)
        expected[name] = {"kind": "model", "error": error}
    for name, (data, outcome) in image_cases().items():
        (files / name).write_bytes(data)
        expected[name] = {"kind": "image", "shape": outcome} if isinstance(outcome, list) else {"kind": "image", "error": outcome}
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    return expected


if __name__ == "__main__":
    found = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
    print(f"wrote {len(found)} cases")
