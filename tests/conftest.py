"""Shared fixtures: small IDX datasets built on the fly, and the real Fashion-MNIST where present."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from fashion_cnn.data import write_idx
from fashion_cnn.data.registry import DatasetSpec

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def make_images(n: int, seed: int, side: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy data: class c is a bright horizontal bar at row 2c+4 over dim noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, side, side)).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 2 * int(c) + 4
        images[i, row : row + 2, 4 : side - 4] = 230
    return images, labels


def write_dataset(folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    xtr, ytr = make_images(n_train, seed)
    xte, yte = make_images(n_test, seed + 1)
    for role, arr in zip(FILES, (xtr, ytr, xte, yte)):
        write_idx(folder / FILES[role], arr)
    return folder


def spec_for(folder: Path, mirrors: tuple[str, ...], name: str = "toy") -> DatasetSpec:
    sha = {role: hashlib.sha256((folder / f).read_bytes()).hexdigest() for role, f in FILES.items()}
    return DatasetSpec(name=name, sha256=sha, mirrors=mirrors, classes=tuple(f"class{i}" for i in range(10)))


@pytest.fixture
def toy_dir(tmp_path) -> Path:
    return write_dataset(tmp_path / "toy")


@pytest.fixture
def real_dir() -> Path:
    if not (REAL_DATA / FILES["train_images"]).is_file():
        pytest.skip(f"the real Fashion-MNIST is not at {REAL_DATA}; these tests need the shared copy")
    return REAL_DATA


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No test reads the user's cache or data variable, or the network."""
    monkeypatch.setenv("FASHION_CNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FASHION_CNN_DATA", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
