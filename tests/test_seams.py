"""One answer on every path: the same image or model gives the same result whichever way it travels.

Issue 10: dataset images through the your-image path, models saved from the Python API, a run's data found
again from another folder, a signal after the last epoch, read-only arrays.
"""

import json
import os
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fashion_cnn as fc
from fashion_cnn.cli import main
from fashion_cnn.data.images import preprocess

# -- dataset images through the your-image path ------------------------------------------------------------


def test_a_centred_model_sized_image_passes_through_unchanged():
    x = np.zeros((28, 28), np.uint8)
    x[2:27, 3:24] = np.arange(25 * 21).reshape(25, 21) % 200 + 30  # margins: left 3, right 4; top 2, bottom 1
    assert np.array_equal(preprocess(x), x)
    x[0, :] = 3  # a garment touching the border lifts the border's shade a little: still not levelled
    assert np.array_equal(preprocess(x), x)


def test_an_off_centre_model_sized_image_is_moved_not_resampled():
    x = np.zeros((28, 28), np.uint8)
    x[10:20, 0:8] = np.arange(80).reshape(10, 8) + 100  # far to the left
    y = preprocess(x)
    assert sorted(y.ravel().tolist()) == sorted(x.ravel().tolist())  # the same pixels, only moved
    cols = np.flatnonzero(y.any(0))
    assert (cols[0], 27 - cols[-1]) == (10, 10)


@pytest.mark.realdata
@pytest.mark.slow
def test_test_images_as_png_files_get_the_labels_of_the_images_themselves(real_dir, tmp_path, capsys):
    """Every path a picture can take to the model: the array, predict FILE, POST /predict/batch, predict --index."""
    from fastapi.testclient import TestClient

    from fashion_cnn.serving.app import create_app

    runs = tmp_path / "runs"
    assert (
        main(["train", "--data-dir", str(real_dir), "--limit", "6000", "--epochs", "1", "--runs-dir", str(runs), "--name", "r", "--quiet"])
        == 0
    )
    run = runs / "r"
    test = fc.load_split("test", data_dir=real_dir)
    model = fc.load_model(run)
    direct = fc.predict_proba(model, test.images).argmax(1)

    folder = tmp_path / "png"
    folder.mkdir()
    names = [f"{i:05d}.png" for i in range(len(test))]
    for name, image in zip(names, test.images):
        Image.fromarray(image, "L").save(folder / name)

    capsys.readouterr()
    assert main(["predict", str(run), str(folder), "--json"]) == 0
    by_file = {Path(r["file"]).name: r["predicted"]["index"] for r in json.loads(capsys.readouterr().out)["images"]}
    through_files = np.array([by_file[name] for name in names])

    client = TestClient(create_app(str(run)))
    through_service = []
    for start in range(0, len(names), 64):
        files = [("files", (name, (folder / name).read_bytes(), "image/png")) for name in names[start : start + 64]]
        response = client.post("/predict/batch", files=files)
        assert response.status_code == 200, response.text
        through_service += [r["index"] for r in response.json()["results"]]

    assert np.array_equal(through_files, direct), f"{int((through_files != direct).sum())} labels differ through predict FILE"
    assert np.array_equal(np.array(through_service), direct), "labels differ through POST /predict/batch"
    for index in (12, 29, 48):
        assert main(["predict", str(run), "--split", "test", "--index", str(index), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["predicted"]["index"] == direct[index] == through_service[index]
    assert (through_files == test.labels).mean() == (direct == test.labels).mean()


# -- models saved from the Python API ----------------------------------------------------------------------


def test_a_model_saved_from_the_python_api_carries_what_the_cli_records(toy_dir, tmp_path, capsys):
    data = fc.load_dataset("fashion-mnist", data_dir=toy_dir)
    train, val = fc.train_val_split(data.train)
    fc.fit(fc.build_model(), train, val, epochs=1, verbose=False, callbacks=[fc.ModelCheckpoint(tmp_path / "api.safetensors")])
    api = fc.load_model(tmp_path / "api.safetensors").meta
    assert (
        main(["train", "--data-dir", str(toy_dir), "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--name", "cli", "--quiet"]) == 0
    )
    cli = fc.load_model(tmp_path / "runs" / "cli").meta
    for key in ("classes", "classes_ko", "dataset", "input"):
        assert api[key] == cli[key], key
    assert api["classes"][8] == "Bag" and api["input"] == {"channels": 1, "height": 28, "width": 28, "scale": 1 / 255}

    capsys.readouterr()
    assert main(["predict", str(tmp_path / "api.safetensors"), "--data-dir", str(toy_dir), "--index", "0"]) == 0
    predicted = re.search(r"^Predicted: (.+) \(", capsys.readouterr().out, re.M).group(1)
    assert predicted in data.classes


def test_save_model_writes_the_same_input_description_as_training(tmp_path):
    fc.save_model(tmp_path / "m.safetensors", fc.build_model())
    assert fc.load_model(tmp_path / "m.safetensors").meta["input"] == {"channels": 1, "height": 28, "width": 28, "scale": 1 / 255}


def test_class_names_fall_back_to_numbers_for_the_models_own_class_count(tmp_path, capsys):
    fc.save_model(tmp_path / "three.safetensors", fc.build_model(num_classes=3))
    image = tmp_path / "x.png"
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(image)
    assert main(["predict", str(tmp_path / "three.safetensors"), str(image), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["images"][0]["probabilities"]) == ["0", "1", "2"]


# -- a run finds its data again from anywhere -------------------------------------------------------------


def test_a_run_finds_its_data_from_another_folder_offline(toy_dir, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    os.symlink(toy_dir, work / "data" / "fashion-mnist")
    monkeypatch.chdir(work)
    assert main(["train", "--data-dir", "data/fashion-mnist", "--epochs", "1", "--name", "tutorial", "--quiet"]) == 0
    recorded = json.loads((work / "runs" / "tutorial" / "config.json").read_text())["data_dir"]
    assert Path(recorded).is_absolute() and Path(recorded) == (work / "data" / "fashion-mnist").resolve()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = str(work / "runs" / "tutorial")
    capsys.readouterr()
    assert main(["evaluate", run, "--split", "val"]) == 0, capsys.readouterr().err  # no --data-dir, no cache, no network
    assert main(["predict", run, "--split", "val", "--index", "0", "--lang", "ko"]) == 0, capsys.readouterr().err
    assert main(["report", run, "-o", "report.html"]) == 0, capsys.readouterr().err
    assert (elsewhere / "report.html").is_file()


# -- a signal after the last epoch ----------------------------------------------------------------------


def test_sigterm_while_drawing_the_report_exits_130_and_says_how_to_redraw(toy_dir, tmp_path):
    run = tmp_path / "runs" / "late"
    cmd = [
        sys.executable,
        "-m",
        "fashion_cnn",
        *f"train --epochs 2 --name late --data-dir {toy_dir} --runs-dir {tmp_path / 'runs'}".split(),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("Wrote "):  # metrics.json is written; the pictures and the report come next
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == (
        f"fashion-cnn: error: interrupted while drawing the pictures and report; the run is complete in {run}: "
        f"redraw them with 'fashion-cnn plot-history {run}' and 'fashion-cnn report {run}'"
    )
    assert main(["report", str(run)]) == 0 and (run / "report.html").is_file()


def test_a_run_stopped_before_its_final_metrics_is_finished_by_resume(toy_dir, tmp_path):
    assert main(["train", "--data-dir", str(toy_dir), "--epochs", "2", "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]) == 0
    run = tmp_path / "r"
    metrics = json.loads((run / "metrics.json").read_text())
    for name in ("metrics.json", "report.html", "loss.png"):
        (run / name).unlink()  # as if stopped after the last epoch, before the final evaluation
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    again = json.loads((run / "metrics.json").read_text())
    assert again["test"] == metrics["test"] and again["epochs_run"] == 2
    assert (run / "report.html").is_file() and (run / "loss.png").is_file()


def test_the_interrupted_message_after_training_says_how_to_finish(tmp_path):
    from fashion_cnn.experiment.train import _finish_interrupted_message
    from fashion_cnn.rundir import RunDir

    assert _finish_interrupted_message(RunDir(tmp_path), 7) == (
        f"interrupted after training, while computing the final metrics; all 7 epochs are saved in {tmp_path}: "
        f"finish with 'fashion-cnn train --resume {tmp_path}'"
    )


# -- read-only arrays --------------------------------------------------------------------------------------


def test_read_only_arrays_are_used_without_a_warning():
    rng = np.random.default_rng(0)
    images = np.frombuffer(rng.integers(0, 256, 8 * 784, dtype=np.uint8).tobytes(), np.uint8).reshape(8, 28, 28)
    labels = np.frombuffer(rng.integers(0, 10, 8).astype(np.int64).tobytes(), np.int64)
    assert not images.flags.writeable and not labels.flags.writeable
    data = fc.LabeledImages(images, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = fc.build_model()
        fc.predict_proba(model, images)
        fc.evaluate(model, data)
        fc.fit(model, data, epochs=1, batch_size=4, verbose=False)
