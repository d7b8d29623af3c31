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
