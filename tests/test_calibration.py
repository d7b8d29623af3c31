"""Calibration measured (issue 27, first part): expected calibration error over 15 bins, in every evaluation."""

import json

import numpy as np
import pytest

import fashion_cnn as fc
from fashion_cnn.cli import main
from fashion_cnn.inference.calibration import expected_calibration_error


def ece_by_loops(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Guo et al.'s definition written plainly: for each bin (lo, hi], |accuracy - mean confidence| × its share."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [i for i in range(len(labels)) if lo < probs[i].max() <= hi or (b == 0 and probs[i].max() == 0)]
        if inside:
            accuracy = np.mean([probs[i].argmax() == labels[i] for i in inside])
            confidence = np.mean([probs[i].max() for i in inside])
            total += len(inside) / len(labels) * abs(accuracy - confidence)
    return total


@pytest.mark.parametrize("seed", range(5))
def test_ece_is_the_textbook_definition(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1 + seed, (400, 10))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 10, 400)
    assert expected_calibration_error(probs, labels) == pytest.approx(ece_by_loops(probs, labels), abs=1e-12)


def test_a_calibrated_and_an_overconfident_model():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.1, 1.0, 20_000)
    right = rng.uniform(size=20_000) < confidence  # right as often as it says
    probs = np.stack([confidence, 1 - confidence], 1)
    labels = np.where(right, 0, 1)
    assert expected_calibration_error(probs, labels) < 0.02
    sure = np.stack([np.full(20_000, 0.99), np.full(20_000, 0.01)], 1)
    assert expected_calibration_error(sure, labels) == pytest.approx(0.99 - right.mean(), abs=1e-9)


def test_evaluate_prints_and_returns_the_ece_of_its_probabilities(toy_run, capsys):
    assert main(["evaluate", str(toy_run.path), "--split", "test", "--data-dir", str(toy_run.data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = fc.load_model(toy_run.path)
    data = fc.load_dataset("fashion-mnist", toy_run.data).test
    # (the command runs the CPU kernels where they build: the same probabilities to float rounding)
    assert result["ece"] == pytest.approx(expected_calibration_error(fc.predict_proba(model, data.images), data.labels), abs=1e-6)
    assert main(["evaluate", str(toy_run.path), "--split", "test", "--data-dir", str(toy_run.data)]) == 0
    assert f"ECE {result['ece']:.4f}" in capsys.readouterr().out


# -- temperature scaling: fitted on validation, recorded in the model file, applied by every engine ------------


@pytest.fixture(scope="module")
def calibrated(toy_run, tmp_path_factory):
    from conftest import copy_run

    run = copy_run(toy_run.path, tmp_path_factory.mktemp("calibrated") / "run")
    before = fc.load_model(run)
    before.meta.pop("calibration")  # train calibrated it already: start from the model's own probabilities
    fc.save_model(run / "best.safetensors", before)
    assert main(["calibrate", str(run), "--data-dir", str(toy_run.data), "--json"]) == 0
    return run, before


def test_calibrate_records_the_temperature_and_keeps_every_class(calibrated, toy_run):
    run, before = calibrated
    after = fc.load_model(run)
    t = after.meta["calibration"]["temperature"]
    assert after.meta["calibration"]["fitted_on"] == "val" and t != pytest.approx(1.0, abs=1e-3)
    test = fc.load_dataset("fashion-mnist", toy_run.data).test
    p0, p1 = fc.predict_proba(before, test.images), fc.predict_proba(after, test.images)
    assert np.array_equal(p0.argmax(1), p1.argmax(1)) and not np.allclose(p0, p1)
    logits = np.log(p0)  # softmax(z / T) from softmax(z): log-probabilities are z up to a constant per row
    expected = np.exp(logits / t) / np.exp(logits / t).sum(1, keepdims=True)
    assert np.abs(p1 - expected).max() < 1e-5
    calibration = after.meta["calibration"]
    assert calibration["val_loss_after"] <= calibration["val_loss_before"]  # what the temperature minimises


def test_every_engine_and_export_gives_the_calibrated_probabilities(calibrated, toy_run, tmp_path):
    run, _ = calibrated
    pytest.importorskip("onnxruntime")
    images = fc.load_dataset("fashion-mnist", toy_run.data).test.images[:32]
    torch_probs = fc.predict_proba(fc.load_model(run), images)
    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.pt"), ("keras", "m.keras")):
        assert main(["export", str(run), "--format", fmt, "-o", str(tmp_path / name)]) == 0
    onnx = fc.load_classifier(tmp_path / "m.onnx").predict_proba(images)
    import warnings

    import torch

    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(tmp_path / "m.pt"))(torch.from_numpy(images)).detach().numpy()
    keras_back = fc.predict_proba(fc.import_keras(tmp_path / "m.keras"), images)  # no temperature: it is in the weights
    for other in (onnx, scripted, keras_back):
        assert np.abs(other - torch_probs).max() < 1e-5


def test_the_service_answers_with_the_calibrated_probabilities(calibrated, toy_run):
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from fashion_cnn.serving.app import create_app

    run, _ = calibrated
    image = fc.load_dataset("fashion-mnist", toy_run.data).test.images[0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    answer = TestClient(create_app(run)).post("/predict", content=buffer.getvalue(), headers={"content-type": "image/png"}).json()
    served = [p["probability"] for p in answer["probabilities"]]
    model = fc.load_model(run)
    assert np.abs(np.array(served) - fc.predict_proba(model, image[None])[0]).max() < 1e-5


@pytest.mark.parametrize("temperature", ["1.5", -1, 0, 1e9, float("nan"), True, None])
def test_a_temperature_no_fit_gives_is_refused_by_name(tmp_path, capsys, temperature):
    from conftest import one_line_error
    from test_hostile import write_model

    path = write_model(tmp_path / "m.safetensors", {"calibration": {"temperature": temperature}})
    one_line_error(capsys, main(["summary", str(path)]), "calibration.temperature is", "not a number from 0.01 to 100")


def test_the_reliability_diagram_draws_each_bins_accuracy_and_gap(toy_run, tmp_path, capsys):
    from fashion_cnn.inference.calibration import reliability_bins
    from fashion_cnn.inspection.plots import plot_reliability

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (3000, 10))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 10, 3000)
    count, accuracy, confidence = reliability_bins(probs, labels)
    fig = plot_reliability(probs, labels)
    ax = fig.axes[0]
    bars, gaps = ax.containers  # accuracy, then over-confidence
    filled = count > 0
    assert np.allclose([b.get_height() for b in bars], accuracy[filled])
    assert np.allclose([b.get_x() for b in bars], (np.arange(15) / 15)[filled])
    over = filled & (confidence > accuracy)
    assert np.allclose([g.get_height() for g in gaps], (confidence - accuracy)[over])
    assert np.allclose([g.get_y() for g in gaps], accuracy[over])
    assert f"ECE {expected_calibration_error(probs, labels):.2%}" in ax.get_title()
    out = tmp_path / "reliability.png"
    assert main(["evaluate", str(toy_run.path), "--data-dir", str(toy_run.data), "--reliability", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and f"Wrote {out}" in capsys.readouterr().out


def test_the_report_shows_the_ece_and_the_reliability_diagram(calibrated, toy_run, capsys):
    import re

    run, _ = calibrated
    assert main(["report", str(run), "--data-dir", str(toy_run.data)]) == 0
    page = (run / "report.html").read_text()
    model = fc.load_model(run)
    test = fc.load_dataset("fashion-mnist", toy_run.data).test
    ece = expected_calibration_error(fc.predict_proba(model, test.images), test.labels)
    shown = re.search(r'<strong id="ece">([0-9.]+)%</strong>', page)
    assert shown and float(shown.group(1)) == pytest.approx(100 * ece, abs=0.006)
    t = model.meta["calibration"]["temperature"]
    assert f"at the temperature {t:.3f}" in page and 'alt="reliability diagram"' in page
