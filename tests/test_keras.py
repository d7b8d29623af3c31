"""Bring your Keras model (issue 15): Keras files in and out, against the real Keras 3 where it is installed.

The round trips build and briefly train models with Keras itself (``KERAS_BACKEND=torch``, so no second
framework is needed), save them as ``.keras`` and ``.h5``, import them with ``fashion-cnn import`` and compare
probabilities on 1,000 images; and export fashion-cnn models that Keras loads. Where keras is not installed
those tests are skipped with the reason; the checks of hostile files need only h5py.
"""

import io
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

import fashion_cnn as fc
from conftest import make_images, one_line_error, write_dataset
from fashion_cnn.cli import main
from fashion_cnn.export.keras import export_keras, keras_bytes
from fashion_cnn.models import registry
from fashion_cnn.models.keras_sequential import LAYER_TYPES, tutorial_layers
from fashion_cnn.models.metadata import check_meta
from keras_import import tutorial_model  # bench/, on the tests' path: the tutorial's model as its notebook builds it

h5py = pytest.importorskip("h5py", reason="reading Keras files needs h5py (the 'keras' extra)")

# Keras 3.15 with NumPy 2 warns inside its own code (variables' __array__ without a copy keyword) on every
# predict and save; nothing of ours is involved.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

TOLERANCE = 1e-5


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        pytest.skip("keras is not installed (pip install -c constraints.txt -e '.[test]'); the round trips against Keras need it")
    if not keras.__version__.startswith("3."):
        pytest.skip(f"these tests need Keras 3, found {keras.__version__}")
    return keras


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Toy training images and labels for Keras, and 1,000 test images, uint8 (N, 28, 28)."""
    x, y = make_images(512, seed=3)
    test, _ = make_images(1000, seed=4)
    return x, y, test


@pytest.fixture(scope="module")
def keras_tutorial(keras, data, tmp_path_factory):
    """The tutorial's model trained by Keras for one epoch, saved as .keras and .h5, with its predictions."""
    x, y, test = data
    keras.utils.set_random_seed(0)
    model = tutorial_model(keras)
    model.fit(x[..., None] / 255.0, y, epochs=1, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("keras-tutorial")
    model.save(folder / "best-cnn-model.keras")
    model.save(folder / "best-cnn-model.h5")
    return folder, model.predict(test[..., None] / 255.0, verbose=0)


# -- Keras → fashion-cnn ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_the_tutorials_keras_model_imports_as_tutorial_cnn_with_the_same_probabilities(
    keras, keras_tutorial, data, tmp_path, capsys, suffix
):
    folder, want = keras_tutorial
    source, out = folder / f"best-cnn-model{suffix}", tmp_path / "cnn.safetensors"
    assert main(["import", str(source), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Wrote {out} (tutorial-cnn, 333,526 parameters" in printed and "pixels / 255" in printed
    model = fc.load_model(out)
    assert model.arch == {"name": "tutorial-cnn", "kwargs": {}}
    assert model.meta["classes"][8] == "Bag" and model.meta["classes_ko"][8] == "가방"
    assert model.meta["keras"] == {"file": source.name, "format": suffix[1:], "keras_version": keras.__version__}
    assert model.meta["source"] == f"imported from Keras {keras.__version__} file {source.name}"
    got = fc.predict_proba(model, data[2])
    assert got.shape == want.shape == (1000, 10)
    assert np.abs(got - want).max() <= TOLERANCE
    assert (got.argmax(1) == want.argmax(1)).all()


def test_an_imported_model_works_with_every_command(keras_tutorial, tmp_path, capsys):
    """evaluate, predict, report, export and serve take the imported model like any fashion-cnn model."""
    folder, _ = keras_tutorial
    toy = write_dataset(tmp_path / "toy", n_train=60, n_test=50)
    run = tmp_path / "runs" / "keras"
    assert main(["import", str(folder / "best-cnn-model.keras"), "--run", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == 333526
    assert sorted(p.name for p in run.iterdir()) == ["best.safetensors", "config.json", "summary.txt"]
    assert "Total params: 333,526" in (run / "summary.txt").read_text()
    assert main(["evaluate", str(run), "--data-dir", str(toy), "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1
    assert main(["predict", str(run), "--data-dir", str(toy), "--index", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["probabilities"]) == 10
    test = fc.load_split("test", data_dir=toy)
    fc.write_report(run, analysis=fc.analyze(fc.load_model(run), test, split="test"), inside=False)  # 'report' without its t-SNE
    assert "best-cnn-model.keras" in (run / "report.html").read_text()
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    assert (run / "model.torchscript.pt").is_file()
    from fastapi.testclient import TestClient

    from fashion_cnn.serving.app import create_app

    with TestClient(create_app(str(run))) as client:
        info = client.get("/model").json()
    assert info["arch"]["name"] == "tutorial-cnn" and info["classes"][0] == "T-shirt/top"
    capsys.readouterr()
    # A second import into the same run is refused before anything is read or written.
    one_line_error(
        capsys, main(["import", str(folder / "best-cnn-model.keras"), "--run", str(run)]), "already exists and is not an empty folder"
    )


def variant_with_rescaling(keras):
    """Rescaling on raw pixels, strided 'same' conv, 'same' pooling, dilation, no bias, global pooling, logits."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Rescaling(1 / 255.0),
            layers.Conv2D(8, (5, 3), strides=2, padding="same", activation="elu"),
            layers.MaxPooling2D(3, strides=2, padding="same"),
            layers.Conv2D(12, 3, dilation_rate=2, activation="gelu", use_bias=False),
            layers.GlobalAveragePooling2D(),
            layers.Dense(16, activation="selu"),
            layers.Dropout(0.2),
            layers.Dense(10),
        ]
    )


def variant_with_three_blocks(keras):
    """Three conv blocks with other activations, an even kernel and average pooling, ending in Activation('softmax')."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(6, 3, activation="sigmoid"),
            layers.AveragePooling2D(2),
            layers.Conv2D(8, 4, padding="same", activation="relu"),  # an even kernel: the extra padding goes after
            layers.MaxPooling2D(2),
            layers.Conv2D(8, 3, padding="same", activation="swish"),
            layers.Activation("tanh"),
            layers.GlobalMaxPooling2D(),
            layers.Flatten(),
            layers.Dense(32, activation="mish"),
            layers.Dense(10),
            layers.Activation("softmax"),
        ]
    )


@pytest.mark.parametrize(
    "build, suffix, raw_pixels, logits",
    [(variant_with_rescaling, ".keras", True, True), (variant_with_three_blocks, ".h5", False, False)],
    ids=["rescaling-strides-dilation-logits", "three-blocks-h5"],
)
def test_other_sequentials_import_as_keras_sequential_and_export_back(keras, data, tmp_path, capsys, build, suffix, raw_pixels, logits):
    x, y, test = data
    keras.utils.set_random_seed(1)
    model = build(keras)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    scale = 1.0 if raw_pixels else 1 / 255.0
    model.fit(x[:64, ..., None] * scale, y[:64], epochs=1, batch_size=32, verbose=0)  # biases away from zero
    model.save(tmp_path / f"variant{suffix}")
    want = model.predict(test[..., None] * scale, verbose=0)
    want = softmax(want) if logits else want

    out = tmp_path / "variant.safetensors"
    assert main(["import", str(tmp_path / f"variant{suffix}"), "-o", str(out)]) == 0
    assert ("0..255 pixels" in capsys.readouterr().out) == raw_pixels
    imported = fc.load_model(out)
    assert imported.arch["name"] == "keras-sequential"
    assert [layer["type"] for layer in imported.arch["kwargs"]["layers"]] == [type(layer).__name__ for layer in model.layers]
    got = fc.predict_proba(imported, test)
    assert np.abs(got - want).max() <= TOLERANCE

    # ... and back: Keras loads the export and predicts what it predicted before.
    assert main(["export", str(out), "--format", "keras", "-o", str(tmp_path / "back.keras")]) == 0
    capsys.readouterr()
    back = keras.saving.load_model(tmp_path / "back.keras")
    again = back.predict(test[..., None] * scale, verbose=0)
    assert np.abs((softmax(again) if logits else again) - want).max() <= TOLERANCE
    assert main(["summary", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert [r["output_shape"][1:] for r in rows] == [list(layer.output.shape[1:]) for layer in model.layers]


# -- fashion-cnn → Keras -----------------------------------------------------------------------------------


def test_a_fashion_cnn_run_exported_to_keras_predicts_the_same_in_keras(keras, toy_run, data, tmp_path, capsys):
    out = tmp_path / "model.keras"
    assert main(["export", str(toy_run.path), "--format", "keras", "-o", str(out)]) == 0
    assert "Keras 3; load it with keras.saving.load_model" in capsys.readouterr().out
    model = keras.saving.load_model(out)
    assert model.count_params() == 333526
    assert [layer.name for layer in model.layers] == fc.layer_names(fc.load_model(toy_run.path))
    want = fc.predict_proba(fc.load_model(toy_run.path), data[2])
    got = model.predict(data[2][..., None] / 255.0, verbose=0)
    assert np.abs(got - want).max() <= TOLERANCE
    assert (got.argmax(1) == want.argmax(1)).all()
    # The file keeps the class names beside Keras' own metadata.
    assert json.loads(zipfile.ZipFile(out).read("metadata.json"))["classes"][9] == "Ankle boot"


def test_keras_export_of_a_run_goes_into_the_run_and_is_byte_identical_each_time(toy_run, tmp_path):
    model = fc.load_model(toy_run.path)
    assert keras_bytes(model) == keras_bytes(fc.load_model(toy_run.path))
    result = export_keras(model, tmp_path / "m.keras")
    assert result["max_abs_diff"] <= TOLERANCE and (tmp_path / "m.keras").read_bytes() == keras_bytes(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]  # no temporary file left


def test_an_architecture_without_a_keras_sequential_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry._BUILDERS, "two-towers", lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
    fc.save_model(tmp_path / "m.safetensors", fc.build_model("two-towers"))
    code = main(["export", str(tmp_path / "m.safetensors"), "--format", "keras", "-o", str(tmp_path / "m.keras")])
    one_line_error(capsys, code, "a 'two-towers' model has no Keras Sequential", "tutorial-cnn and keras-sequential")
    assert not (tmp_path / "m.keras").exists()


# -- what is refused, by name ------------------------------------------------------------------------------


def batch_norm(keras):
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def lambda_layer(keras):
    return keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Flatten(), keras.layers.Dense(10)]
    )


def functional(keras):
    inputs = keras.Input((28, 28, 1))
    return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))


def three_channels(keras):
    return keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(10)])


def not_square(keras):
    return keras.Sequential([keras.Input((28, 20, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])


def hidden_softmax(keras):
    return keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(8, activation="softmax"), keras.layers.Dense(10)]
    )


def sigmoid_output(keras):
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="sigmoid")])


def mixed_precision(keras):
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, dtype="mixed_float16")])


def dense_on_an_image(keras):
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3), keras.layers.Dense(10)])


def five_classes(keras):
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")])


@pytest.mark.parametrize(
    "build, suffix, message",
    [
        (batch_norm, ".keras", "model.layers[1] BatchNormalization (batch_normalization"),
        (lambda_layer, ".h5", "is a Lambda layer, which holds Python code; fashion-cnn never runs code from a file"),
        (functional, ".keras", "holds a 'Functional' model; fashion-cnn imports Keras Sequential models"),
        (three_channels, ".keras", "takes images with 3 channels; fashion-cnn feeds grayscale images"),
        (not_square, ".h5", "takes (28, 20, 1) inputs; fashion-cnn feeds square images"),
        (hidden_softmax, ".keras", "has a softmax before the output layer; fashion-cnn supports softmax only as the output"),
        (
            sigmoid_output,
            ".keras",
            "is the model's output, with activation sigmoid; fashion-cnn takes models that end in a Dense layer with softmax",
        ),
        (mixed_precision, ".keras", "model.layers[1] Dense (dense"),
        (dense_on_an_image, ".keras", "gets (26, 26, 4); fashion-cnn maps Dense layers only after Flatten or global pooling"),
        (five_classes, ".keras", "the Keras model has 5 outputs but fashion-mnist has 10 classes; pass --dataset"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_keras_models_that_cannot_be_mapped_exactly_are_refused_by_name(keras, tmp_path, capsys, build, suffix, message):
    path = tmp_path / f"model{suffix}"
    build(keras).save(path)
    capsys.readouterr()
    err = one_line_error(capsys, main(["import", str(path), "-o", str(tmp_path / "out.safetensors")]), message)
    if build is batch_norm:
        assert "is not supported; supported: InputLayer, Rescaling, Conv2D, MaxPooling2D" in err
    if build is mixed_precision:
        assert "computes in 'mixed_float16'; fashion-cnn imports float32 models" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written, not even a temporary file


# -- hostile and damaged files (h5py only) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def good_keras(tmp_path_factory) -> bytes:
    """A valid .keras file of a fresh tutorial model, written by fashion-cnn (no Keras needed)."""
    torch.manual_seed(0)
    return keras_bytes(fc.build_model())


def rezip(good: bytes, replace: dict | None = None, extra: dict | None = None, compression=zipfile.ZIP_STORED) -> bytes:
    """``good`` with members replaced or added."""
    members = {n: zipfile.ZipFile(io.BytesIO(good)).read(n) for n in zipfile.ZipFile(io.BytesIO(good)).namelist()}
    members.update(replace or {})
    members.update(extra or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def edited_config(good: bytes, edit) -> bytes:
    config = json.loads(zipfile.ZipFile(io.BytesIO(good)).read("config.json"))
    edit(config["config"]["layers"])
    return rezip(good, {"config.json": json.dumps(config).encode()})


def h5_with(build) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        build(f)
    return buffer.getvalue()


def external_link(good: bytes) -> bytes:
    """The weights of conv2d replaced by an HDF5 external link to a file elsewhere on the machine."""

    def build(f):
        weights = h5py.File(io.BytesIO(zipfile.ZipFile(io.BytesIO(good)).read("model.weights.h5")), "r")
        weights.copy("layers", f)
        del f["layers/conv2d"]
        f["layers/conv2d"] = h5py.ExternalLink("/etc/secret.h5", "/vars")

    return rezip(good, {"model.weights.h5": h5_with(build)})


def nan_weights(good: bytes) -> bytes:
    def build(f):
        weights = h5py.File(io.BytesIO(zipfile.ZipFile(io.BytesIO(good)).read("model.weights.h5")), "r")
        weights.copy("layers", f)
        data = f["layers/dense/vars/1"][()]
        data[3] = np.nan
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = data

    return rezip(good, {"model.weights.h5": h5_with(build)})


def legacy_h5(config: dict | None) -> bytes:
    def build(f):
        if config is not None:
            f.attrs["model_config"] = json.dumps(config)
        f.create_group("model_weights")

    return h5_with(build)


LAMBDA = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1], "dtype": "float32", "name": "in"}},
            {"class_name": "Lambda", "config": {"name": "lambda", "function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda"}},
        ],
    },
}


@pytest.mark.parametrize(
    "make, name, message",
    [
        (
            lambda good: rezip(good, extra={"../../evil.py": b"import os"}),
            "m.keras",
            "holds '../../evil.py', which fashion-cnn does not read",
        ),
        (lambda good: rezip(good, extra={"model.weights.json": b"{}"}), "m.keras", "(sharded or .npz weights)"),
        (
            lambda good: rezip(good, {"model.weights.h5": bytes(50 << 20)}, compression=zipfile.ZIP_DEFLATED),
            "m.keras",
            "model.weights.h5 would expand to 52,428,800 bytes from",
        ),
        (lambda good: rezip(good, {"config.json": b"[" * 100_000 + b"]" * 100_000}), "m.keras", "its config.json is not valid JSON"),
        (lambda good: good[: len(good) // 2], "m.keras", "is a damaged Keras file"),
        (external_link, "m.keras", "conv2d is an HDF5 ExternalLink, which could read another file"),
        (nan_weights, "m.keras", "holds NaN or infinite weights (layer dense)"),
        (lambda good: edited_config(good, lambda layers: layers[1]["config"].update(padding="causal")), "m.keras", "padding is 'causal'"),
        (
            lambda good: edited_config(good, lambda layers: layers[1]["config"].update(data_format="channels_first")),
            "m.keras",
            "model.layers[0] Conv2D (conv2d) has data_format='channels_first', which fashion-cnn does not build",
        ),
        (
            lambda good: edited_config(
                good, lambda layers: layers[1]["config"].update(activation={"class_name": "function", "config": "my_act"})
            ),
            "m.keras",
            "has a custom activation",
        ),
        (
            lambda good: edited_config(good, lambda layers: layers[1]["config"].update(future_setting=3)),
            "m.keras",
            "has the setting 'future_setting'=3, which fashion-cnn does not know",
        ),
        (
            lambda good: edited_config(good, lambda layers: layers[2].update(module="my_package.layers", registered_name="Custom>Pool")),
            "m.keras",
            "model.layers[1] MaxPooling2D (max_pooling2d) is a custom layer",
        ),
        (
            lambda good: edited_config(good, lambda layers: layers[1]["config"].update(filters=16)),
            "m.keras",
            "holds weights [(3, 3, 1, 32), (32,)], its config needs",
        ),
        (lambda good: legacy_h5(LAMBDA), "m.h5", "model.layers[0] Lambda (lambda) is a Lambda layer, which holds Python code"),
        (lambda good: legacy_h5(None), "m.h5", "holds weights only (model.save_weights)"),
        (lambda good: b"not a model at all", "m.keras", "is not a Keras model file (neither a .keras zip nor HDF5)"),
    ],
    ids=[
        "zip-path-traversal",
        "sharded-weights",
        "zip-bomb",
        "deep-json",
        "truncated",
        "hdf5-external-link",
        "nan-weights",
        "causal-padding",
        "channels-first",
        "custom-activation",
        "unknown-setting",
        "custom-layer",
        "weights-of-another-shape",
        "lambda-in-h5",
        "weights-only-h5",
        "not-keras",
    ],
)
def test_hostile_or_damaged_keras_files_are_refused_with_one_line(good_keras, tmp_path, capsys, make, name, message):
    path = tmp_path / name
    path.write_bytes(make(good_keras))
    one_line_error(capsys, main(["import", str(path), "-o", str(tmp_path / "out.safetensors")]), str(path), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


def test_a_folder_or_a_missing_file_is_refused(tmp_path, capsys):
    one_line_error(capsys, main(["import", str(tmp_path)]), "is a folder (a TensorFlow SavedModel?)")
    one_line_error(capsys, main(["import", str(tmp_path / "none.keras")]), "does not exist")


def test_the_importer_needs_no_keras_and_reads_its_own_export(good_keras, tmp_path):
    (tmp_path / "m.keras").write_bytes(good_keras)
    model = fc.import_keras(tmp_path / "m.keras", dataset="mnist")
    assert model.arch == {"name": "tutorial-cnn", "kwargs": {}}
    assert model.meta["classes"][:2] == ["0", "1"] and model.meta["dataset"] == {"name": "mnist"}
    assert model.meta["keras"]["keras_version"] == "3"


def legacy_from(good: bytes, path: Path, edit=None) -> Path:
    """The legacy ``model.save("m.h5")`` layout of the ``.keras`` bytes ``good``, written with h5py to ``path``:
    ``model_config`` and ``model_weights/<layer>/<layer>/kernel:0``; ``edit(h5, config)`` changes it first."""
    archive = zipfile.ZipFile(io.BytesIO(good))
    config = json.loads(archive.read("config.json"))
    weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")["layers"]
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = [name.encode() for name in weights]
        for name in weights:
            group = root.create_group(name)
            arrays = weights[name]["vars"] if "vars" in weights[name] else {}
            group.attrs["weight_names"] = [f"{name}/{('kernel', 'bias')[int(k)]}:0".encode() for k in sorted(arrays, key=int)]
            for k in arrays:
                group[f"{name}/{('kernel', 'bias')[int(k)]}:0"] = arrays[k][()]
        if edit:
            edit(f, config)
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
    return path


def test_a_legacy_h5_imports(good_keras, tmp_path, capsys):
    path = legacy_from(good_keras, tmp_path / "m.h5")
    assert main(["import", str(path), "-o", str(tmp_path / "m.safetensors"), "--json"]) == 0
    model = fc.load_model(tmp_path / "m.safetensors")
    kernel = zipfile.ZipFile(io.BytesIO(good_keras)).open("model.weights.h5")
    expected = h5py.File(io.BytesIO(kernel.read()), "r")["layers/conv2d/vars/0"][()]
    assert np.array_equal(model.state_dict()["conv2d.conv.weight"].permute(2, 3, 1, 0).numpy(), expected)


def through_another_file(target: Path):
    """conv2d's weights moved into ``target`` (when it is not a FIFO), and the layer renamed ``ext/conv2d`` in the
    config and the layer list, where ``ext`` is an HDF5 external link to ``target``'s root: a path whose middle
    step is a link. The last step (``conv2d``) is a hard link inside ``target``."""

    def edit(f, config):
        root = f["model_weights"]
        if not target.exists():
            with h5py.File(target, "w") as other:
                other.copy(root["conv2d"], "conv2d")
                other["conv2d/conv2d/kernel:0"][...] = 0.5  # the weights an attacker chose
        del root["conv2d"]
        root["ext"] = h5py.ExternalLink(str(target), "/")
        names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]]
        root.attrs["layer_names"] = [("ext/conv2d" if n == "conv2d" else n).encode() for n in names]
        next(layer for layer in config["config"]["layers"] if layer["config"].get("name") == "conv2d")["config"]["name"] = "ext/conv2d"

    return edit


def soft_link_in_weight_path(f, config):
    """conv2d's weight path ``conv2d/conv2d/kernel:0`` runs through a soft link to a group elsewhere in the file."""
    root = f["model_weights"]
    root.move("conv2d/conv2d", "hidden")
    root["hidden/kernel:0"][...] = 0.25
    root["conv2d/conv2d"] = h5py.SoftLink("/model_weights/hidden")


def test_an_external_link_in_the_middle_of_a_path_is_refused(good_keras, tmp_path, capsys):
    """Issue 26, defect 1: before the fix this imported (exit 0) with conv2d's weights read from other.h5."""
    path = legacy_from(good_keras, tmp_path / "m.h5", through_another_file(tmp_path / "other.h5"))
    code = main(["import", str(path), "-o", str(tmp_path / "out.safetensors")])
    one_line_error(capsys, code, "ext is an HDF5 ExternalLink (a step of 'ext/conv2d'), which could read another file")
    assert not (tmp_path / "out.safetensors").exists()


def test_a_soft_link_in_the_middle_of_a_weight_path_is_refused(good_keras, tmp_path, capsys):
    path = legacy_from(good_keras, tmp_path / "m.h5", soft_link_in_weight_path)
    code = main(["import", str(path), "-o", str(tmp_path / "out.safetensors")])
    one_line_error(capsys, code, "conv2d is an HDF5 SoftLink (a step of 'conv2d/kernel:0')")


def test_a_fifo_behind_an_external_link_is_never_opened(good_keras, tmp_path):
    """Issue 26, defect 2: before the fix the importer opened the FIFO and waited forever (killed here at 60 s)."""
    fifo = tmp_path / "weights.h5"
    os.mkfifo(fifo)
    path = legacy_from(good_keras, tmp_path / "m.h5", through_another_file(fifo))
    proc = subprocess.run(
        [sys.executable, "-m", "fashion_cnn", "import", str(path), "-o", str(tmp_path / "out.safetensors")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "ext is an HDF5 ExternalLink" in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


def test_weights_beyond_float32_are_refused_at_import_by_layer(good_keras, tmp_path, capsys):
    """Issue 26, defect 4: before the fix, float64 1e300 became an infinite weight with only NumPy's overflow warning."""

    def huge(f, config):
        kernel = f["model_weights/dense/dense/kernel:0"]
        data = kernel[()].astype(np.float64)
        data[0, 0] = -1e300
        del f["model_weights/dense/dense/kernel:0"]
        f["model_weights/dense/dense/kernel:0"] = data

    path = legacy_from(good_keras, tmp_path / "m.h5", huge)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy overflow warning on the way either
        code = main(["import", str(path), "-o", str(tmp_path / "out.safetensors")])
    one_line_error(capsys, code, "layer dense holds a weight of 1e+300, beyond float32's 3.4e+38")
    assert not (tmp_path / "out.safetensors").exists()


# -- the keras-sequential architecture in model files ------------------------------------------------------


def test_keras_sequential_metadata_is_bounded_before_anything_is_built(tmp_path, capsys):
    layers = tutorial_layers()
    meta = {"arch": {"name": "keras-sequential", "kwargs": {"layers": layers, "image_size": 28}}}
    check_meta(meta, "m.safetensors")  # the tutorial's list passes
    for kwargs, message in [
        ({"layers": [{"type": "Flatten"}] * 65}, "arch.kwargs.layers is a list of 65 objects, more than 64"),
        ({"layers": [{"type": "Dense", "units": 10**9}]}, "arch.kwargs.layers[0].units is 1e+09, beyond 16,777,216"),
        ({"layers": [{"type": "Dense", "units": {"deep": [1]}}]}, "arch.kwargs.layers[0].units is a dict"),
        ({"layers": [{f"k{i}": 1 for i in range(17)}]}, "arch.kwargs.layers[0] has more than 16 entries"),
    ]:
        with pytest.raises(fc.FashionCNNError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
            check_meta({"arch": {"name": "keras-sequential", "kwargs": kwargs}}, "m.safetensors")

    # A list that passes those bounds but makes no model is refused, naming the layer: by the builder, and at load.
    for bad, message in [
        (
            [{"type": "Conv2D", "filters": 4, "kernel_size": 40}, {"type": "Flatten"}, {"type": "Dense", "units": 10}],
            "does not fit the 28×28 image",
        ),
        ([{"type": "BatchNormalization"}], "layer 0 is 'BatchNormalization', not one of the layer types"),
        ([{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "hard_sigmoid"}], "activation is 'hard_sigmoid'"),
        ([{"type": "Flatten"}, {"type": "Dense", "units": 10, "kernel": 3}], "layer 1 \\(Dense\\) has settings it does not take: kernel"),
    ]:
        with pytest.raises(fc.FashionCNNError, match=message):
            fc.build_model("keras-sequential", layers=bad)

    # A saved keras-sequential model loads back as itself; its file edited to an impossible list is refused at load.
    model = fc.build_model("keras-sequential", layers=[{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}])
    fc.save_model(tmp_path / "m.safetensors", model)
    loaded = fc.load_model(tmp_path / "m.safetensors")
    assert loaded.arch["kwargs"]["layers"][1] == {"type": "Dense", "units": 10, "activation": "softmax"}
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as f:
        header, tensors = json.loads(f.metadata()["fashion_cnn"]), {k: f.get_tensor(k) for k in f.keys()}
    header["arch"]["kwargs"]["layers"][1]["activation"] = "hard_sigmoid"
    save_file(tensors, str(tmp_path / "edited.safetensors"), metadata={"format": "fashion-cnn", "fashion_cnn": json.dumps(header)})
    one_line_error(capsys, main(["summary", str(tmp_path / "edited.safetensors")]), "edited.safetensors", "activation is 'hard_sigmoid'")


layer_settings = {
    "filters": st.integers(1, 6),
    "units": st.integers(1, 12),
    "kernel_size": st.one_of(st.integers(1, 6), st.lists(st.integers(1, 6), min_size=2, max_size=2)),
    "pool_size": st.one_of(st.integers(1, 4), st.lists(st.integers(1, 4), min_size=2, max_size=2)),
    "strides": st.one_of(st.none(), st.integers(1, 3), st.lists(st.integers(1, 3), min_size=2, max_size=2)),
    "dilation_rate": st.integers(1, 3),
    "padding": st.sampled_from(["valid", "same"]),
    "activation": st.sampled_from(["relu", "linear", None, "tanh", "gelu", "selu", "softmax"]),
    "use_bias": st.booleans(),
    "rate": st.floats(0, 0.9),
    "scale": st.floats(-2, 2),
    "offset": st.floats(-2, 2),
}


def a_layer(kind: str):
    """A layer of ``kind`` with its required settings (those without a Keras default) and some of the others."""
    keys = LAYER_TYPES.get(kind, {})
    required = {k for k, default in keys.items() if default is None and k not in ("strides", "activation")}
    return st.fixed_dictionaries(
        {"type": st.just(kind), **{k: layer_settings[k] for k in required}},
        optional={k: layer_settings[k] for k in keys if k not in required},
    )


layers_of_any_type = st.sampled_from([*LAYER_TYPES, *LAYER_TYPES, "BatchNormalization"]).flatmap(a_layer)
layer_lists = st.builds(
    lambda body, end: body + end,
    st.lists(layers_of_any_type, max_size=6),
    st.one_of(
        st.just([]), st.lists(a_layer("Dense"), min_size=1, max_size=1), st.just([{"type": "Flatten"}, {"type": "Dense", "units": 3}])
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=layer_lists, image_size=st.integers(1, 40))
def test_any_layer_list_builds_a_working_model_or_is_one_refusal(layers, image_size):
    """A layer list is either refused with a FashionCNNError (one line) or builds a model whose output is one
    row of the last Dense layer's units, for an image of the size it was built for."""
    try:
        model = fc.build_model("keras-sequential", layers=layers, image_size=image_size)
    except fc.FashionCNNError as e:
        assert "\n" not in str(e)
        return
    with torch.no_grad():
        out = model.eval()(torch.rand(2, 1, image_size, image_size))
    units = [layer["units"] for layer in layers if layer["type"] == "Dense"][-1]
    assert out.shape == (2, units) and torch.isfinite(out).all()


def keras2_h5(model) -> bytes:
    """The legacy .h5 that tf.keras 2.x writes for the tutorial's model: Keras 2's config (batch_input_shape on the
    first layer, dtype as text) and weights under model_weights/<layer>/<layer>/kernel:0, listed in weight_names."""
    from fashion_cnn.models.keras_sequential import keras_names, to_keras

    layers = tutorial_layers()
    names = keras_names(layers)
    entries = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1], "dtype": "float32", "name": "conv2d_input"}}]
    for name, layer in zip(names, layers):
        settings = {k: v for k, v in layer.items() if k != "type"}
        extra = {"data_format": "channels_last"} if layer["type"] in ("Conv2D", "MaxPooling2D", "Flatten") else {}
        extra.update({"groups": 1} if layer["type"] == "Conv2D" else {})
        extra.update({"noise_shape": None, "seed": None} if layer["type"] == "Dropout" else {})
        entries.append({"class_name": layer["type"], "config": {"name": name, "trainable": True, "dtype": "float32", **settings, **extra}})
    config = {
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": entries},
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    }

    def build(f):
        f.attrs["keras_version"], f.attrs["backend"], f.attrs["model_config"] = "2.15.0", "tensorflow", json.dumps(config)
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode() for n in names]
        for name, arrays in zip(names, to_keras(layers, model.state_dict())):
            layer = group.create_group(name)
            layer.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in ("kernel", "bias")[: len(arrays)]]
            for w, array in zip(("kernel", "bias"), arrays):
                layer[f"{name}/{w}:0"] = array

    return h5_with(build)


def test_files_of_older_keras_versions_import(good_keras, toy_run, data, tmp_path):
    """tf.keras 2.x's legacy .h5, and the .keras of Keras 2.13-2.15 (weights under _layer_checkpoint_dependencies)."""
    model = fc.load_model(toy_run.path)
    model.meta.pop("calibration", None)  # these files hold the raw weights (no temperature folded in)
    (tmp_path / "keras2.h5").write_bytes(keras2_h5(model))
    old = io.BytesIO()
    with (
        h5py.File(io.BytesIO(zipfile.ZipFile(io.BytesIO(keras_bytes(model))).read("model.weights.h5")), "r") as new,
        h5py.File(old, "w") as f,
    ):
        new.copy("layers", f, name="_layer_checkpoint_dependencies")
    (tmp_path / "keras213.keras").write_bytes(rezip(keras_bytes(model), {"model.weights.h5": old.getvalue()}))
    want = fc.predict_proba(model, data[2])
    for name, version in (("keras2.h5", "2.15.0"), ("keras213.keras", "3")):
        imported = fc.import_keras(tmp_path / name)
        assert imported.arch == {"name": "tutorial-cnn", "kwargs": {}} and imported.meta["keras"]["keras_version"] == version
        assert np.abs(fc.predict_proba(imported, data[2]) - want).max() <= 1e-6
