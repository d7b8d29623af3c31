"""ONNX export with a dynamic or static batch axis (``fashion_cnn.inference.onnx`` runs the file with onnxruntime).

    fashion-cnn export runs/NAME --format onnx -o model.onnx
    fashion-cnn export runs/NAME --format onnx --batch 1 -o model.b1.onnx    # for OpenCV's dnn and the like
    fashion-cnn predict model.onnx --engine onnx --index 0 --split val

The graph takes ``pixels``, uint8 (batch, 28, 28), and returns ``probabilities``, float32
(batch, classes): the scaling by 1/255 and the softmax are inside it. Class names (English and Korean),
the input description and the full fashion-cnn metadata are in the model's ``metadata_props``. Before the
file is written, onnxruntime's output is compared with PyTorch's on a batch of random images.

The batch axis is dynamic unless ``batch=N`` fixes it at N (metadata ``batch``: ``"dynamic"`` or ``"N"``),
for runtimes that cannot take a dynamic one: OpenCV 4.x's dnn dies with SIGFPE on a dynamic axis and runs
a static one. ``OnnxClassifier`` runs a static file on any number of images, N a run, padding the last.

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
from ..inference.onnx import INPUT, OUTPUT, SCORE, OnnxClassifier, require
from ..inference.ood import has_detector, predict_with_scores
from .graph import check_batch, export_metadata, exportable

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


#: The opsets PyTorch's ONNX exporter writes (asked for an older one, it silently writes 18).
MIN_OPSET = 18


def check_opset(opset: int | None) -> None:
    """Refuse an opset the exporter would not write as asked."""
    if opset is None:
        return
    from torch.onnx._constants import ONNX_MAX_OPSET

    if not (isinstance(opset, int) and MIN_OPSET <= opset <= ONNX_MAX_OPSET):
        raise FashionCNNError(f"--opset must be from {MIN_OPSET} to {ONNX_MAX_OPSET} (what PyTorch's exporter writes), got {opset!r}")


def to_onnx(model: nn.Module, opset: int | None = None, *, batch: int | None = None):
    """The ``onnx.ModelProto`` of ``model`` with its preprocessing, softmax and metadata, not yet checked.

    ``batch``: a static batch size for the graph's input and output (default: a dynamic batch axis).
    """
    check_opset(opset)
    onnx = require("onnx")
    require("onnxscript")
    batch = check_batch(batch)
    scores = has_detector(model)  # the not-clothing score as a second output, computed in the graph
    wrapped, example = exportable(model, batch, scores=scores)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            wrapped,
            (example,),
            dynamo=True,
            opset_version=opset,
            verbose=False,
            input_names=[INPUT],
            output_names=[OUTPUT, SCORE] if scores else [OUTPUT],
            dynamic_shapes=None if batch else ({0: torch.export.Dim("batch")},),
        )
    proto = program.model_proto
    rows = batch or "batch"
    proto.producer_name, proto.doc_string = "fashion-cnn", f"uint8 pixels ({rows}, H, W) -> class probabilities; see metadata_props"
    for key, value in export_metadata(model, batch).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    opset: int | None = None,
    batch: int | None = None,
    check_images: np.ndarray | None = None,
) -> dict:
    """Export ``model`` to an ONNX file (atomically), after checking onnxruntime against PyTorch.

    Args:
        model: a model from ``build_model`` or ``load_model`` (its ``meta`` goes into the file).
        path: the ``.onnx`` file to write.
        opset: the ONNX opset (default: the exporter's recommended one).
        batch: a static batch size (the graph takes exactly ``batch`` images a run), for runtimes that
            cannot take a dynamic batch axis; default ``None``, a dynamic one.
        check_images: uint8 images (N, H, W) for the check (default: 64 random images).

    Returns:
        ``{"path", "opset", "batch", "max_abs_diff"}``: ``batch`` is ``None`` for a dynamic axis;
        ``max_abs_diff`` is the largest difference from PyTorch's probabilities.

    Example:
        >>> result = export_onnx(load_model(run_dir), "model.onnx")
        >>> result["path"], result["max_abs_diff"] < 1e-5
        ('model.onnx', True)
    """
    proto = to_onnx(model, opset, batch=batch)
    data = proto.SerializeToString()
    wrapped, example = exportable(model)
    if check_images is None:
        check_images = np.random.default_rng(0).integers(0, 256, (64, *example.shape[1:]), dtype=np.uint8)
    got, got_scores = OnnxClassifier(data).predict_with_scores(check_images)
    want, want_scores = predict_with_scores(wrapped.model, check_images)  # the deep copy keeps meta and prototypes
    diff = float(np.abs(got - want).max())
    if want_scores is not None:  # the not-clothing score too, where the graph computes one
        diff = max(diff, float(np.abs(got_scores - want_scores).max()))
    if not diff <= TOLERANCE:
        raise FashionCNNError(
            f"the ONNX model's probabilities differ from PyTorch's by {diff:.2e} (more than {TOLERANCE}); nothing was written. Report this with your torch and onnxruntime versions"
        )
    atomic_write_bytes(path, data)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return {"path": str(path), "opset": opset, "batch": batch, "max_abs_diff": diff}
