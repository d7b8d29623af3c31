"""Run an exported ONNX model with onnxruntime: the same ``predict_proba`` and ``meta`` as the PyTorch model.

    fashion-cnn predict runs/NAME --index 0 --split val --engine onnx     # runs/NAME/model.onnx
    fashion-cnn evaluate runs/NAME/model.int8.onnx --engine onnx

A file with a static batch axis (``fashion-cnn export --batch N``) runs N images a run: the last run is
padded with blank images whose rows are dropped, so any number of images gives as many rows.

Needs the ``export`` extra: ``pip install 'fashion-cnn[export]'`` (onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..data.transforms import as_pixels
from ..errors import FashionCNNError, first_line
from ..models.metadata import num_classes, ood_of
from ..rundir import ONNX
from .predict import finite_probabilities

#: The graph's input and output names (what ``fashion_cnn.export`` writes); ``SCORE``, the not-clothing score
#: (``inference.ood``), only for a model with a detector.
INPUT, OUTPUT, SCORE = "pixels", "probabilities", "ood_score"
BATCH = 1000


def require(module: str):
    """Import an optional package of the ``export`` extra, or say how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise FashionCNNError(f"ONNX needs the '{module}' package; install the export extra: pip install 'fashion-cnn[export]'") from None


class OnnxClassifier:
    """An exported model run by onnxruntime, with the same ``predict_proba`` and ``meta`` as the PyTorch path.

    Args:
        source: a ``.onnx`` file, a run directory (its ``model.onnx``), or the serialized model as bytes.
        threads: onnxruntime's intra-op threads (default: its own choice).

    Attributes:
        batch: the file's static batch size, or ``None`` where its batch axis is dynamic.

    Example:
        >>> from fashion_cnn.export.onnx import export_onnx
        >>> _ = export_onnx(model, tmp / "model.onnx")
        >>> clf = OnnxClassifier(tmp / "model.onnx")
        >>> bool((clf.predict_proba(images).argmax(1) == predict_proba(model, images).argmax(1)).all())
        True
    """

    engine = "onnx"

    def __init__(self, source: str | os.PathLike | bytes, threads: int | None = None):
        ort = require("onnxruntime")
        if not isinstance(source, bytes):
            source = resolve_onnx_path(source)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        if threads:
            options.intra_op_num_threads = threads
        where = "the exported model" if isinstance(source, bytes) else source
        self.source = "" if isinstance(source, bytes) else str(source)
        try:
            self.session = ort.InferenceSession(
                source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own (InvalidProtobuf, Fail, ...) for any unreadable file
            first = first_line(e)
            raise FashionCNNError(
                f"{where} is not a readable ONNX model ({first}); export one with 'fashion-cnn export RUN --format onnx'"
            ) from None
        props = self.session.get_modelmeta().custom_metadata_map
        inputs = self.session.get_inputs()
        if "fashion_cnn" not in props or len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or len(inputs[0].shape) != 3:
            raise FashionCNNError(
                f"{where} is an ONNX model but not one exported by fashion-cnn (uint8 pixels in, probabilities out); export one with 'fashion-cnn export RUN --format onnx'"
            )
        try:
            self.meta = json.loads(props["fashion_cnn"])
        except ValueError:
            raise FashionCNNError(f"{where} has unreadable fashion-cnn metadata; export the model again") from None
        self.input_name, self.image_shape = inputs[0].name, tuple(inputs[0].shape[1:])
        rows = inputs[0].shape[0]  # an int for a static batch axis; a name (or None) for a dynamic one
        self.batch = rows if isinstance(rows, int) and rows > 0 else None
        outputs = [o.name for o in self.session.get_outputs()]
        self.outputs = [OUTPUT, SCORE] if SCORE in outputs and ood_of(self.meta) else [OUTPUT]

    def predict_proba(self, images, batch_size: int = BATCH) -> np.ndarray:
        """Class probabilities: (N, classes), or (classes,) for one image (the conventions of ``as_pixels``).

        ``batch_size``: images a run; a static-batch file runs its own batch size instead.
        """
        return self.predict_with_scores(images, batch_size)[0]

    def predict_with_scores(self, images, batch_size: int = BATCH) -> tuple[np.ndarray, np.ndarray | None]:
        """``(probabilities, not-clothing scores)`` as ``inference.ood.predict_with_scores``: the scores from the
        graph's ``ood_score`` output, None for a file without one."""
        pixels, single = as_pixels(images, self.image_shape)
        x = pixels.numpy()
        step = self.batch or batch_size
        runs = [self._run(x[i : i + step]) for i in range(0, len(x), step)]
        empty = np.empty((0, num_classes(self.meta)), np.float32)
        probs = finite_probabilities(np.concatenate([r[0] for r in runs]) if runs else empty)
        scores = None
        if len(self.outputs) == 2:
            scores = np.concatenate([r[1] for r in runs]) if runs else np.empty(0, np.float32)
        return (probs[0], None if scores is None else scores[0]) if single else (probs, scores)

    def _run(self, chunk: np.ndarray) -> list[np.ndarray]:
        """One session run; a short chunk for a static-batch file is padded with blank images, their rows dropped."""
        n = len(chunk)
        if self.batch is not None and n < self.batch:
            chunk = np.concatenate([chunk, np.zeros((self.batch - n, *chunk.shape[1:]), np.uint8)])
        return [out[:n] for out in self.session.run(self.outputs, {self.input_name: np.ascontiguousarray(chunk)})]


def resolve_onnx_path(run_or_model: str | os.PathLike) -> Path:
    """A run directory means its ``model.onnx``; anything else is taken as the ONNX file."""
    path = Path(run_or_model)
    if path.is_dir():
        if not (path / ONNX).is_file():
            raise FashionCNNError(f"{path} has no {ONNX}; make it with 'fashion-cnn export {path} --format onnx'")
        return path / ONNX
    if not path.is_file():
        raise FashionCNNError(f"{path} does not exist; pass a run directory with {ONNX} or an .onnx file")
    return path
