"""int8 ONNX: static quantisation with onnxruntime, calibrated on the model's own training images.

    fashion-cnn export runs/NAME --format onnx --int8 --data-dir ../shared/data/fashion-mnist
    fashion-cnn predict runs/NAME/model.int8.onnx --engine onnx --index 0 --split val

Convolutions and dense layers run in int8 (QDQ format, per-channel int8 weights, uint8 activations whose
ranges come from ``calibration`` images); the uint8 input, scaling and softmax stay as in the fp32 export,
so ``OnnxClassifier`` runs either file the same way. On CPUs with VNNI the int8 kernels are the fast path.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import FashionCNNError
from ..files import atomic_write_bytes
from ..inference.onnx import INPUT

CALIBRATION_BATCH = 100


def quantize_onnx(fp32: bytes, path: str | os.PathLike, calibration: np.ndarray) -> dict:
    """Write the int8 version of the fp32 ONNX model ``fp32`` (serialized bytes) to ``path``, atomically.

    Args:
        fp32: the exported fp32 model, as from ``to_onnx(model).SerializeToString()``.
        path: the ``.onnx`` file to write.
        calibration: uint8 images (N, H, W) from the training data, to measure activation ranges.

    Returns:
        ``{"path", "calibration_images"}``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if len(calibration) == 0:
        raise FashionCNNError("int8 quantisation needs calibration images; pass --data-dir with the training data")

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // CALIBRATION_BATCH)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: np.ascontiguousarray(batch)}

    root = logging.getLogger()  # the quantizer logs a pre-processing hint at WARNING on the root logger
    level = root.level
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        root.setLevel(logging.ERROR)
        try:
            quantize_static(
                str(src),
                str(dst),
                Batches(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv", "MatMul", "Gemm"],
            )
        finally:
            root.setLevel(level)
        model = onnx.load(str(dst))
    original = onnx.load_from_string(fp32)
    del model.metadata_props[:]
    model.metadata_props.extend(original.metadata_props)  # classes, normalisation, fashion-cnn metadata
    entry = model.metadata_props.add()
    entry.key, entry.value = "quantization", f"int8 static (QDQ, per-channel weights), calibrated on {len(calibration)} training images"
    atomic_write_bytes(path, model.SerializeToString())
    return {"path": str(path), "calibration_images": int(len(calibration))}
