"""Evaluate (loss, accuracy) and predict (class probabilities) in large no-grad batches."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import as_pixels, tensor_of, to_model_input
from ..data.types import LabeledImages
from ..distributed import all_sum
from ..errors import FashionCNNError
from ..models.metadata import input_side, temperature_of

#: Images per forward pass in evaluation and prediction. Small enough that a batch's activations stay in the CPU's
#: cache: 2.3–2.7× the images/s of 1,000 per batch for the tutorial's CNN here (AVX2 and AVX-512 alike), with the
#: same logits to the last bit as batches of 1,000 (channels-last convolutions; a few very small batches, e.g. of
#: 1–3 images, round differently in the last bit), so validation metrics did not move when it changed from 1,000.
EVAL_BATCH = 128


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _side(model: nn.Module) -> tuple[int, int] | None:
    """The (H, W) the model takes, from its file's metadata or its architecture (28 unless it says); None for a
    module that is not a fashion-cnn model (any size its layers allow)."""
    meta = getattr(model, "meta", None) or {"arch": getattr(model, "arch", None)}
    return (input_side(meta),) * 2 if meta.get("input") or meta.get("arch") else None


@torch.inference_mode()
def logits_of(model: nn.Module, images, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """The model's logits for images (N, H, W) or one (H, W) image (the conventions of ``as_pixels``), on the CPU;
    divided by the model's temperature where it was calibrated (``models.metadata.temperature_of``)."""
    x = as_pixels(images, _side(model))[0]
    device = _device_of(model)
    was_training = model.training
    model.eval()
    try:
        out = [model(to_model_input(x[i : i + batch_size], device)).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    logits = torch.cat(out) if out else torch.empty(0, 0)
    t = temperature_of(getattr(model, "meta", None))
    return logits if t == 1.0 else logits / t


def predict_proba(model: nn.Module, images, batch_size: int = EVAL_BATCH, *, tta: bool = False) -> np.ndarray:
    """Class probabilities (softmax): (N, classes), or (classes,) for one image.

    Images are uint8 pixels 0..255 or float pixels in 0..1 (the tutorial's ``val_scaled``), shaped (N, H, W),
    (N, H, W, 1) or (N, 1, H, W), or one (H, W) or (H, W, 1) image (``data.transforms.as_pixels``).

    With ``tta=True`` (test-time augmentation) each image is also classified mirrored left-right and the two
    probability vectors are averaged: a model trained with ``--flip`` sees both as the same garment.

    Example:
        >>> probs = predict_proba(model, images[0])
        >>> probs.shape, round(float(probs.sum()), 4)
        ((10,), 1.0)
    """

    def probabilities(x) -> np.ndarray:
        return torch.softmax(logits_of(model, x, batch_size), dim=1).numpy()

    pixels, single = as_pixels(images, _side(model))
    probs = finite_probabilities(with_mirror(probabilities, pixels.numpy()) if tta else probabilities(pixels))
    return probs[0] if single else probs


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
