"""Hostile input and faults (issue 11): model files, output paths, the disk, settings, two trainings of one run."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import fashion_cnn as fc
from conftest import one_line_error
from fashion_cnn.cli import main
from fashion_cnn.data import write_idx
from fashion_cnn.data.registry import FASHION_MNIST

CLASSES, CLASSES_KO = list(FASHION_MNIST.classes), list(FASHION_MNIST.classes_ko)


def write_model(path: Path, meta: dict, tensors: dict | None = None) -> Path:
    model = fc.build_model()
    tensors = tensors or {k: v.contiguous() for k, v in model.state_dict().items()}
    header = {"arch": {"name": "tutorial-cnn", "kwargs": {}}, "classes": CLASSES, **meta}
    save_file(tensors, str(path), metadata={"format": "fashion-cnn", "fashion_cnn": json.dumps(header)})
    return path


# -- model files: metadata checked before anything is built from it ----------------------------------------


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"input": {"height": 30000, "width": 30000}}, "input.height is 30000, not a whole number from 1 to 4,096"),
        ({"input": "28x28"}, "input is a str, not an object"),
        ({"classes": 10}, "classes is not a list"),
        ({"classes": CLASSES[:3]}, "classes names 3 classes but the model has 10 outputs"),
        ({"classes_ko": CLASSES_KO[:9]}, "classes_ko names 9 classes but the model has 10 outputs"),
        ({"dataset": "fashion-mnist"}, "dataset is not an object with a name"),
        ({"arch": {"name": "tutorial-cnn", "kwargs": {"hidden": 10**100}}}, "arch.kwargs.hidden is 1e+100, beyond 16,777,216"),
    ],
)
def test_model_metadata_is_checked_before_use(tmp_path, capsys, meta, message):
    path = write_model(tmp_path / "m.safetensors", meta)
    one_line_error(capsys, main(["summary", str(path)]), str(path), message)


def test_deeply_nested_metadata_is_one_line(tmp_path, capsys):
    path = tmp_path / "deep.safetensors"
    tensors = {k: v.contiguous() for k, v in fc.build_model().state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "fashion-cnn", "fashion_cnn": "[" * 100_000 + "]" * 100_000})
    one_line_error(capsys, main(["summary", str(path)]), "unreadable fashion-cnn metadata")


def test_nan_weights_are_refused_at_load(tmp_path, capsys):
    tensors = {k: v.contiguous() for k, v in fc.build_model().state_dict().items()}
    tensors["dense.linear.weight"][0, 0] = float("nan")
    path = write_model(tmp_path / "nan.safetensors", {}, tensors)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    one_line_error(capsys, main(["predict", str(path), str(image)]), "holds NaN or infinite weights (dense.linear.weight)")


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "fashion_cnn", "summary", str(fifo)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "is not a regular file" in proc.stderr


def test_a_folder_named_in_a_model_file_is_not_read(tmp_path, capsys):
    path = write_model(tmp_path / "m.safetensors", {"dataset": {"name": f"folder:{tmp_path}"}})
    one_line_error(capsys, main(["evaluate", str(path)]), "the model was trained on the image folder", f"--dataset folder:{tmp_path}")


# -- files written --------------------------------------------------------------------------------------


def test_a_fifo_as_output_is_refused_and_stays_a_fifo(tmp_path, capsys):
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    one_line_error(capsys, main(["plot-model", "-o", str(fifo)]), "is not a regular file")
    assert fifo.is_fifo()


def test_a_symlink_as_output_is_written_through(tmp_path, capsys):
    target, link = tmp_path / "real.png", tmp_path / "link.png"
    target.write_bytes(b"old")
    link.symlink_to(target)
    assert main(["plot-model", "-o", str(link)]) == 0
    assert link.is_symlink() and target.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "{model}", "--format", "keras", "-o", "{out}"],
        ["export", "{model}", "--format", "onnx", "-o", "{out}"],
        ["export", "{model}", "--format", "onnx", "-o", "{tmp}/deeper/x.onnx"],
        ["plot-model", "-o", "{tmp}/loop.png"],
        ["predict", "{model}", "{image}", "--csv", "{out}"],
    ],
    ids=["keras", "onnx", "onnx-in-a-looped-folder", "plot-model", "predict-csv"],
)
def test_a_symlink_loop_as_output_is_one_line(untrained_model_file, tmp_path, capsys, argv):
    """Issue 26, defect 3: before the fix, pathlib's RuntimeError('Symlink loop ...') ended in a traceback."""
    for name in ("loop.out", "loop.png", "deeper"):
        (tmp_path / name).symlink_to(name)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    values = {"model": str(untrained_model_file), "out": str(tmp_path / "loop.out"), "tmp": str(tmp_path), "image": str(image)}
    one_line_error(capsys, main([a.format(**values) for a in argv]), "cannot be followed to a file (a loop of symbolic links)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deeper", "loop.out", "loop.png", "x.png"]


def test_a_model_whose_probabilities_overflow_is_refused_before_any_table(tmp_path, capsys):
    """Issue 26, defect 4: finite weights near float32's largest value make the logits infinite and softmax NaN;
    before the fix predict printed a table of nan% (and its bar of round(NaN * 30) could end in a traceback)."""
    tensors = {k: v.contiguous() for k, v in fc.build_model().state_dict().items()}
    tensors["dense.linear.weight"].fill_(3e38)
    path = write_model(tmp_path / "big.safetensors", {}, tensors)
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)).save(image)
    message = "the model gives NaN or infinite probabilities (first for image 0)"
    for argv in (["predict", str(path), str(image)], ["predict", str(path), str(image), "--json"]):
        one_line_error(capsys, main(argv), message)
    assert capsys.readouterr().out == ""
    with pytest.raises(fc.FashionCNNError, match="NaN or infinite probabilities"):
        fc.predict_proba(fc.load_model(path), np.asarray(Image.open(image))[None].repeat(2, 0))


def test_a_folder_as_csv_is_one_line(untrained_model_file, tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    one_line_error(capsys, main(["predict", str(untrained_model_file), str(image), "--csv", str(tmp_path)]), "is a folder")


def test_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "model.png"
    out.write_bytes(b"previous")

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("fashion_cnn.files.os.replace", full)
    one_line_error(capsys, main(["plot-model", "-o", str(out)]), "No space left on device", "the previous file, if any, is kept")
    assert out.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["model.png"]


def test_a_file_name_that_is_not_utf8_is_reported(untrained_model_file, tmp_path, capsys):
    image = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.png"))
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    assert main(["predict", str(untrained_model_file), str(image), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"][0]["file"].endswith("caf\ufffd.png")
    assert main(["predict", str(untrained_model_file), str(image), "--csv", str(tmp_path / "p.csv")]) == 0
    assert "caf\ufffd.png" in (tmp_path / "p.csv").read_text()


# -- settings checked before a run directory exists --------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--monitor", "bogus"], "unknown metric to monitor 'bogus'"),
        (["--threads", "100000"], "--threads must be a whole number from 1 to"),
        (["--seed", str(2**70)], "--seed must be a whole number from 0 to 4,294,967,295"),
        (["--split-seed", "-1"], "--split-seed must be a whole number from 0 to 4,294,967,295"),
        (["--name", "x" * 300], "is not a plain folder name of 1 to 100 characters"),
    ],
)
def test_bad_settings_leave_no_run_directory(toy_dir, tmp_path, capsys, args, message):
    code = main(["train", "--data-dir", str(toy_dir), "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), *args])
    one_line_error(capsys, code, message)
    assert not (tmp_path / "runs").exists()


def test_images_too_small_for_the_model_leave_no_run_directory(tmp_path, capsys):
    data = tmp_path / "tiny"
    data.mkdir()
    for name, array in (
        ("train-images-idx3-ubyte.gz", np.zeros((20, 1, 1), np.uint8)),
        ("train-labels-idx1-ubyte.gz", np.arange(20, dtype=np.uint8) % 10),
        ("t10k-images-idx3-ubyte.gz", np.zeros((10, 1, 1), np.uint8)),
        ("t10k-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8)),
    ):
        write_idx(data / name, array)
    code = main(["train", "--data-dir", str(data), "--epochs", "1", "--runs-dir", str(tmp_path / "runs")])
    one_line_error(capsys, code, "tutorial-cnn needs images of at least 4×4 pixels")
    assert not (tmp_path / "runs").exists()


def test_a_diverged_first_epoch_frees_the_run_name(toy_dir, tmp_path, capsys):
    args = ["train", "--data-dir", str(toy_dir), "--epochs", "1", "--runs-dir", str(tmp_path), "--name", "x"]
    one_line_error(capsys, main([*args, "--lr", "1e308"]), "the training loss became")
    assert not (tmp_path / "x").exists()
    assert main([*args, "--quiet"]) == 0


def test_one_class_folders_and_non_utf8_class_names_are_refused_before_training(tmp_path, capsys):
    root = tmp_path / "clothes"
    (root / "train" / "coat").mkdir(parents=True)
    Image.new("L", (30, 30), 200).save(root / "train" / "coat" / "a.png")
    one_line_error(
        capsys, main(["train", "--dataset", f"folder:{root}", "--runs-dir", str(tmp_path / "runs")]), "a classifier needs at least two"
    )
    odd = Path(os.fsdecode(bytes(root / "train") + b"/\xff\xfe"))
    odd.mkdir()
    Image.new("L", (30, 30), 100).save(odd / "b.png")
    one_line_error(capsys, main(["train", "--dataset", f"folder:{root}", "--runs-dir", str(tmp_path / "runs")]), "is not UTF-8 text")
    assert not (tmp_path / "runs").exists()


# -- one run, one training at a time --------------------------------------------------------------------


def test_a_second_training_of_the_same_run_is_refused_while_the_first_runs(toy_dir, tmp_path, capsys):
    assert (
        main(
            ["train", "--data-dir", str(toy_dir), "--epochs", "1", "--patience", "5", "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]
        )
        == 0
    )
    run = tmp_path / "r"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / "train.lock").write_text(f"{other.pid}\n")  # as a training process would hold it
        one_line_error(
            capsys,
            main(["train", "--resume", str(run), "--epochs", "2"]),
            f"is being trained by another fashion-cnn process (PID {other.pid})",
        )
    finally:
        other.kill()
        other.wait()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0  # the stale lock is taken over
    assert not (run / "train.lock").exists() and len(json.loads((run / "history.json").read_text())) == 2


def test_an_edited_config_is_one_line_on_resume(toy_dir, tmp_path, capsys):
    assert (
        main(
            ["train", "--data-dir", str(toy_dir), "--epochs", "1", "--patience", "5", "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]
        )
        == 0
    )
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    config["batch_size"] = "thirty-two"
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    one_line_error(
        capsys, main(["train", "--resume", str(tmp_path / "r"), "--epochs", "2"]), "config.json holds a setting that is not valid"
    )


# -- bounded flags -----------------------------------------------------------------------------------------


def test_dpi_and_top_losses_are_bounded(untrained_model_file, toy_dir, tmp_path, capsys):
    one_line_error(capsys, main(["plot-model", "--dpi", "100000", "-o", str(tmp_path / "m.png")]), "--dpi must be a number from 1 to 1200")
    code = main(["evaluate", str(untrained_model_file), "--data-dir", str(toy_dir), "--top-losses", "1000000000", "-o", str(tmp_path)])
    one_line_error(capsys, code, "--top-losses must be from 0 to 256")


def test_weights_stay_untouched_by_a_refused_load(tmp_path):
    """A refused model file is not changed by the attempt to read it."""
    path = write_model(tmp_path / "m.safetensors", {"classes": CLASSES[:3]})
    before = path.read_bytes()
    with pytest.raises(fc.FashionCNNError, match="classes names 3 classes"):
        fc.load_model(path)
    assert path.read_bytes() == before and torch.get_num_threads() >= 1


def test_an_export_never_replaces_a_runs_own_model_files(toy_dir, tmp_path, capsys):
    assert main(["train", "--data-dir", str(toy_dir), "--epochs", "1", "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]) == 0
    last = tmp_path / "r" / "last.safetensors"
    before = last.read_bytes()
    one_line_error(
        capsys,
        main(["export", str(tmp_path / "r"), "--format", "safetensors", "-o", str(last)]),
        "would overwrite last.safetensors of the run",
    )
    assert last.read_bytes() == before


def test_an_opset_the_exporter_cannot_write_is_refused(untrained_model_file, tmp_path, capsys):
    code = main(["export", str(untrained_model_file), "--format", "onnx", "--opset", "1", "-o", str(tmp_path / "m.onnx")])
    one_line_error(capsys, code, "--opset must be from 18 to")
    assert not (tmp_path / "m.onnx").exists()
