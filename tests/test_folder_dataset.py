"""``--dataset folder:PATH``: your own images, one folder per class, through load_dataset, train and evaluate."""

import json

import numpy as np
import pytest
from PIL import Image

from fashion_cnn.cli import main
from fashion_cnn.data import get_spec, load_dataset, load_split
from fashion_cnn.data.folder import FolderSpec
from fashion_cnn.errors import FashionCNNError
from fashion_cnn.experiment import TrainConfig

CLASSES = ("coat", "shirt", "sneaker")


def write_folder(root, splits=("train", "val", "test"), per_class=(20, 5, 5), classes=CLASSES, seed=0):
    """Learnable pictures of any size and format, drawn dark on a light background as a photo would be:
    class 0 is a square, class 1 a tall bar, class 2 a wide bar (shapes survive trimming; positions do not)."""
    formats = ("png", "jpg", "webp", "bmp", "gif")
    rng = np.random.default_rng(seed)
    for split, n in zip(splits, per_class):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                side = int(rng.integers(40, 120))
                a = np.full((side, side), int(rng.integers(200, 250)), np.uint8)
                long, short = int(side * rng.uniform(0.5, 0.8)), int(side * rng.uniform(0.12, 0.2))
                h, w = [(long, long), (long, short), (short, long)][c]
                top, left = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
                a[top : top + h, left : left + w] = int(rng.integers(0, 60))
                Image.fromarray(a).convert("RGB").save(folder / f"{i:03d}.{formats[i % 5]}")
    return root


def test_good_layout_loads_every_split(tmp_path):
    root = write_folder(tmp_path / "clothes")
    (root / "train" / "coat" / "notes.txt").write_text("not an image: ignored")
    spec = get_spec(f"folder:{root}")
    assert isinstance(spec, FolderSpec) and spec.classes == CLASSES and spec.splits == ("train", "val", "test")
    ds = load_dataset(f"folder:{root}")
    assert ds.classes == CLASSES and ds.name == f"folder:{root.resolve()}"
    assert ds.train.images.shape == (60, 28, 28) and ds.train.images.dtype == np.uint8
    assert len(ds.val) == len(ds.test) == 15
    assert np.array_equal(np.bincount(ds.train.labels), [20, 20, 20])
    # Any size became 28×28, inverted (light shape on black), trimmed and centred: a wide bar spans the width.
    wide = ds.train.images[ds.train.labels == 2][0]
    assert wide[0, 0] == 0 and wide[14, 14] > 150 and (wide[14] > 100).all()
    # The val/ folder is the validation split, not a slice of train/.
    assert np.array_equal(load_split("val", f"folder:{root}").images, ds.val.images)


def test_without_test_folder_a_fixed_fifth_of_train_is_held_out(tmp_path):
    root = write_folder(tmp_path / "clothes", splits=("train",), per_class=(20,))
    ds = load_dataset(f"folder:{root}")
    assert ds.val is None and (len(ds.train), len(ds.test)) == (48, 12)
    again = load_dataset(f"folder:{root}")
    assert np.array_equal(again.test.images, ds.test.images)


def test_empty_class_is_named(tmp_path):
    root = write_folder(tmp_path / "clothes", splits=("train",), per_class=(3,))
    (root / "train" / "dress").mkdir()
    with pytest.raises(FashionCNNError, match=r"train/dress has no images"):
        load_dataset(f"folder:{root}")


def test_unreadable_file_is_named(tmp_path):
    root = write_folder(tmp_path / "clothes", splits=("train",), per_class=(3,))
    (root / "train" / "shirt" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(FashionCNNError, match=r"train/shirt/broken.jpg"):
        load_dataset(f"folder:{root}")


def test_mismatched_class_sets_are_named(tmp_path):
    root = write_folder(tmp_path / "clothes", splits=("train", "val"), per_class=(3, 2))
    (root / "val" / "coat").rename(root / "val" / "jacket")
    with pytest.raises(FashionCNNError, match=r"val lacks coat and has jacket that train/ lacks"):
        get_spec(f"folder:{root}")


def test_bad_roots_are_explained(tmp_path):
    with pytest.raises(FashionCNNError, match="is not a folder"):
        get_spec(f"folder:{tmp_path / 'nowhere'}")
    (tmp_path / "flat").mkdir()
    with pytest.raises(FashionCNNError, match="no train/ folder"):
        get_spec(f"folder:{tmp_path / 'flat'}")
    with pytest.raises(FashionCNNError, match="needs a path"):
        get_spec("folder:")
    # TrainConfig checks the folder before anything is written.
    with pytest.raises(FashionCNNError, match="no train/ folder"):
        TrainConfig(dataset=f"folder:{tmp_path / 'flat'}").validate()


def test_train_and_evaluate_on_a_folder_dataset(tmp_path, capsys):
    root = write_folder(tmp_path / "clothes")
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                "--dataset",
                f"folder:{root}",
                "--epochs",
                "3",
                "--batch-size",
                "4",
                "--runs-dir",
                str(runs),
                "--name",
                "mine",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["test"]["accuracy"] > 0.9  # a square, a tall bar and a wide bar are easy to tell apart
    model_meta = json.loads((runs / "mine" / "config.json").read_text())
    assert model_meta["dataset"] == f"folder:{root}"

    assert main(["evaluate", str(runs / "mine"), "--split", "val", "--json"]) == 0
    val = json.loads(capsys.readouterr().out)
    assert val["images"] == 15  # the val/ folder, not a split of train/
    assert val["accuracy"] == pytest.approx(result["metrics"]["val"]["accuracy"])

    picture = root / "test" / "sneaker" / "000.png"
    assert main(["predict", str(runs / "mine"), str(picture), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["images"][0]["predicted"]
    assert predicted["name"] == "sneaker"
