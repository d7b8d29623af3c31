""" "This does not look like clothing": a score of how unlike the training images a picture is, and a threshold.

    fashion-cnn train ...                                   # fits the detector after training (a default step)
    fashion-cnn calibrate runs/NAME                         # fits it (and the temperature) for an older run
    fashion-cnn predict runs/NAME cat.jpg                   # "cat.jpg  not clothing (score 0.31 > 0.07) ..."
    fashion-cnn evaluate runs/NAME --ood digits noise flipped photos

The score is the cosine distance from an image's features to the nearest prototype of the training images
(deep k-nearest-neighbours, Sun et al. 2022, "Out-of-Distribution Detection with Deep Nearest Neighbors",
with the training set summarised by k-means prototypes per class). The features are the model's own: the
penultimate layer (the input of the last Dense layer) and the last feature map averaged and max-pooled over
space, each scaled to unit length, so both what the classifier decides on and what the convolutions saw count.
The threshold is the score that keeps ``keep`` (95%) of the validation images: the detector never sees the
test split, nor any out-of-distribution image.

Chosen by measurement (``bench/ood.py``; tutorial CNN, AMD EPYC, fp32) among the maximum softmax probability,
energy, Mahalanobis distance (plain and relative), kNN on the penultimate features alone, and this: against
upscaled digits, uniform and Gaussian noise, upside-down garments and photo crops, this one was best or level
on every set. The README and ``bench/ood.md`` hold the table.

The model file keeps the prototypes as the tensor ``ood.prototypes`` and the settings as ``meta["ood"]``
(``models.metadata``); the ONNX export computes the same score in its graph (output ``ood_score``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import as_pixels, to_model_input
from ..data.types import LabeledImages
from ..errors import FashionCNNError
from ..models.files import unwrap
from ..models.metadata import ood_of, temperature_of
from .predict import EVAL_BATCH, _side, finite_probabilities, predict_proba

METHOD = "knn-prototypes"
#: What an image judged not clothing gets: its class with a warning, or no class.
OOD_ACTIONS = ("warn", "reject")
#: The share of validation images the threshold keeps as clothing (issue 27: "keep 95% of in-distribution").
KEEP = 0.95
#: k-means prototypes per class: the score of 50 is within 0.005 AUROC of all 48,000 training images on every
#: set measured, at 2% of their size (500 × 228 floats in the model file, 0.45 MB).
PROTOTYPES_PER_CLASS = 50


def features(map_: torch.Tensor | None, penultimate: torch.Tensor | None) -> torch.Tensor:
    """The detector's features: penultimate, mean and max of the feature map, each unit length, then the whole
    unit length (N, units + 2 × channels). Plain tensor arithmetic, so the ONNX graph computes it too."""
    parts = [] if penultimate is None else [penultimate.flatten(1)]
    if map_ is not None:
        parts += [map_.mean(dim=(2, 3)), map_.amax(dim=(2, 3))]
    if not parts:
        raise FashionCNNError("the model has neither a feature map nor a Dense layer, so no not-clothing score can be computed")
    joined = torch.cat([F.normalize(p.float(), dim=1) for p in parts], dim=1)
    return F.normalize(joined, dim=1)


def distance(feats: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine distance (0 = the same direction, up to 2) from each row of ``feats`` to its nearest prototype."""
    return 1 - (feats @ prototypes.T).amax(dim=1)


def forward_with_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, features)`` of the model input ``x`` in one pass (``KerasSequential.with_features``)."""
    inner = unwrap(model)
    if not hasattr(inner, "with_features"):
        raise FashionCNNError(
            f"{type(inner).__name__} models do not expose their features, so they get no not-clothing score; "
            "use an architecture from 'fashion-cnn summary --list'"
        )
    logits, map_, penultimate = inner.with_features(x)
    return logits, features(map_, penultimate)


@torch.inference_mode()
def logits_and_features(model: nn.Module, images, batch_size: int = EVAL_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (divided by the model's temperature, as ``logits_of``) and detector features of uint8 or 0..1 images."""
    x = as_pixels(images, _side(model))[0]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, feats = [], []
    try:
        for i in range(0, len(x), batch_size):
            out, f = forward_with_features(model, to_model_input(x[i : i + batch_size], device))
            logits.append(out.float().cpu())
            feats.append(f.cpu())
    finally:
        model.train(was_training)
    if not logits:
        return torch.empty(0, 0), torch.empty(0, 0)
    t = temperature_of(getattr(model, "meta", None))
    return torch.cat(logits) / t, torch.cat(feats)


def prototypes_of(model: nn.Module) -> torch.Tensor:
    """The model's prototypes, or a one-line refusal naming how to fit them."""
    prototypes = getattr(unwrap(model), "ood_prototypes", None)
    if prototypes is None or ood_of(getattr(model, "meta", None)) is None:
        raise FashionCNNError("the model has no not-clothing detector; fit one with 'fashion-cnn calibrate RUN_OR_MODEL'")
    return prototypes


def has_detector(model: nn.Module) -> bool:
    return getattr(unwrap(model), "ood_prototypes", None) is not None and ood_of(getattr(model, "meta", None)) is not None


def predict_with_scores(model: nn.Module, images, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities and not-clothing scores from one pass: ``(probs, scores)``; ``scores`` is None for a
    model without a detector. One image (H, W) gives ``(classes,)`` and a 0-d score.

    Example:
        >>> probs, scores = predict_with_scores(model, images[:3])
        >>> probs.shape, scores.shape
        ((3, 10), (3,))
    """
    pixels, single = as_pixels(images, _side(model))
    if not has_detector(model):
        probs = predict_proba(model, pixels, batch_size)
        return (probs[0] if single else probs), None
    logits, feats = logits_and_features(model, pixels, batch_size)
    probs = finite_probabilities(torch.softmax(logits, dim=1).numpy())
    scores = distance(feats, prototypes_of(model).to(feats.device)).numpy()
    return (probs[0], scores[0]) if single else (probs, scores)


def scores_of(model: nn.Module, images, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Not-clothing scores (N,) of images: higher is less like the training images."""
    _, feats = logits_and_features(model, images, batch_size)
    return distance(feats, prototypes_of(model)).numpy()


def in_distribution(scores, meta: dict) -> np.ndarray | None:
    """Which scores are at or under the model's threshold (clothing), or None for a model without a detector."""
    settings = ood_of(meta)
    return None if settings is None or scores is None else np.asarray(scores) <= settings["threshold"]


def fit_detector(
    model: nn.Module,
    train: LabeledImages,
    val: LabeledImages,
    *,
    keep: float = KEEP,
    per_class: int = PROTOTYPES_PER_CLASS,
    seed: int = 0,
) -> dict:
    """Fit the detector: k-means prototypes of each class's training features, and the threshold that keeps
    ``keep`` of the validation images. Sets ``model.ood_prototypes`` and ``model.meta["ood"]`` (saved with the
    model by ``save_model``) and returns the settings.

    Args:
        model: the trained model.
        train: the images the prototypes summarise (the training split).
        val: the images that set the threshold (the validation split; never the test split).
        keep: the share of ``val`` kept as clothing (0.95).
        per_class: k-means prototypes per class (fewer where a class has fewer images: then the images themselves).
        seed: k-means' seed, so the same run gives the same prototypes.

    Example:
        >>> settings = fit_detector(model, train_set, val_set)
        >>> settings["method"], bool(in_distribution(scores_of(model, val_set.images), model.meta).mean() >= 0.95)
        ('knn-prototypes', True)
    """
    from sklearn.cluster import KMeans

    if not 0 < keep <= 1:
        raise FashionCNNError(f"keep must be a share of the validation images above 0 and at most 1, got {keep!r}; 0.95 is usual")
    if len(train) == 0 or len(val) == 0:
        raise FashionCNNError("fitting the not-clothing detector needs training and validation images; none were given")
    _, feats = logits_and_features(model, train.images)
    labels = np.asarray(train.labels)
    prototypes = []
    for c in np.unique(labels):
        rows = feats[torch.from_numpy(labels == c)].numpy().astype(np.float64)
        if len(rows) <= per_class:
            prototypes.append(rows)
            continue
        km = KMeans(per_class, n_init=1, random_state=seed, max_iter=100).fit(rows)
        prototypes.append(km.cluster_centers_)
    bank = F.normalize(torch.from_numpy(np.concatenate(prototypes)).float(), dim=1)
    _, val_feats = logits_and_features(model, val.images)
    val_scores = distance(val_feats, bank).numpy()
    threshold = float(np.quantile(val_scores, keep, method="higher"))
    settings = {
        "method": METHOD,
        "threshold": threshold,
        "keep": keep,
        "fitted_on": {"prototypes": "train", "threshold": "val"},
        "prototypes": int(bank.shape[0]),
        "features": "penultimate + feature map mean + max, each unit length; cosine distance to the nearest prototype",
    }
    target = unwrap(model)
    target.ood_prototypes = bank
    model.meta = {**(getattr(model, "meta", None) or {}), "ood": settings}
    if target is not model:
        target.meta = model.meta
    return settings


def verdict(score: float | None, meta: dict, lang: str = "en") -> str | None:
    """The one line a person reads for an image judged not clothing, or None when it looks like clothing (or the
    model has no detector)."""
    settings = ood_of(meta)
    if settings is None or score is None or score <= settings["threshold"]:
        return None
    numbers = f"{score:.3f} > {settings['threshold']:.3f}"
    if lang == "ko":
        return f"옷처럼 보이지 않습니다 (점수 {numbers})"
    return f"this does not look like clothing (score {numbers})"


def separation(in_scores, out_scores, threshold: float, correct=None) -> dict:
    """How well scores tell in-distribution images (``in_scores``, e.g. the test split) from others (``out_scores``).

    Returns:
        ``auroc`` (the chance a random other image scores higher than a random in-distribution one),
        ``fpr_at_95_tpr`` (the share of the others passing as clothing at the score that keeps 95% of
        ``in_scores``: the usual figure, Hendrycks & Gimpel), ``passed`` (their share at or under the model's own
        ``threshold``), ``kept`` (the in-distribution share under it) and, given ``correct`` (which in-distribution
        images the model classifies right), ``accuracy_kept`` (the accuracy on the kept ones).

    Example:
        >>> r = separation(np.array([0.0, 0.1, 0.2]), np.array([0.15, 0.9]), threshold=0.2)
        >>> round(r["auroc"], 3), r["passed"], r["kept"]
        (0.833, 0.5, 1.0)
    """
    from sklearn.metrics import roc_auc_score

    inside, outside = np.asarray(in_scores, dtype=np.float64), np.asarray(out_scores, dtype=np.float64)
    auroc = roc_auc_score(np.r_[np.zeros(len(inside)), np.ones(len(outside))], np.r_[inside, outside])
    at_95 = np.quantile(inside, 0.95, method="higher")
    kept = inside <= threshold
    result = {
        "images": int(len(outside)),
        "auroc": float(auroc),
        "fpr_at_95_tpr": float((outside <= at_95).mean()),
        "passed": float((outside <= threshold).mean()),
        "kept": float(kept.mean()),
    }
    if correct is not None:
        correct = np.asarray(correct, dtype=bool)
        result["accuracy_kept"] = float(correct[kept].mean()) if kept.any() else float("nan")
    return result
