"""The notebooks run top to bottom in a Jupyter kernel, as a reader runs them, on a few hundred images.

``notebooks/tutorial.ipynb`` and then ``notebooks/inside.ipynb`` (which reads the model the first saved) are
executed once for the module in one empty folder, by nbclient, on the real Fashion-MNIST where present (else
on toy data, and the tests that need the real images skip, saying so). A cell that raises fails the run; any
output on stderr (a warning, a missing Hangul glyph) fails ``test_no_warnings``. The committed notebooks
carry no outputs (``test_outputs_are_stripped_in_git``).

    python -m pytest -q -p no:cacheprovider -n 0 tests/test_notebooks.py
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FILES, REAL_DATA, isolated, write_dataset

nbformat = pytest.importorskip("nbformat", reason="the test extra is not installed: pip install -c constraints.txt -e '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="the test extra is not installed: pip install -c constraints.txt -e '.[test]'")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LIMIT, EPOCHS = 300, 2
HAVE_REAL = (REAL_DATA / FILES["train_images"]).is_file()
NEEDS_REAL = pytest.mark.skipif(not HAVE_REAL, reason=f"the real Fashion-MNIST is not at {REAL_DATA}; the notebooks ran on toy data")


@dataclass
class Executed:
    nb: nbformat.NotebookNode
    seconds: float

    def cell(self, starts: str) -> nbformat.NotebookNode:
        """The one code cell whose source starts with ``starts``."""
        found = [c for c in self.nb.cells if c.cell_type == "code" and c.source.startswith(starts)]
        assert len(found) == 1, f"{len(found)} cells start with {starts!r}"
        return found[0]

    def outputs(self):
        return [(c, o) for c in self.nb.cells if c.cell_type == "code" for o in c.outputs]


def text_of(cell, stream: str = "stdout") -> str:
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream" and o.name == stream:
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data") and stream == "stdout":
            parts.append(o.data.get("text/plain", ""))
    return "".join(parts)


def run_notebook(name: str, folder: Path) -> Executed:
    """Execute ``notebooks/NAME.ipynb`` in ``folder`` (its working directory), as Jupyter's Run All does."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    return Executed(nb, time.perf_counter() - t0)


def kernel_env(mp: pytest.MonkeyPatch, data_dir: Path) -> None:
    """What the kernel inherits: the data folder, the small subset, every warning shown, Jupyter's own backend."""
    mp.setenv("FASHION_CNN_DATA", str(data_dir))
    mp.setenv("FASHION_CNN_NOTEBOOK_LIMIT", str(LIMIT))
    mp.setenv("FASHION_CNN_NOTEBOOK_EPOCHS", str(EPOCHS))
    mp.setenv("PYTHONWARNINGS", "default")  # DeprecationWarnings too, once per place, on the cell's stderr
    # The suite's Agg (conftest) would keep figures from being shown inline; a notebook picks its own backend.
    mp.delenv("MPLBACKEND", raising=False)


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Executed]:
    root = tmp_path_factory.mktemp("notebooks")
    data_dir = REAL_DATA if HAVE_REAL else write_dataset(root / "toy")
    if not HAVE_REAL:
        print(f"the real Fashion-MNIST is not at {REAL_DATA}: running the notebooks on toy data")
    folder = root / "work"
    folder.mkdir()
    with isolated(root), pytest.MonkeyPatch.context() as mp:
        kernel_env(mp, data_dir)
        runs = {name: run_notebook(name, folder) for name in ("tutorial", "inside")}
    print(", ".join(f"{name}: {r.seconds:.1f} s" for name, r in runs.items()))
    return {**runs, "folder": folder}


@pytest.mark.parametrize("name", ["tutorial", "inside"])
def test_every_cell_ran(executed, name):
    run = executed[name]
    code = [c for c in run.nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for _, o in run.outputs() if o.output_type == "error"]


@pytest.mark.parametrize("name", ["tutorial", "inside"])
def test_no_warnings(executed, name):
    """Nothing on stderr, and no warning text anywhere (a missing Hangul glyph would be a UserWarning here)."""
    run = executed[name]
    stderr = [(c.source.splitlines()[0], o.text) for c, o in run.outputs() if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr
    for cell, _ in run.outputs():
        assert not re.search(r"Warning\b|warn\(", text_of(cell)), cell.source


# The cells that draw a picture, by their first line; each shows exactly one figure, inline, as a PNG.
FIGURES = {
    "tutorial": [
        "fc.plot_images(",
        "fc.plot_model(",
        'fc.plot_history(history, "loss")',
        'fc.plot_history(history, "accuracy")',
        "fc.show_image(",
        "probs = fc.predict_proba(",
        "result = fc.analyze(",
        "fc.plot_top_losses(",
        "from fashion_cnn.data.ood_sets import ood_set",  # the reliability diagram
    ],
    "inside": [
        "fc.plot_filters(",
        'fc.plot_feature_maps(maps["conv2d"]',
        'fc.plot_feature_maps(maps["conv2d_1"]',
        "train, val = fc.train_val_split(",
        "runner_up = ",
        "fc.plot_embedding(",
    ],
}


@pytest.mark.parametrize("name", ["tutorial", "inside"])
def test_figures_show_inline(executed, name):
    run = executed[name]
    shown = {}
    for cell in run.nb.cells:
        if cell.cell_type == "code":
            pngs = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data") and "image/png" in o.data]
            if pngs:
                shown[cell.source.splitlines()[0]] = len(pngs)
    assert sorted(shown.values()) == [1] * len(FIGURES[name])
    for first in FIGURES[name]:
        assert len(run.cell(first).outputs) >= 1
        assert [o for o in run.cell(first).outputs if "image/png" in o.get("data", {})], first
    # A figure IPython cannot draw shows up as its text alone: "<Figure size 640x480 with 1 Axes>".
    assert not [o for _, o in run.outputs() if "<Figure size" in o.get("data", {}).get("text/plain", "") and "image/png" not in o.data]
    assert not [o for _, o in run.outputs() if o.output_type == "stream" and "<Figure size" in o.text]


def test_training_prints_one_line_per_epoch(executed):
    """No carriage returns or terminal codes in a notebook: 'Epoch k/N', then one progress line when it ends."""
    out = text_of(executed["tutorial"].cell("early = fc.EarlyStopping("))
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert lines[0 : 2 * EPOCHS : 2] == [f"Epoch {k}/{EPOCHS}" for k in range(1, EPOCHS + 1)]
    steps = -(-LIMIT // 32)
    for line in lines[1 : 2 * EPOCHS : 2]:
        assert re.fullmatch(
            rf"{steps}/{steps} ━{{20}} \d+s \d+ms/step - accuracy: [\d.]+ - loss: [\d.]+ - val_accuracy: [\d.]+ - val_loss: [\d.]+", line
        )
    assert re.fullmatch(rf"{EPOCHS} epochs; the best: epoch \d, val_loss [\d.]+, val_accuracy [\d.]+", lines[-1])


def test_writes_only_the_checkpoint(executed):
    """The pictures are shown, not saved: the one file is the best model, which inside.ipynb then reads."""
    assert sorted(p.name for p in executed["folder"].iterdir()) == ["best.safetensors"]
    assert "conv2d" in text_of(executed["inside"].cell("from pathlib import Path"))


def test_the_model_inside(executed):
    run = executed["inside"]
    assert text_of(run.cell("kernel, bias = fc.conv_filters(")).startswith("(32, 1, 3, 3) (32,)\n{'mean': ")
    shapes = text_of(run.cell("image = data.train.images[0]"))
    assert "{'conv2d': (1, 32, 28, 28), 'conv2d_1': (1, 64, 14, 14)}" in shapes
    # Trained weights spread wider than the same layer freshly initialised (the book's point).
    trained = text_of(run.cell("kernel, bias = fc.conv_filters("))
    untrained = text_of(run.cell("torch.manual_seed(SEED)\nuntrained"))
    std = [float(re.search(r"'std': ([\d.e-]+)", t)[1]) for t in (trained, untrained)]
    assert std[0] > std[1] > 0
    n = min(LIMIT, 2000)
    assert text_of(run.cell("test = data.test.subset(")).startswith(f"({n}, 100) ")


@NEEDS_REAL
def test_the_tutorials_images(executed):
    """On the real data: the 48,000 / 12,000 split, the book's ankle boot, and the handbag called 가방."""
    tutorial, inside = executed["tutorial"], executed["inside"]
    assert text_of(tutorial.cell("train, val = fc.train_val_split(")).startswith("48000 12000 10000\n")
    assert "'가방': 6000" in text_of(tutorial.cell("import numpy as np"))
    assert text_of(tutorial.cell("fc.show_image(")).count("val[0]") == 0  # drawn, not printed
    assert text_of(inside.cell("image = data.train.images[0]")).startswith("앵클 부츠 ")
    # 300 images and 2 epochs already tell the handbag apart.
    assert text_of(tutorial.cell("probs = fc.predict_proba(")).startswith("가방 ")


def test_outputs_are_stripped_in_git():
    """The committed notebooks hold code and text only: no outputs, no execution counts, valid nbformat."""
    for name in ("tutorial", "inside"):
        raw = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        assert all(c.outputs == [] and c.execution_count is None for c in code), name
        assert set(nb.metadata) <= {"kernelspec", "language_info"}, name
        assert all(set(c.metadata) == set() for c in nb.cells), name


def test_parameters_come_from_the_environment(monkeypatch):
    """Without the test's variables the notebooks run the tutorial itself: all images, 20 epochs."""
    monkeypatch.delenv("FASHION_CNN_NOTEBOOK_LIMIT", raising=False)
    monkeypatch.delenv("FASHION_CNN_NOTEBOOK_EPOCHS", raising=False)
    for name in ("tutorial", "inside"):
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        params = next(c for c in nb.cells if c.cell_type == "code" and "LIMIT = " in c.source)
        scope: dict = {}
        exec(params.source, scope)
        assert (scope["DATA_DIR"], scope["LIMIT"], scope["EPOCHS"], scope["SEED"]) == (None, None, 20, 0)


def test_inside_trains_a_model_when_the_tutorial_has_not_run(toy_data, tmp_path, monkeypatch, capsys):
    """Opened on its own, inside.ipynb trains the tutorial's model first (fc.train, a run under runs/) and reads
    that: its first cells, up to the model, run here in-process on toy data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASHION_CNN_DATA", str(toy_data))
    monkeypatch.setenv("FASHION_CNN_NOTEBOOK_LIMIT", "100")
    monkeypatch.setenv("FASHION_CNN_NOTEBOOK_EPOCHS", "1")
    nb = nbformat.read(NOTEBOOKS / "inside.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    upto = next(i for i, source in enumerate(code) if "fc.load_model(MODEL)" in source)
    scope: dict = {}
    for source in code[1 : upto + 1]:  # after the install cell (IPython syntax; fashion-cnn is installed here)
        exec(source, scope)
    run = tmp_path / scope["MODEL"]
    assert run.parent == tmp_path / "runs" and (run / "best.safetensors").is_file()
    assert scope["model"].meta["classes"][8] == "Bag"
    assert "Training tutorial-cnn on 100 images" in capsys.readouterr().out
