"""Any bytes give a result or fashion-cnn's own one-line error, never another exception.

Property tests (hypothesis) for the IDX reader, the model-file loader, the training-state loader and the
image decoder, plus the checked-in corpus of malformed files (tests/corpus, rebuilt by make_corpus.py).
"""

import gzip
import json
import os
import re
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from fashion_cnn import FashionCNNError, build_model, load_dataset, load_model, save_model
from fashion_cnn.data.idx import read_idx
from fashion_cnn.data.images import load_image
from fashion_cnn.training.checkpoint import load_state

CORPUS = Path(__file__).parent / "corpus"
# Quick by default; FASHION_CNN_FUZZ_EXAMPLES=5000 for a long hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("FASHION_CNN_FUZZ_EXAMPLES", 60)), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_SCRATCH = tempfile.TemporaryDirectory(prefix="fashion-cnn-fuzz-")  # removed when the test session ends
SCRATCH = Path(_SCRATCH.name)


def outcome(load, path):
    """The loader's result, or None when it refused with FashionCNNError; any other exception fails the test."""
    try:
        return load(path)
    except FashionCNNError as e:
        message = str(e)
        assert message and "\n" not in message and "Traceback" not in message
        return None


def write(name: str, data: bytes) -> Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


# --- IDX ---------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=2048), compressed=st.booleans(), name_gz=st.booleans(), ndim=st.sampled_from([None, 1, 3]))
def test_idx_reader_on_any_bytes(data, compressed, name_gz, ndim):
    path = write("any.gz" if name_gz else "any-ubyte", gzip.compress(data, mtime=0) if compressed else data)
    result = outcome(lambda p: read_idx(p, ndim=ndim), path)
    if result is not None:
        assert result.dtype == np.uint8 and (ndim is None or result.ndim == ndim)


@st.composite
def idx_files(draw):
    """Headers that are nearly right: the dimensions and payload lengths where the bugs hide."""
    dims = draw(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), min_size=0, max_size=4))
    code = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D, 0xFF]))
    size = int(np.prod(dims, dtype=object)) if dims else 0
    extra = draw(st.integers(-3, 3))
    payload = bytes(max(0, min(size, 4096) + extra)) if size <= 4096 else bytes(draw(st.integers(0, 64)))
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims), payload, dims, code, size


@FUZZ
@given(case=idx_files(), compressed=st.booleans(), cut=st.sampled_from([0, 0, 0, 1, 5]))
def test_idx_reader_on_near_valid_headers(case, compressed, cut):
    header, payload, dims, code, size = case
    data = (header + payload)[: len(header) + len(payload) - cut]
    path = write("near.gz" if compressed else "near-ubyte", gzip.compress(data, mtime=0) if compressed else data)
    result = outcome(read_idx, path)
    if result is not None:  # accepted only when everything agrees
        assert code == 0x08 and dims and list(result.shape) == dims and len(data) - len(header) == size


# --- model files -------------------------------------------------------------------------------------


def small_model_bytes() -> bytes:
    torch.manual_seed(0)
    return save_model(SCRATCH / "small.safetensors", build_model(filters=(2, 2), hidden=3), classes=list("abcdefghij")).read_bytes()


SMALL = small_model_bytes()


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".safetensors", ".pt", ".onnx"]))
def test_model_loader_on_any_bytes(data, suffix):
    outcome(load_model, write("any" + suffix, data))


@FUZZ
@given(cut=st.integers(0, len(SMALL)), flips=st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(1, 255)), max_size=4))
def test_model_loader_on_damaged_model_files(cut, flips):
    data = bytearray(SMALL[:cut])
    for at, xor in flips:
        if at < len(data):
            data[at] ^= xor
    model = outcome(load_model, write("damaged.safetensors", bytes(data)))
    if model is not None:  # a flip inside the weights (or a harmless one in the header) still loads; a cut never
        assert cut == len(SMALL)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@FUZZ
@given(
    arch=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["tutorial-cnn", "x"]),
                "kwargs": st.dictionaries(
                    st.sampled_from(["num_classes", "in_channels", "image_size", "filters", "hidden", "dropout", "other"]),
                    st.one_of(st.integers(-3, 40), st.lists(st.integers(-1, 4), max_size=3), st.floats(), st.text(max_size=3)),
                    max_size=3,
                ),
            }
        ),
    )
)
def test_model_loader_on_hostile_metadata(arch):
    from safetensors.torch import load_file, save

    tensors = load_file(write("small.safetensors", SMALL))
    data = save(tensors, metadata={"format": "fashion-cnn", "fashion_cnn": json.dumps({"arch": arch})})
    outcome(load_model, write("hostile.safetensors", data))


near_valid_input = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={k: st.one_of(st.integers(-5, 10**12), st.floats(), st.text(max_size=4)) for k in ("height", "width", "channels")}
    ),
)
class_lists = st.one_of(json_values, st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=12))


@FUZZ
@given(
    extra=st.fixed_dictionaries(
        {},
        optional={
            "input": near_valid_input,
            "classes": class_lists,
            "classes_ko": class_lists,
            "dataset": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"name": st.one_of(st.text(max_size=20), st.just("folder:/etc"))},
                    optional={"val_fraction": json_values, "split_seed": json_values},
                ),
            ),
            "epoch": json_values,
            "metrics": json_values,
        },
    )
)
def test_model_loader_on_hostile_header_entries(extra):
    """Any entry of the metadata beside the architecture: a model that loads is one the rest of fashion-cnn can use
    (a name for each output, a bounded input, a dataset that is an object); anything else is one line."""
    from safetensors.torch import load_file, save

    from fashion_cnn.models.metadata import class_names, input_side

    tensors = load_file(write("small.safetensors", SMALL))
    header = {"arch": {"name": "tutorial-cnn", "kwargs": {"filters": [2, 2], "hidden": 3}}, **extra}
    data = save(tensors, metadata={"format": "fashion-cnn", "fashion_cnn": json.dumps(header)})
    model = outcome(load_model, write("header.safetensors", data))
    if model is not None:
        assert len(class_names(model.meta)) == len(class_names(model.meta, "ko")) == 10
        assert all(isinstance(c, str) for c in class_names(model.meta) + class_names(model.meta, "ko"))
        assert 1 <= input_side(model.meta) <= 4096
        dataset = model.meta.get("dataset") or {}
        assert isinstance(dataset.get("name", ""), str)
        assert dataset.get("val_fraction") is None or 0 < dataset["val_fraction"] < 1
        assert dataset.get("split_seed") is None or 0 <= dataset["split_seed"] < 2**32


# Flags whose values are free text on the command line (the folders, --dataset and --device read or touch the
# machine, so they are left out). Every value must end in a one-line refusal naming the flag, or in the one
# error that comes next: the (empty) data folder — never a traceback, and never a run directory.
SETTING_FLAGS = ["--seed", "--split-seed", "--threads", "--name", "--lr", "--epochs", "--batch-size", "--patience"]
SETTING_FLAGS += ["--val-fraction", "--limit", "--adam-epsilon", "--monitor", "--schedule", "--precision"]
flag_values = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "1", "-1", "1e23", "1e308", "nan", "inf", "-0", "0x10", "1_000", "", " ", "..", "a/b", "x" * 300]),
    st.text(max_size=120),
)


@FUZZ
@given(settings=st.dictionaries(st.sampled_from(SETTING_FLAGS), flag_values, min_size=1, max_size=3))
def test_train_settings_any_value_is_one_line(settings):
    from contextlib import redirect_stderr
    from io import StringIO

    from fashion_cnn.cli import main

    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        empty, runs = Path(tmp, "no-data"), Path(tmp, "runs")
        empty.mkdir()
        args = ["train", "--data-dir", str(empty), "--runs-dir", str(runs), "--quiet", "--epochs", "1"]
        for flag, value in settings.items():
            args += [f"{flag}={value}"]  # '=' keeps a value that starts with '-' a value
        err = StringIO()
        with redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as e:  # argparse: a value of the wrong type (the command's usage, then one error line)
                code = e.code
        lines = err.getvalue().strip().splitlines()
        assert code == 2, err.getvalue()
        assert "Traceback" not in err.getvalue() and lines and lines[-1].startswith("fashion-cnn"), err.getvalue()
        assert len(lines) == 1 or lines[0].startswith("usage:") and not lines[-2].startswith("fashion-cnn"), err.getvalue()
        assert not runs.exists() or not any(runs.iterdir()), "a refused setting left a run directory"


@FUZZ
@given(data=st.binary(max_size=2048))
def test_training_state_loader_on_any_bytes(data):
    outcome(load_state, write("state.safetensors", data))


# --- images ------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096))
def test_image_decoder_on_any_bytes(data):
    result = outcome(load_image, data)
    if result is not None:
        assert result.shape == (28, 28) and result.dtype == np.uint8


@FUZZ
@given(
    h=st.integers(1, 64),
    w=st.integers(1, 64),
    mode=st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "CMYK"]),
    fmt=st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "WEBP"]),
    seed=st.integers(0, 2**16),
    cut=st.sampled_from([None, 0.5, 0.9]),
)
def test_image_decoder_on_odd_modes_sizes_and_truncation(h, w, mode, fmt, seed, cut):
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert(mode) if mode != "I;16" else Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
    buf = __import__("io").BytesIO()
    try:
        image.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # this format cannot store this mode: nothing to test
    data = buf.getvalue()
    if cut:
        data = data[: int(len(data) * cut)]
    result = outcome(load_image, data)
    if cut is None:
        assert result is not None and result.shape == (28, 28)


# --- the corpus --------------------------------------------------------------------------------------

EXPECTED = json.loads((CORPUS / "expected.json").read_text())
LOADERS = {
    "idx1": lambda p: read_idx(p, ndim=1),
    "idx3": lambda p: read_idx(p, ndim=3),
    "dataset": lambda p: load_dataset("fashion-mnist", p, download=False),
    "folder": lambda p: load_dataset(f"folder:{p}"),
    "model": load_model,
    "image": load_image,
}


def test_corpus_is_large_and_varied():
    kinds = [e["kind"] for e in EXPECTED.values()]
    assert len(EXPECTED) >= 20 and {"idx1", "idx3", "dataset", "folder", "model", "image"} <= set(kinds)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_its_expected_outcome(name):
    entry, path = EXPECTED[name], CORPUS / "files" / name
    if "error" in entry:
        with pytest.raises(FashionCNNError, match=re.escape(entry["error"])) as e:
            LOADERS[entry["kind"]](path)
        assert "\n" not in str(e.value)
    else:
        assert list(LOADERS[entry["kind"]](path).shape) == entry["shape"]


def test_make_corpus_still_builds_the_checked_in_corpus(tmp_path):
    sys.path.insert(0, str(CORPUS))
    try:
        import make_corpus
    finally:
        sys.path.remove(str(CORPUS))
    assert make_corpus.build(tmp_path) == EXPECTED
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == sorted(EXPECTED)
    for name, entry in EXPECTED.items():  # same bytes where the writer is deterministic (safetensors orders its header freely)
        if entry["kind"].startswith("idx"):
            assert (tmp_path / "files" / name).read_bytes() == (CORPUS / "files" / name).read_bytes(), name
