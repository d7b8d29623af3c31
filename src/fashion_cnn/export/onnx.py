"""ONNX export with a dynamic batch axis, and ``OnnxClassifier`` to run the file with onnxruntime.

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
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import FashionCNNError, first_line
from ..files import atomic_write_bytes
from .graph import INPUT, OUTPUT, exportable, export_metadata

#: The largest difference from PyTorch's probabilities that the export check accepts.
TOLERANCE = 1e-5
DEFAULT_NAME = "model.onnx"
BATCH = 1000


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise FashionCNNError(f"ONNX needs the '{module}' package; install the export extra: pip install 'fashion-cnn[export]'") from None


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
    onnx = _require("onnx")
    _require("onnxscript")
    wrapped, example = exportable(model)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            wrapped, (example,), dynamo=True, opset_version=opset, verbose=False,
            input_names=[INPUT], output_names=[OUTPUT],
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
        >>> export_onnx(load_model("runs/tutorial"), "model.onnx")  # doctest: +SKIP
        {'path': 'model.onnx', 'opset': 20, 'max_abs_diff': 2.9802322e-08}
    """
    from ..inference.predict import predict_proba

    proto = to_onnx(model, opset)
    data = proto.SerializeToString()
    wrapped, example = exportable(model)
    if check_images is None:
        check_images = np.random.default_rng(0).integers(0, 256, (64, *example.shape[1:]), dtype=np.uint8)
    got = OnnxClassifier(data).predict_proba(check_images)
    diff = float(np.abs(got - predict_proba(wrapped.model, check_images)).max())
    if not diff <= TOLERANCE:
        raise FashionCNNError(f"the ONNX model's probabilities differ from PyTorch's by {diff:.2e} (more than {TOLERANCE}); nothing was written. Report this with your torch and onnxruntime versions")
    atomic_write_bytes(path, data)
    return {"path": str(path), "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), "max_abs_diff": diff}


class OnnxClassifier:
    """An exported model run by onnxruntime, with the same ``predict_proba`` and ``meta`` as the PyTorch path.

    Args:
        source: a ``.onnx`` file, a run directory (its ``model.onnx``), or the serialized model as bytes.
        threads: onnxruntime's intra-op threads (default: its own choice).

    Example:
        >>> clf = OnnxClassifier("runs/tutorial/model.onnx")  # doctest: +SKIP
        >>> clf.predict_proba(images).argmax(1)   # uint8 (N, 28, 28) → labels
    """

    engine = "onnx"

    def __init__(self, source: str | os.PathLike | bytes, threads: int | None = None):
        ort = _require("onnxruntime")
        if not isinstance(source, bytes):
            source = resolve_onnx_path(source)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        if threads:
            options.intra_op_num_threads = threads
        where = "the exported model" if isinstance(source, bytes) else source
        try:
            self.session = ort.InferenceSession(source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own (InvalidProtobuf, Fail, ...) for any unreadable file
            first = first_line(e)
            raise FashionCNNError(f"{where} is not a readable ONNX model ({first}); export one with 'fashion-cnn export RUN --format onnx'") from None
        props = self.session.get_modelmeta().custom_metadata_map
        inputs = self.session.get_inputs()
        if "fashion_cnn" not in props or len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or len(inputs[0].shape) != 3:
            raise FashionCNNError(f"{where} is an ONNX model but not one exported by fashion-cnn (uint8 pixels in, probabilities out); export one with 'fashion-cnn export RUN --format onnx'")
        try:
            self.meta = json.loads(props["fashion_cnn"])
        except ValueError:
            raise FashionCNNError(f"{where} has unreadable fashion-cnn metadata; export the model again") from None
        self.input_name, self.image_shape = inputs[0].name, tuple(inputs[0].shape[1:])

    def predict_proba(self, images, batch_size: int = BATCH) -> np.ndarray:
        """Class probabilities for uint8 images: (N, classes), or (classes,) for one (H, W) image."""
        x = np.asarray(images)
        if x.dtype != np.uint8:
            raise TypeError(f"images must be uint8 pixels 0..255, got {x.dtype}")
        single = x.ndim == 2
        x = x[None] if single else x
        if x.ndim != 3 or tuple(x.shape[1:]) != self.image_shape:
            raise FashionCNNError(f"images of shape {tuple(x.shape[1:]) if x.ndim == 3 else x.shape} given to a model that takes {self.image_shape}; resize them first")
        out = [self.session.run([OUTPUT], {self.input_name: np.ascontiguousarray(x[i : i + batch_size])})[0] for i in range(0, len(x), batch_size)]
        probs = np.concatenate(out) if out else np.empty((0, len(self.meta.get("classes", []))), np.float32)
        return probs[0] if single else probs


def resolve_onnx_path(run_or_model: str | os.PathLike) -> Path:
    """A run directory means its ``model.onnx``; anything else is taken as the ONNX file."""
    path = Path(run_or_model)
    if path.is_dir():
        if not (path / DEFAULT_NAME).is_file():
            raise FashionCNNError(f"{path} has no {DEFAULT_NAME}; make it with 'fashion-cnn export {path} --format onnx'")
        return path / DEFAULT_NAME
    if not path.is_file():
        raise FashionCNNError(f"{path} does not exist; pass a run directory with {DEFAULT_NAME} or an .onnx file")
    return path
