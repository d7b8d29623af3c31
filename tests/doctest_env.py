"""The names the docstring examples in ``src/fashion_cnn`` use, so ``--doctest-modules`` runs them for real.

A pytest plugin (``-p doctest_env`` in pyproject.toml): every doctest runs in a fresh temporary folder
(its working directory, also named ``tmp``) holding ``photo.jpg`` and ``sneaker.jpg``, with:

    fc, and every public name of fashion_cnn    the package itself
    toy_data    a folder with a small Fashion-MNIST-like IDX dataset (300 training, 100 test images)
    train_set, val_set   its training set split 240 / 60, as the tutorial splits
    images      its 100 test images (uint8, N × 28 × 28); labels, their classes; classes, the class names
    run_dir     a run directory trained on it for 3 epochs (read it, do not change it)
    model       that run's best model

Like the tests, a doctest sees neither the user's cache nor ``$FASHION_CNN_DATA``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem

PHOTO = Path(__file__).parent / "data" / "sneaker-on-table.jpg"


def _tests_conftest():
    """tests/conftest.py as a module, whichever conftest the name ``conftest`` means now (the root one when
    only src/ is collected)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fashion_cnn_tests_conftest", Path(__file__).parent / "conftest.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def doctest_world(tmp_path_factory) -> dict:
    import fashion_cnn as fc

    write_dataset = _tests_conftest().write_dataset

    root = tmp_path_factory.mktemp("doctest-world")
    toy = write_dataset(root / "toy")
    data = fc.load_dataset("fashion-mnist", toy)
    train, val = fc.train_val_split(data.train)
    run = fc.train(fc.TrainConfig(data_dir=str(toy), epochs=3, runs_dir=str(root / "runs"), name="tutorial"), verbose=False)
    return {
        "toy_data": toy,
        "train_set": train,
        "val_set": val,
        "images": data.test.images,
        "labels": data.test.labels,
        "classes": list(data.classes),
        "run_dir": run.run_dir,
        "model": fc.load_model(run.run_dir),
    }


@pytest.fixture(autouse=True)
def _doctest_names(request, monkeypatch, tmp_path):
    if not isinstance(request.node, DoctestItem):
        yield
        return
    import fashion_cnn as fc
    from fashion_cnn.models import registry

    monkeypatch.setenv("FASHION_CNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FASHION_CNN_DATA", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    for name in ("photo.jpg", "sneaker.jpg"):
        shutil.copy(PHOTO, tmp_path / name)
    names = request.getfixturevalue("doctest_namespace")
    names.update({name: getattr(fc, name) for name in fc.__all__}, fc=fc, tmp=tmp_path)
    names.update(request.getfixturevalue("doctest_world"))
    registered = dict(registry._BUILDERS)
    yield
    # An example that registers an architecture must not leave it behind for the tests.
    registry._BUILDERS.clear()
    registry._BUILDERS.update(registered)
