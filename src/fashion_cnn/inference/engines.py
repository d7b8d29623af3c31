"""One interface for every way of running a model: ``predict_proba(uint8 images)`` and ``meta``.

    fashion-cnn predict runs/NAME --index 0 --engine torch    # the safetensors model with PyTorch
    fashion-cnn predict runs/NAME --index 0 --engine onnx     # runs/NAME/model.onnx with onnxruntime

Example:
    >>> clf = load_classifier(run_dir)                          # or engine="onnx" after exporting
    >>> clf.predict_proba(images).shape, clf.meta["classes"][9]
    ((100, 10), 'Ankle boot')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
from torch import nn

from ..data.transforms import as_pixels
from ..errors import FashionCNNError
from ..models.files import load_model, resolve_model_path
from .onnx import OnnxClassifier  # onnxruntime itself is imported only when an ONNX model is opened
from .ood import predict_with_scores
from .predict import EVAL_BATCH, predict_proba

#: Every way of running a model: the one list the CLI, the service and ``load_classifier`` use.
ENGINES = ("torch", "onnx")


class Classifier(Protocol):
    """What every engine offers: its name, the model file's metadata, and probabilities for uint8 images."""

    engine: str
    meta: dict
    source: str

    def predict_proba(self, images, batch_size: int = EVAL_BATCH) -> np.ndarray: ...

    def predict_with_scores(self, images, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and not-clothing scores (``inference.ood``; None for a model without a detector)."""
        ...


class TorchClassifier:
    """A PyTorch model behind the ``Classifier`` interface."""

    engine = "torch"

    def __init__(self, model: nn.Module, source: str = ""):
        self.model, self.meta, self.source = model, getattr(model, "meta", {}), source

    def predict_proba(self, images, batch_size: int = EVAL_BATCH) -> np.ndarray:
        return predict_proba(self.model, images, batch_size)

    def predict_with_scores(self, images, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray | None]:
        return predict_with_scores(self.model, images, batch_size)


class FlipTTA:
    """Any engine with test-time augmentation: each image's probabilities averaged with its mirror image's.

    Example:
        >>> tta = FlipTTA(TorchClassifier(model))
        >>> bool(np.allclose(tta.predict_proba(images[:4]), tta.predict_proba(images[:4, :, ::-1])))
        True
    """

    def __init__(self, inner: Classifier):
        self.inner, self.engine, self.meta, self.source = inner, inner.engine, inner.meta, inner.source

    def predict_proba(self, images, batch_size: int = EVAL_BATCH) -> np.ndarray:
        return self.predict_with_scores(images, batch_size)[0]

    def predict_with_scores(self, images, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray | None]:
        """The averaged probabilities, and the not-clothing score of each image as given (not of its mirror)."""
        pixels, single = as_pixels(images)  # (N, H, W) first: a mirror of (N, H, W, 1) must flip W, not the channel
        x = pixels.numpy()
        probs, scores = self.inner.predict_with_scores(x, batch_size)
        probs = (probs + self.inner.predict_proba(np.ascontiguousarray(x[..., ::-1]), batch_size)) / 2
        return (probs[0], None if scores is None else scores[0]) if single else (probs, scores)


def engine_for(run_or_model: str | os.PathLike) -> str:
    """The engine a file asks for: ``onnx`` for an ``.onnx`` file, else ``torch`` (a run or a safetensors file)."""
    return "onnx" if Path(run_or_model).suffix.lower() == ".onnx" else "torch"


def load_classifier(
    run_or_model: str | os.PathLike, engine: str | None = None, *, threads: int | None = None, tta: bool = False
) -> Classifier:
    """Open a run directory or model file with ``engine``.

    Args:
        run_or_model: a run directory (``best.safetensors`` for torch, ``model.onnx`` for onnx) or a file.
        engine: ``torch`` or ``onnx``; default: ``onnx`` for an ``.onnx`` file, else ``torch``.
        threads: onnxruntime's threads per call (default: its own choice); torch uses the process's setting.
        tta: average each image's probabilities with its mirror image's (``FlipTTA``).
    """
    engine = engine or engine_for(run_or_model)
    if engine == "torch":
        classifier = TorchClassifier(load_model(run_or_model), str(resolve_model_path(run_or_model)))
    elif engine == "onnx":
        classifier = OnnxClassifier(run_or_model, threads=threads)
    else:
        raise FashionCNNError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    return FlipTTA(classifier) if tta else classifier
