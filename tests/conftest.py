"""Shared fixtures: small IDX datasets built on the fly, runs trained once per session, and the real
Fashion-MNIST where present.

Training is what makes this suite slow, so each kind of run is trained once: ``toy_run`` (the command line
on the toy data) and ``real_model`` (a quick model of the real Fashion-MNIST). Tests read them; a test that
changes a run works on a copy (``copy_run``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import extras_guard
from fashion_cnn.data import write_idx
from fashion_cnn.data.registry import DatasetSpec

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"

extras_guard.install()  # a test module never skips for a package the test extra should have installed


# pytest-xdist (addopts in pyproject.toml) runs the tests in one process per core. Each worker is pinned to a
# core of its own, so torch in it (and `fashion-cnn train`, which takes this process's share of the cores)
# uses one thread instead of fighting the other worker with spinning threads.
ALL_CORES = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()


def pytest_configure(config):
    worker, workers = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker and 1 < workers <= len(ALL_CORES):
        os.sched_setaffinity(0, sorted(ALL_CORES)[int(worker.removeprefix("gw")) :: workers])
        torch.set_num_threads(len(os.sched_getaffinity(0)))


def pytest_collection_modifyitems(config, items):
    """For pytest-xdist's ``--dist loadgroup``: the tests that share an expensive fixture run in one worker,
    so it is made once (a module's module-scoped fixtures; ``real_model``); the others go test by test."""
    if not config.pluginmanager.hasplugin("xdist") or config.getoption("dist", "no") != "loadgroup":
        return
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        fixtures = info.name2fixturedefs if info else {}
        if "real_model" in fixtures:
            item.add_marker(pytest.mark.xdist_group("real_model"))
        elif any(defs[-1].scope == "module" for defs in fixtures.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@contextlib.contextmanager
def all_cores():
    """Start processes here that should spread over every core (children inherit the worker's pinning)."""
    if not ALL_CORES:
        yield
        return
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ALL_CORES)
    try:
        yield
    finally:
        os.sched_setaffinity(0, pinned)


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


@pytest.fixture(autouse=True)
def same_torch_threads():
    """``fashion-cnn train --threads N`` (and ``torch.set_num_threads``) in a test does not leak into the next."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def isolated(root: Path):
    """``isolated_env`` for session and module fixtures, which run outside any one test."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHION_CNN_CACHE", str(root / "cache"))
        mp.delenv("FASHION_CNN_DATA", raising=False)
        mp.setenv("MPLBACKEND", "Agg")
        try:
            yield
        finally:
            torch.set_num_threads(threads)


@dataclass(frozen=True)
class ToyRun:
    path: Path  # the run directory: read it, never change it (copy_run gives a copy to change)
    data: Path  # the toy dataset it was trained on
    argv: tuple[str, ...]  # the command line that trained it (after `fashion-cnn`)
    output: str  # what that command printed


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    """The toy dataset of ``toy_dir``, written once: read it, never change it (``toy_dir`` is a fresh copy)."""
    return write_dataset(tmp_path_factory.mktemp("toy-data") / "toy")


@pytest.fixture(scope="session")
def toy_run(toy_data, tmp_path_factory) -> ToyRun:
    """``fashion-cnn train`` for 2 epochs in steps of 16 on the toy data: a complete run directory, trained once.

    For the command line, resuming, the pictures and reports, and exports.
    """
    from fashion_cnn.cli import main

    root = tmp_path_factory.mktemp("toy-run")
    argv = (
        "train",
        "--data-dir",
        str(toy_data),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--seed",
        "5",
        "--runs-dir",
        str(root),
        "--name",
        "toy",
    )
    out = io.StringIO()
    with isolated(root), contextlib.redirect_stdout(out):
        code = main(list(argv))
    assert code == 0, out.getvalue()
    return ToyRun(root / "toy", toy_data, argv, out.getvalue())


def copy_run(run: Path, to: Path) -> Path:
    """A copy of the run directory ``run`` at ``to``, for a test that changes it."""
    return Path(shutil.copytree(run, to))


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


@pytest.fixture(scope="module")
def chromium_browser():
    """A headless Chromium driven by Playwright, for tests that open pages (reports, the web service).

    One per module, not per session: while Playwright's synchronous API is open, this thread has a running
    asyncio loop, and any later test that runs one of its own (asyncio.run, anyio.run) would fail.

    Uses the system /usr/bin/chromium (apt-get install -y chromium); Playwright's own browser download
    (`playwright install`) is never used. Skips, saying how to install it, where that Chromium is absent;
    Playwright itself is in the test extra, so without it the tests fail.
    """
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing; install it with: apt-get update && apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def real_model(tmp_path_factory) -> Path:
    """A model file quickly trained on the real Fashion-MNIST: 2 epochs on 6,000 training images (about 85%
    test accuracy), as `fashion-cnn train --limit 6000 --epochs 2` trains it, once per session. Skips, saying
    why, where the real data is absent.

    ``fit`` is called directly: a run directory's validation, final evaluation and report (34,000 images)
    would cost more than the training itself, and no test needs them.
    """
    if not (REAL_DATA / FILES["train_images"]).is_file():
        pytest.skip(f"the real Fashion-MNIST is not at {REAL_DATA}; these tests need the shared copy")
    from fashion_cnn import build_model, fit, load_dataset, save_model, train_val_split
    from fashion_cnn.models.metadata import dataset_meta

    root = tmp_path_factory.mktemp("real-model")
    with isolated(root):
        # One thread: on a shared 2-core machine, two spinning intra-op threads are many times slower.
        torch.set_num_threads(1)
        data = load_dataset("fashion-mnist", REAL_DATA)
        train, _ = train_val_split(data.train)
        torch.manual_seed(0)
        model = build_model("tutorial-cnn")
        # No validation set: it would not change the weights, only cost time.
        fit(model, train.subset(slice(0, 6000)), epochs=2, batch_size=32, seed=0, precision="auto", verbose=False)
        return save_model(root / "quick.safetensors", model, **dataset_meta(data, data.train.images.shape[1:], 0.2, 42), epoch=2)


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


@pytest.fixture(scope="module")
def server_url(untrained_model_file):
    """``fashion-cnn serve`` in a thread, on a free port of 127.0.0.1, for the page tests; stopped after the module."""
    import socket
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
    from fashion_cnn.serving.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(str(untrained_model_file)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start within 30 s")
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(10)
    sock.close()


def wait_until_serving(proc, port: int, seconds: float = 60) -> None:
    """Wait for a ``fashion-cnn serve`` subprocess to answer ``/health`` on ``port``; fail if it dies or is slow."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)


def draw_a_stroke(page) -> None:
    """On the service's page: open the drawing tab and draw a thick horizontal stroke with a bump."""
    page.click("#tab-draw")
    box = page.locator("#canvas").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.2 * w, y0 + 0.5 * h)
    page.mouse.down()
    for i in range(1, 21):  # in small moves, as a hand would
        page.mouse.move(x0 + (0.2 + 0.03 * i) * w, y0 + (0.5 - 0.1 * (8 <= i <= 12)) * h)
    page.mouse.up()


def one_line_error(capsys, code: int, *parts: str) -> str:
    """Assert a command ended with exit status 2 and one line on stderr holding every part; return the line."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err
