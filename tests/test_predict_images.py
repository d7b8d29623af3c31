"""``fashion-cnn predict RUN photo.jpg ...``: your own pictures from the command line, and how robust that is."""

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_cnn.cli import main
from fashion_cnn.data.images import Preprocessing, load_image
from fashion_cnn.inference.predict import predict_proba
from fashion_cnn.models.files import load_model

SNEAKER = Path(__file__).parent / "data" / "sneaker-on-table.jpg"


@pytest.fixture
def pictures(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(SNEAKER, folder / "sneaker.jpg")
    a = np.full((80, 60), 245, np.uint8)
    a[10:70, 15:45] = 30
    Image.fromarray(a).save(folder / "box.png")
    (folder / "readme.txt").write_text("not a picture: skipped when the folder is listed")
    return folder


def test_predict_files_and_folders_as_json(untrained_model_file, pictures, capsys):
    assert main(["predict", str(untrained_model_file), str(pictures), "--top-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [Path(r["file"]).name for r in out["images"]] == ["box.png", "sneaker.jpg"]
    model = load_model(untrained_model_file)
    for r in out["images"]:
        expected = predict_proba(model, load_image(r["file"]))
        assert list(r["probabilities"].values()) == pytest.approx(expected.tolist(), abs=1e-6)
        assert r["predicted"]["index"] == int(expected.argmax())
        assert [t["index"] for t in r["top_k"]] == list(np.argsort(-expected)[:2])
    assert out["preprocessing"] == Preprocessing().to_dict()


def test_predict_text_csv_and_show_input(untrained_model_file, pictures, tmp_path, capsys):
    seen, table = tmp_path / "seen", tmp_path / "out" / "predictions.csv"
    # Files may come after options too.
    assert (
        main(
            [
                "predict",
                str(untrained_model_file),
                str(pictures / "sneaker.jpg"),
                "--csv",
                str(table),
                "--show-input-dir",
                str(seen),
                str(pictures / "box.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "sneaker.jpg" in out and "box.png" in out and "then" in out
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["file"]).name for r in rows] == ["sneaker.jpg", "box.png"]
    assert sum(float(rows[0][name]) for name in list(rows[0])[3:]) == pytest.approx(1, abs=1e-4)
    shown = np.asarray(Image.open(seen / "sneaker.png"))
    assert shown.shape == (28, 28) and np.array_equal(shown, load_image(pictures / "sneaker.jpg"))


def test_preprocessing_switches_reach_the_model_input(untrained_model_file, pictures, tmp_path):
    assert main(["predict", str(untrained_model_file), str(pictures / "box.png"), "--show-input-dir", str(tmp_path / "a")]) == 0
    assert (
        main(
            [
                "predict",
                str(untrained_model_file),
                str(pictures / "box.png"),
                "--show-input-dir",
                str(tmp_path / "b"),
                "--no-trim",
                "--invert",
                "never",
                "--no-level",
                "--stretch",
            ]
        )
        == 0
    )
    default, raw = (np.asarray(Image.open(tmp_path / d / "box.png")) for d in "ab")
    assert default[14, 2] == 0 and default[14, 14] > 200  # inverted, trimmed: a light box on black
    assert raw[0, 0] > 200 and raw[14, 14] < 60  # as it was: a dark box on light grey, margins kept


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "pass either --index N"),
        (["--index", "0", "PIC"], "pass either --index N"),
        (["PIC", "--json", "--csv", "x.csv"], "--json and --csv"),
        (["PIC", "--top-k", "0"], "--top-k must be at least 1"),
        (["missing.png"], "missing.png does not exist"),
    ],
)
def test_predict_bad_arguments(untrained_model_file, pictures, argv, message, capsys):
    argv = [str(pictures / "box.png") if a == "PIC" else a for a in argv]
    assert main(["predict", str(untrained_model_file), *argv]) == 2
    assert message in capsys.readouterr().err


def test_show_input_is_a_flag_that_writes_to_model_input(untrained_model_file, pictures, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(untrained_model_file), "--show-input", str(pictures / "box.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "model-input" / "box.png")), load_image(pictures / "box.png"))


def test_predict_names_the_unreadable_file(untrained_model_file, pictures, capsys):
    (pictures / "fake.png").write_text("hello")
    assert main(["predict", str(untrained_model_file), str(pictures)]) == 2
    err = capsys.readouterr().err
    assert "fake.png is not a PNG, JPEG" in err and "Traceback" not in err


# ---- with the real Fashion-MNIST: a quickly trained model (conftest's real_model) on the sneaker photo and on photo-like test images ----


@pytest.mark.realdata
@pytest.mark.slow
def test_photo_of_a_sneaker_on_a_table_is_a_sneaker(real_model, capsys):
    assert main(["predict", str(real_model), str(SNEAKER), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"][0]["predicted"]["name"] == "Sneaker"


@pytest.mark.realdata
@pytest.mark.slow
def test_photo_like_files_score_close_to_the_images_themselves(real_model, real_dir):
    """The robustness check in small (bench/robustness.py measures it on the whole test set): 400 test images
    made into JPEG "photos" (enlarged, dark on an off-white noisy background, margins, shifts) are classified
    about as well from the files as from the images directly. A wrong preprocessing step costs far more."""
    from fashion_cnn.data import load_dataset
    from photolike import photo_like

    test = load_dataset("fashion-mnist", real_dir).test.subset(slice(0, 400))
    rng = np.random.default_rng(0)
    photos = [photo_like(image, rng) for image in test.images]
    assert Image.open(io.BytesIO(photos[0])).size[0] > 100  # really a larger picture
    model = load_model(real_model)
    direct = (predict_proba(model, test.images).argmax(1) == test.labels).mean()
    from_files = (predict_proba(model, np.stack([load_image(p) for p in photos])).argmax(1) == test.labels).mean()
    assert direct > 0.75
    assert from_files >= direct - 0.03, (direct, from_files)
    # And the photos do need the preprocessing: without inverting and trimming the model is lost.
    raw = Preprocessing(invert="never", trim=False, level=False)
    unprocessed = (predict_proba(model, np.stack([load_image(p, raw) for p in photos])).argmax(1) == test.labels).mean()
    assert unprocessed < direct - 0.3


def test_plot_of_one_image_file_and_refusal_for_several(untrained_model_file, pictures, tmp_path, capsys):
    chart = tmp_path / "probs.png"
    assert main(["predict", str(untrained_model_file), str(pictures / "sneaker.jpg"), "--plot", str(chart)]) == 0
    image = Image.open(chart)
    assert image.size[0] > 300 and len(np.unique(np.asarray(image.convert("L")))) > 10  # a drawn chart, not a blank file
    capsys.readouterr()
    assert main(["predict", str(untrained_model_file), str(pictures), "--plot", str(tmp_path / "many.png")]) == 2
    assert "--plot draws one image's probabilities but 2 images were given" in capsys.readouterr().err
    assert not (tmp_path / "many.png").exists()
