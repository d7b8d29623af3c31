"""ONNX and TorchScript exports give PyTorch's probabilities; predict --engine onnx gives the same labels."""

import json
import shutil
import warnings

import numpy as np
import onnx
import pytest
import torch

from conftest import copy_run, isolated, write_dataset
from fashion_cnn import FashionCNNError, load_dataset, load_model, predict_proba
from fashion_cnn.cli import main
from fashion_cnn.export.torchscript import META_FILE
from fashion_cnn.inference.engines import load_classifier
from fashion_cnn.inference.onnx import OnnxClassifier


@pytest.fixture(scope="module")
def exported(toy_run, tmp_path_factory):
    """A copy of the session's toy run, exported to ONNX by the command line, and toy data with 1,000 test images."""
    tmp = tmp_path_factory.mktemp("export")
    data = write_dataset(tmp / "toy", n_train=300, n_test=1000)
    run = copy_run(toy_run.path, tmp / "run")
    with isolated(tmp):
        assert main(["export", str(run), "--format", "onnx"]) == 0
    return run, data


def test_onnx_matches_pytorch_on_1000_images(exported):
    run, data = exported
    images = load_dataset("fashion-mnist", data).test.images
    assert len(images) == 1000
    want = predict_proba(load_model(run), images)
    got = OnnxClassifier(run / "model.onnx").predict_proba(images)
    assert got.shape == want.shape == (1000, 10) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-5
    assert (got.argmax(1) == want.argmax(1)).all()


def test_onnx_batch_axis_is_dynamic_and_one_image_gives_one_row(exported):
    run, data = exported
    images = load_dataset("fashion-mnist", data).test.images
    clf = OnnxClassifier(run)
    for n in (1, 7, 1000):
        assert clf.predict_proba(images[:n], batch_size=n).shape == (n, 10)
    one = clf.predict_proba(images[3])
    assert one.shape == (10,) and abs(float(one.sum()) - 1) < 1e-5
    model = onnx.load(run / "model.onnx")
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed size


def test_onnx_carries_the_metadata(exported):
    run, _ = exported
    props = {p.key: p.value for p in onnx.load(run / "model.onnx").metadata_props}
    assert json.loads(props["classes"])[9] == "Ankle boot" and json.loads(props["classes_ko"])[8] == "가방"
    assert "x / 255" in props["normalisation"] and props["output"].startswith("probabilities")
    meta = json.loads(props["fashion_cnn"])
    assert meta["arch"]["name"] == "tutorial-cnn" and meta["input"]["scale"] == pytest.approx(1 / 255)
    assert OnnxClassifier(run).meta["classes"] == load_model(run).meta["classes"]


def test_predict_with_the_onnx_engine_gives_the_same_labels(exported, capsys):
    run, data = exported
    for index in (0, 5, 17):
        results = {}
        for engine in ("torch", "onnx"):
            assert (
                main(["predict", str(run), "--engine", engine, "--data-dir", str(data), "--split", "test", "--index", str(index), "--json"])
                == 0
            )
            results[engine] = json.loads(capsys.readouterr().out)
        assert results["onnx"]["predicted"] == {
            **results["torch"]["predicted"],
            "probability": pytest.approx(results["torch"]["predicted"]["probability"], abs=1e-5),
        }
        assert results["onnx"]["probabilities"] == pytest.approx(results["torch"]["probabilities"], abs=1e-5)


def test_torchscript_export_matches(exported, tmp_path, capsys):
    run, data = exported
    out = tmp_path / "m.pt"
    assert main(["export", str(run), "--format", "torchscript", "-o", str(out)]) == 0
    assert f"Wrote {out}" in capsys.readouterr().out
    files = {META_FILE: ""}
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(out), _extra_files=files)
    images = load_dataset("fashion-mnist", data).test.images[:200]
    with torch.no_grad():
        got = scripted(torch.from_numpy(images)).numpy()
    assert np.abs(got - predict_proba(load_model(run), images)).max() <= 1e-5
    assert json.loads(json.loads(files[META_FILE])["classes"])[0] == "T-shirt/top"


def test_engine_errors_name_the_fix(exported, tmp_path, capsys):
    run, data = exported
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "best.safetensors").write_bytes((run / "best.safetensors").read_bytes())
    assert main(["predict", str(bare), "--engine", "onnx", "--index", "0", "--data-dir", str(data)]) == 2
    assert "has no model.onnx; make it with 'fashion-cnn export" in capsys.readouterr().err
    assert main(["predict", str(run / "model.onnx"), "--engine", "torch", "--index", "0", "--data-dir", str(data)]) == 2
    assert "it looks like an ONNX model: use --engine onnx" in capsys.readouterr().err
    assert main(["predict", str(run / "model.onnx"), "--index", "0", "--data-dir", str(data)]) == 0  # .onnx: onnxruntime
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(FashionCNNError, match="is not a readable ONNX model"):
        load_classifier(junk, "onnx")
    with pytest.raises(FashionCNNError, match="unknown engine 'tf'"):
        load_classifier(run, "tf")


def test_export_refuses_to_overwrite_its_input(exported, capsys):
    run, _ = exported
    assert main(["export", str(run / "best.safetensors"), "--format", "safetensors"]) == 2
    assert "would overwrite its input" in capsys.readouterr().err


@pytest.mark.realdata
def test_onnx_matches_pytorch_on_1000_real_test_images(real_model, real_dir, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(real_model, run / "best.safetensors")
    assert main(["export", str(run), "--format", "onnx"]) == 0
    images = load_dataset("fashion-mnist", real_dir).test.images[:1000]
    want = predict_proba(load_model(run), images)
    got = load_classifier(run, "onnx").predict_proba(images)
    assert np.abs(got - want).max() <= 1e-5
    assert (got.argmax(1) == want.argmax(1)).all()


def test_int8_export_keeps_accuracy_and_metadata(exported, capsys):
    run, data = exported
    assert main(["export", str(run), "--format", "onnx", "--int8", "--data-dir", str(data), "--calibration", "200", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(run / "model.int8.onnx") and info["calibration_images"] == 200
    proto = onnx.load(str(run / "model.int8.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)  # really quantised
    props = {p.key: p.value for p in proto.metadata_props}
    assert "int8" in props["quantization"] and json.loads(props["classes"])[9] == "Ankle boot"
    test = load_dataset("fashion-mnist", data).test
    results = {}
    for name in ("model.onnx", "model.int8.onnx"):
        assert main(["evaluate", str(run / name), "--engine", "onnx", "--data-dir", str(data), "--json"]) == 0
        results[name] = json.loads(capsys.readouterr().out)["accuracy"]
    fp32 = OnnxClassifier(run / "model.onnx").predict_proba(test.images)
    assert results["model.onnx"] == pytest.approx(float((fp32.argmax(1) == test.labels).mean()))
    assert results["model.int8.onnx"] >= results["model.onnx"] - 0.02


def test_int8_needs_onnx_format(exported, capsys):
    run, data = exported
    assert main(["export", str(run), "--format", "torchscript", "--int8"]) == 2
    assert "--int8 applies to --format onnx" in capsys.readouterr().err
