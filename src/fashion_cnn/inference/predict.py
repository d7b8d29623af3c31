"""Evaluate (loss, accuracy) and predict (class probabilities) in large no-grad batches."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import tensor_of, to_model_input
from ..data.types import LabeledImages
from ..distributed import all_sum
from ..errors import FashionCNNError

#: Images per forward pass in evaluation and prediction. Small enough that a batch's activations stay in the CPU's
#: cache: 2.3–2.7× the images/s of 1,000 per batch for the tutorial's CNN here (AVX2 and AVX-512 alike), with the
#: same logits to the last bit as batches of 1,000 (channels-last convolutions; a few very small batches, e.g. of
#: 1–3 images, round differently in the last bit), so validation metrics did not move when it changed from 1,000.
EVAL_BATCH = 128


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _as_uint8(images) -> torch.Tensor:
    t = tensor_of(images)
    if t.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 pixels 0..255, got {t.dtype}")
    return t.unsqueeze(0) if t.ndim == 2 else t


@torch.inference_mode()
def logits_of(model: nn.Module, images, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """The model's logits for uint8 images (N, H, W) or one image (H, W), on the CPU."""
    x = _as_uint8(images)
    device = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        out = [model(to_model_input(x[i : i + batch_size], device)).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


def predict_proba(model: nn.Module, images, batch_size: int = EVAL_BATCH, *, tta: bool = False) -> np.ndarray:
    """Class probabilities (softmax) for uint8 images: (N, classes), or (classes,) for one image.

    With ``tta=True`` (test-time augmentation) each image is also classified mirrored left-right and the two
    probability vectors are averaged: a model trained with ``--flip`` sees both as the same garment.

    Example:
        >>> probs = predict_proba(model, images[0])
        >>> probs.shape, round(float(probs.sum()), 4)
        ((10,), 1.0)
    """

    def probabilities(x) -> np.ndarray:
        return torch.softmax(logits_of(model, x, batch_size), dim=1).numpy()

    probs = finite_probabilities(with_mirror(probabilities, images) if tta else probabilities(images))
    return probs[0] if np.ndim(images) == 2 else probs


def finite_probabilities(probs: np.ndarray) -> np.ndarray:
    """``probs``, refused with one line where any is NaN or infinite (before a caller prints or sends them).

    Weights can be finite while the arithmetic overflows (a weight near float32's largest value): the logits
    become infinite and softmax NaN. No answer is better than a table of NaN% or a JSON ``NaN``.
    """
    bad = ~np.isfinite(probs)
    if bad.any():
        first = int(np.argwhere(bad)[0][0]) if probs.ndim == 2 else 0
        raise FashionCNNError(
            f"the model gives NaN or infinite probabilities (first for image {first}): its arithmetic overflows, so its "
            "weights are damaged or come from a training that diverged; retrain it or use another model file"
        )
    return probs


def with_mirror(predict, images) -> np.ndarray:
    """Test-time augmentation: the mean of ``predict(images)`` and ``predict`` of the images mirrored left-right.

    Example:
        >>> with_mirror(lambda x: x[..., :1].astype(float), np.array([[[1, 2, 3]]]))   # first column, then last
        array([[[2.]]])
    """
    images = np.asarray(images)
    return (predict(images) + predict(np.ascontiguousarray(images[..., ::-1]))) / 2


def evaluate(
    model: nn.Module, data: LabeledImages, batch_size: int = EVAL_BATCH, *, across_ranks: bool = False, tta: bool = False
) -> dict[str, float]:
    """Mean cross-entropy and accuracy over ``data``, like Keras' ``model.evaluate``.

    With ``across_ranks=True`` (distributed training) ``data`` is this rank's shard and the result is
    over the shards of all ranks together.

    Returns:
        ``{"loss": ..., "accuracy": ...}``
    """
    if tta:  # the loss of the averaged probabilities (one process: the final evaluation, evaluate --tta)
        return evaluate_and_predict(model, data, batch_size, tta=True)[0]
    return _metrics_of_logits(logits_of(model, data.images, batch_size), tensor_of(data.labels), across_ranks)


def evaluate_and_predict(model: nn.Module, data: LabeledImages, batch_size: int = EVAL_BATCH, *, tta: bool = False):
    """``(evaluate(model, data, tta=tta), predict_proba(model, data.images, tta=tta))`` from one pass over ``data``:
    the metrics equal ``evaluate``'s to the last bit, and the probabilities feed ``analyze`` (the report).

    Example:
        >>> metrics, probs = evaluate_and_predict(model, val_set)
        >>> metrics == evaluate(model, val_set), probs.shape == (len(val_set), 10)
        (True, True)
    """
    if tta:
        probs = predict_proba(model, data.images, batch_size, tta=True)
        return metrics_of(probs, np.asarray(data.labels)), probs
    logits = logits_of(model, data.images, batch_size)
    return _metrics_of_logits(logits, tensor_of(data.labels)), torch.softmax(logits, dim=1).numpy()


def _metrics_of_logits(logits: torch.Tensor, labels: torch.Tensor, across_ranks: bool = False) -> dict[str, float]:
    loss_sum = F.cross_entropy(logits, labels, reduction="sum")
    correct = (logits.argmax(1) == labels).sum()
    count = torch.tensor(len(labels))
    if across_ranks:
        loss_sum, correct, count = all_sum(loss_sum, correct, count)
    return {"loss": float(loss_sum / count), "accuracy": float(correct / count)}


def metrics_of(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Cross-entropy and accuracy from probabilities (for engines that return probabilities, e.g. ONNX)."""
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {"loss": float(-np.log(picked).mean()), "accuracy": float((probs.argmax(1) == labels).mean())}
