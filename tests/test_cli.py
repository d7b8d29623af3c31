"""The command line: the tutorial's steps end to end on small data, and bad input."""

import json
import pickle
import re
import subprocess
import sys

import pytest

from conftest import copy_run
from fashion_cnn.cli import main


@pytest.fixture
def trained(toy_run, tmp_path):
    """A copy of the session's toy run (`fashion-cnn train --epochs 2 --batch-size 16` on the toy data)."""
    return copy_run(toy_run.path, tmp_path / "runs" / "toy")


@pytest.fixture
def toy_dir(toy_run):
    """The data the toy run was trained on (these tests only read it)."""
    return toy_run.data


def test_train_writes_a_complete_run_directory(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"config.json", "summary.txt", "history.csv", "history.json", "best.safetensors", "last.safetensors", "metrics.json"} <= names
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]
    config = json.loads((trained / "config.json").read_text())
    assert config["batch_size"] == 16 and config["patience"] == 2 and config["adam_epsilon"] == 1e-7 and config["split_seed"] == 42
    history = json.loads((trained / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    assert (trained / "history.csv").read_text().splitlines()[0].split(",")[:5] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    metrics = json.loads((trained / "metrics.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1 and metrics["epochs_run"] == 2


def test_train_prints_keras_progress_lines(toy_run):
    out = toy_run.output  # what `fashion-cnn train` printed (its stdout is not a terminal: plain lines)
    assert "Total params: 333,526" in out and "Epoch 1/2" in out and "Epoch 2/2" in out
    lines = [line for line in out.splitlines() if line.startswith("15/15 ")]  # 240 training images / 16 per step
    assert len(lines) == 2  # one per epoch
    for line in lines:
        for part in ("ms/step", "accuracy:", "loss:", "val_accuracy:", "val_loss:"):
            assert part in line


def test_evaluate_and_predict_json(trained, toy_dir, capsys):
    assert main(["evaluate", str(trained), "--data-dir", str(toy_dir), "--split", "test", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert result["images"] == 100 and result["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    assert main(["predict", str(trained), "--data-dir", str(toy_dir), "--split", "val", "--index", "0", "--lang", "ko", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["probabilities"]) == ["티셔츠", "바지", "스웨터", "드레스", "코트", "샌달", "셔츠", "스니커즈", "가방", "앵클 부츠"]
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert result["predicted"]["name"] == max(result["probabilities"], key=result["probabilities"].get)


def test_predict_text_names_the_class(trained, toy_dir, capsys):
    args = ["predict", str(trained / "best.safetensors"), "--data-dir", str(toy_dir), "--index", "3"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # "  i  name  probability  bars", one line per class, then "Predicted: name (p%)".
    rows = [re.fullmatch(r"  (\d)  (.+?) +(\d\.\d{4})  █*", line) for line in lines[1:11]]
    assert all(rows), lines
    assert [r[2] for r in rows] == list(result["probabilities"])  # all ten names, in class order
    assert [float(r[3]) for r in rows] == [round(p, 4) for p in result["probabilities"].values()]
    predicted = result["predicted"]
    assert lines[0] == f"test[3] (true class: {result['true']['name']})"
    assert lines[11] == f"Predicted: {predicted['name']} ({predicted['probability']:.2%})" and len(lines) == 12
    printed = [float(r[3]) for r in rows]
    assert printed[predicted["index"]] == max(printed) and rows[predicted["index"]][2] == predicted["name"]  # the argmax


def test_summary_json(capsys):
    assert main(["summary", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["total_params"] == 333526 and [layer["params"] for layer in info["layers"]] == [320, 0, 18496, 0, 0, 313700, 0, 1010]


def test_same_seed_same_history_from_the_cli(toy_run, tmp_path, capsys):
    """The toy run's command (--seed 5) again, later in the same process: the same history, epoch by epoch."""
    argv = list(toy_run.argv)
    argv[argv.index("--runs-dir") + 1] = str(tmp_path)
    assert main(argv) == 0
    runs = [
        [{k: v for k, v in e.items() if k != "seconds"} for e in json.loads((run / "history.json").read_text())]
        for run in (toy_run.path, tmp_path / "toy")
    ]
    assert runs[0] == runs[1] and len(runs[0]) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--batch-size", "0"], "batch size must be a whole number of at least 1, got 0"),
        (["train", "--epochs", "-3"], "epochs must be a whole number of at least 1, got -3"),
        (["train", "--lr", "nan"], "learning rate must be a positive finite number, got nan"),
        (["train", "--dataset", "cifar10"], "unknown dataset 'cifar10'"),
        (["train", "--model", "resnet"], "unknown model 'resnet'; choose one of: "),
        (["train", "--data-dir", "/nonexistent"], "--data-dir /nonexistent is not a folder"),
        (["evaluate", "/nonexistent/run"], "does not exist; pass a run directory"),
        (["summary", "--model", "nope"], "unknown model 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert main(args + (["--runs-dir", str(tmp_path / "runs")] if args[0] == "train" else [])) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_index_out_of_range(trained, toy_dir, capsys):
    assert main(["predict", str(trained), "--data-dir", str(toy_dir), "--split", "val", "--index", "60"]) == 2
    assert "--index 60 is out of range: the val split has 60 images (0 to 59)" in capsys.readouterr().err


def test_files_that_are_not_models(tmp_path, capsys):
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    assert main(["evaluate", str(text)]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert main(["evaluate", str(pt)]) == 2
    assert "pickle" in capsys.readouterr().err
    (tmp_path / "emptyrun").mkdir()
    assert main(["evaluate", str(tmp_path / "emptyrun")]) == 2
    assert "without best.safetensors" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(trained, toy_dir, capsys):
    before = (trained / "best.safetensors").read_bytes()
    assert main(["train", "--data-dir", str(toy_dir), "--runs-dir", str(trained.parent), "--name", "toy"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (trained / "best.safetensors").read_bytes() == before


def test_the_installed_command_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "fashion_cnn", "train", "--epochs", "0"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "fashion-cnn: error: epochs must be a whole number of at least 1, got 0; the tutorial uses 20"


def test_the_program_skips_the_collectors_last_pass_at_exit(monkeypatch, capsys):
    """``fashion-cnn`` (``cli.command``) freezes what exists before the process ends: the collector's pass over
    every object at exit took ~1 s of each run. ``main``, which tests and the API call, leaves it alone."""
    import gc

    from fashion_cnn.cli import command

    monkeypatch.setattr(sys, "argv", ["fashion-cnn", "summary", "--json"])
    assert gc.get_freeze_count() == 0
    try:
        assert command() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert json.loads(capsys.readouterr().out)["total_params"] == 333_526
    assert main(["summary", "--json"]) == 0 and gc.get_freeze_count() == 0
