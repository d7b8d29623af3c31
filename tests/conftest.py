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


CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium in a container: no sandbox, no GPU, and nothing that reaches the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_browser():
    """A headless Chromium driven by Playwright, for tests that open pages (reports, the web service).

    Uses the system /usr/bin/chromium (apt-get install -y chromium); Playwright's own browser download
    (`playwright install`) is never used. Skips, saying what is missing, when either is absent.
    """
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing; install it with: apt-get update && apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed; install the test extra: pip install -c constraints.txt -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def untrained_model_file(tmp_path_factory) -> Path:
    """A tutorial-cnn with random weights and Fashion-MNIST's class names: enough to exercise predict and serve."""
    import torch

    from fashion_cnn.data.registry import FASHION_MNIST
    from fashion_cnn.models import build_model, save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "untrained.safetensors"
    save_model(
        path,
        build_model("tutorial-cnn"),
        classes=list(FASHION_MNIST.classes),
        classes_ko=list(FASHION_MNIST.classes_ko),
        input={"channels": 1, "height": 28, "width": 28, "scale": 1 / 255},
    )
    return path
