"""One interface for every way of running a model: ``predict_proba(uint8 images)`` and ``meta``.

    fashion-cnn predict runs/NAME --index 0 --engine torch    # the safetensors model with PyTorch
    fashion-cnn predict runs/NAME --index 0 --engine onnx     # runs/NAME/model.onnx with onnxruntime

Example:
    >>> clf = load_classifier("runs/tutorial", engine="onnx")  # doctest: +SKIP
    >>> clf.predict_proba(images).argmax(1), clf.meta["classes"]
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np
from torch import nn

from ..errors import FashionCNNError
from .predict import EVAL_BATCH, predict_proba

ENGINES = ("torch", "onnx")


class Classifier(Protocol):
    engine: str
    meta: dict

    def predict_proba(self, images, batch_size: int = EVAL_BATCH) -> np.ndarray: ...


class TorchClassifier:
    """A PyTorch model behind the ``Classifier`` interface."""

    engine = "torch"

    def __init__(self, model: nn.Module):
        self.model, self.meta = model, getattr(model, "meta", {})

    def predict_proba(self, images, batch_size: int = EVAL_BATCH) -> np.ndarray:
        return predict_proba(self.model, images, batch_size)


def load_classifier(run_or_model: str | os.PathLike, engine: str = "torch") -> Classifier:
    """Open a run directory or model file with ``engine``.

    Args:
        run_or_model: a run directory (``best.safetensors`` for torch, ``model.onnx`` for onnx) or a file.
        engine: ``torch`` or ``onnx``.
    """
    if engine == "torch":
        from ..models.files import load_model

        return TorchClassifier(load_model(run_or_model))
    if engine == "onnx":
        from ..export.onnx import OnnxClassifier

        return OnnxClassifier(run_or_model)
    raise FashionCNNError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
