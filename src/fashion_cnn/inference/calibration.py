"""How far a model's confidence can be trusted: expected calibration error (ECE) over equal-width bins.

    fashion-cnn evaluate runs/tutorial --split test      # prints the loss (negative log-likelihood), accuracy and ECE

A model is calibrated when, of the images it gives 87% to its top class, 87% are right. ECE (Naeini et al. 2015;
Guo et al. 2017, "On Calibration of Modern Neural Networks") splits the images by that confidence into 15 bins
of equal width and averages |accuracy − mean confidence| over the bins, each weighted by its share of images:
0 is perfectly calibrated, and 0.05 means five points of over- or under-confidence on average.
"""

from __future__ import annotations

import numpy as np

#: Guo et al.'s bin count, the common choice (and the one issue 27 asks for).
ECE_BINS = 15


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of the top probability ((0, 1/bins], ..., ((bins-1)/bins, 1]): the images in it, their accuracy
    and their mean confidence (NaN for an empty bin). What a reliability diagram draws and ECE averages.

    Example:
        >>> count, accuracy, confidence = reliability_bins(np.array([[0.9, 0.1], [0.9, 0.1]]), np.array([0, 1]), bins=10)
        >>> int(count[8]), float(accuracy[8]), float(confidence[8])
        (2, 0.5, 0.9)
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, correct, minlength=bins) / count
        mean_confidence = np.bincount(which, confidence, minlength=bins) / count
    return count, accuracy, mean_confidence


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of class probabilities ``probs`` (N, classes) against ``labels`` (N,), over ``bins`` equal-width bins
    of the top probability: the mean over bins of |accuracy − confidence|, each weighted by its share of images.

    Example:
        >>> probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> round(expected_calibration_error(probs, np.array([0, 1, 0, 0])), 4)   # 0.9 bin: 50% right; 0.6: 100%; 0.8: 0%
        0.5
    """
    if not len(labels):
        return float("nan")
    count, accuracy, confidence = reliability_bins(probs, labels, bins)
    filled = count > 0
    return float((count[filled] * np.abs(accuracy[filled] - confidence[filled])).sum() / count.sum())


def fit_temperature(logits, labels) -> float:
    """The temperature T that minimises the negative log-likelihood of ``softmax(logits / T)`` on ``labels``
    (Guo et al.'s temperature scaling): one number, fitted on the validation split, that leaves every argmax
    (so the accuracy) as it was and brings the confidence in line with how often the model is right.

    ``logits`` are the model's own (at T = 1), (N, classes). Searched on log T in [0.01, 100] with SciPy's
    bounded scalar minimiser.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(0, 3, (20_000, 10))
        >>> p = np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True)          # the truth: T = 2
        >>> labels = (rng.uniform(size=(20_000, 1)) > p.cumsum(1)).sum(1)
        >>> round(fit_temperature(logits, labels), 1)
        2.0
    """
    import torch
    from scipy.optimize import minimize_scalar

    from ..models.metadata import MAX_TEMPERATURE, MIN_TEMPERATURE

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(z / np.exp(log_t), y))

    found = minimize_scalar(nll, bounds=(np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(found.x))


def calibrate(model, val, test=None) -> dict:
    """Fit ``model``'s temperature on ``val`` (a ``LabeledImages``; never the test split) and record it in
    ``model.meta["calibration"]`` (``save_model`` then writes it). Refits from the model's own logits when it was
    calibrated before. ECE (15 bins) and loss before and after, on ``val`` and, for the record only, ``test``.

    Returns:
        ``model.meta["calibration"]``: ``temperature``, ``fitted_on``, ``images``, ``val_ece_before`` ... ``test_loss_after``.

    Example:
        >>> c = calibrate(model, val_set)
        >>> c["fitted_on"], c["val_loss_after"] <= c["val_loss_before"]
        ('val', True)
    """
    import torch
    import torch.nn.functional as F

    from .predict import logits_of

    model.meta = dict(getattr(model, "meta", None) or {})
    model.meta.pop("calibration", None)  # logits_of at T = 1: the model's own logits
    temperature = fit_temperature(logits_of(model, val.images), val.labels)
    record = {"temperature": temperature, "fitted_on": "val", "images": len(val)}
    for name, data in (("val", val), ("test", test)):
        if data is None:
            continue
        logits, labels = logits_of(model, data.images), torch.as_tensor(np.asarray(data.labels), dtype=torch.long)
        for label, t in (("before", 1.0), ("after", temperature)):
            record[f"{name}_ece_{label}"] = round(expected_calibration_error((logits / t).softmax(1).numpy(), data.labels), 6)
            record[f"{name}_loss_{label}"] = round(float(F.cross_entropy(logits / t, labels)), 6)
    model.meta["calibration"] = record
    return record
