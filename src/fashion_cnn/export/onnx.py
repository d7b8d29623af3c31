"""ONNX export with a dynamic batch axis (``fashion_cnn.inference.onnx`` runs the file with onnxruntime).

    fashion-cnn export runs/NAME --format onnx -o model.onnx
    fashion-cnn predict model.onnx --engine onnx --index 0 --split val

The graph takes ``pixels``, uint8 (batch, 28, 28), and returns ``probabilities``, float32
(batch, classes): the scaling by 1/255 and the softmax are inside it. Class names (English and Korean),
the input description and the full fashion-cnn metadata are in the model's ``metadata_props``. Before the
file is written, onnxruntime's output is compared with PyTorch's on a batch of random images.

Needs the ``export`` extra: ``pip install 'fashion-cnn[export]'`` (onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import numpy as np
import torch
from torch import nn

from ..errors import FashionCNNError
from ..files import atomic_write_bytes
from ..inference.onnx import INPUT, OUTPUT, OnnxClassifier, require
from ..inference.predict import predict_proba
from .graph import export_metadata, exportable

#: The largest difference from PyTorch's probabilities that the export check accepts.
TOLERANCE = 1e-5


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs optional-dependency notes (torchvision ops) and deprecation warnings: not the user's concern."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_onnx(model: nn.Module, opset: int | None = None):
    """The ``onnx.ModelProto`` of ``model`` with its preprocessing, softmax and metadata, not yet checked."""
    onnx = require("onnx")
    require("onnxscript")
    wrapped, example = exportable(model)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            wrapped,
            (example,),
            dynamo=True,
            opset_version=opset,
            verbose=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    proto = program.model_proto
    proto.producer_name, proto.doc_string = "fashion-cnn", "uint8 pixels (batch, H, W) -> class probabilities; see metadata_props"
    for key, value in export_metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int | None = None, check_images: np.ndarray | None = None) -> dict:
    """Export ``model`` to an ONNX file (atomically), after checking onnxruntime against PyTorch.

    Args:
        model: a model from ``build_model`` or ``load_model`` (its ``meta`` goes into the file).
        path: the ``.onnx`` file to write.
        opset: the ONNX opset (default: the exporter's recommended one).
        check_images: uint8 images (N, H, W) for the check (default: 64 random images).

    Returns:
        ``{"path", "opset", "max_abs_diff"}``: the largest difference from PyTorch's probabilities.

    Example:
        >>> result = export_onnx(load_model(run_dir), "model.onnx")
        >>> result["path"], result["max_abs_diff"] < 1e-5
        ('model.onnx', True)
    """
    proto = to_onnx(model, opset)
    data = proto.SerializeToString()
    wrapped, example = exportable(model)
    if check_images is None:
        check_images = np.random.default_rng(0).integers(0, 256, (64, *example.shape[1:]), dtype=np.uint8)
    got = OnnxClassifier(data).predict_proba(check_images)
    diff = float(np.abs(got - predict_proba(wrapped.model, check_images)).max())
    if not diff <= TOLERANCE:
        raise FashionCNNError(
            f"the ONNX model's probabilities differ from PyTorch's by {diff:.2e} (more than {TOLERANCE}); nothing was written. Report this with your torch and onnxruntime versions"
        )
    atomic_write_bytes(path, data)
    return {"path": str(path), "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), "max_abs_diff": diff}
