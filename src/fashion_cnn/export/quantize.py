"""int8 ONNX: static quantisation with onnxruntime, calibrated on the model's own training images.

    fashion-cnn export runs/NAME --format onnx --int8 --data-dir ../shared/data/fashion-mnist
    fashion-cnn predict runs/NAME/model.int8.onnx --engine onnx --index 0 --split val

Convolutions and dense layers run in int8 (QDQ format, per-channel int8 weights, uint8 activations whose
ranges come from ``calibration`` images); the uint8 input, scaling and softmax stay as in the fp32 export,
so ``OnnxClassifier`` runs either file the same way. On CPUs with VNNI the int8 kernels are the fast path.

Weights are 7-bit (``reduce_range=True``, values in [-64, 64]). onnxruntime's x86 U8S8 kernels without
VNNI (AVX2's ``vpmaddubsw``) add two uint8×int8 products into a saturating int16: with 8-bit weights
255·127·2 overflows it, and the same file then gives different probabilities there (by up to 0.15 on
Fashion-MNIST, labels changing) than on VNNI CPUs, with optimisations off, or in ONNX's reference
evaluator. With 7-bit weights 255·64·2 = 32,640 fits, so every CPU computes the same thing.
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
#: The largest |int8 weight| that x86 U8S8 kernels without VNNI accumulate without int16 saturation (2·255·64 ≤ 32767).
WEIGHT_LIMIT = 64


def quantize_onnx(fp32: bytes, path: str | os.PathLike, calibration: np.ndarray) -> dict:
    """Write the int8 version of the fp32 ONNX model ``fp32`` (serialized bytes) to ``path``, atomically.

    Args:
        fp32: the exported fp32 model, as from ``to_onnx(model).SerializeToString()`` (its batch axis,
            dynamic or static, is kept).
        path: the ``.onnx`` file to write.
        calibration: uint8 images (N, H, W) from the training data, to measure activation ranges.

    Returns:
        ``{"path", "calibration_images", "reduce_range", "batch"}``: ``batch`` is ``None`` for a dynamic axis.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if len(calibration) == 0:
        raise FashionCNNError("int8 quantisation needs calibration images; pass --data-dir with the training data")
    original = onnx.load_from_string(fp32)
    rows = original.graph.input[0].type.tensor_type.shape.dim[0]
    batch = rows.dim_value if rows.HasField("dim_value") else None
    if batch:  # a static batch axis takes exactly `batch` images a run: wrap around to fill the last (min/max unchanged)
        batches = [calibration[np.arange(i, i + batch) % len(calibration)] for i in range(0, len(calibration), batch)]
    else:
        batches = np.array_split(calibration, max(1, len(calibration) // CALIBRATION_BATCH))

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

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
                reduce_range=True,  # 7-bit weights: right on x86 CPUs without VNNI too (see the module's docstring)
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                nodes_to_exclude=_score_nodes(original),
            )
        finally:
            root.setLevel(level)
        model = onnx.load(str(dst))
    _check_weights(model)
    del model.metadata_props[:]
    model.metadata_props.extend(original.metadata_props)  # classes, normalisation, batch, fashion-cnn metadata
    entry = model.metadata_props.add()
    entry.key, entry.value = "quantization", quantization_note(len(calibration))
    atomic_write_bytes(path, model.SerializeToString())
    return {"path": str(path), "calibration_images": int(len(calibration)), "reduce_range": True, "batch": batch}


def _score_nodes(model) -> list[str]:
    """The not-clothing score's comparison with the prototypes (``inference.ood``), kept in float: a cosine
    distance of 0.08 is the threshold, finer than int8 steps of the similarities would resolve."""
    from ..inference.onnx import SCORE

    if SCORE not in [o.name for o in model.graph.output]:
        return []
    constants = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and any(i in constants for i in n.input)]


def quantization_note(calibration_images: int) -> str:
    """The ``quantization`` metadata entry: how the file was quantised, and why its weights are 7-bit."""
    return (
        f"int8 static (QDQ; uint8 activations, MinMax-calibrated on {calibration_images} training images; "
        f"per-channel symmetric int8 weights with reduce_range=True, i.e. 7-bit, in [-{WEIGHT_LIMIT}, {WEIGHT_LIMIT}]: "
        "onnxruntime's x86 U8S8 kernels on CPUs without VNNI (AVX2 vpmaddubsw) add uint8*int8 products in pairs "
        "into saturating int16, which full 8-bit weights overflow; 7-bit weights cannot, so every CPU gives the same probabilities)"
    )


def _check_weights(model) -> None:
    """Every int8 weight within ±WEIGHT_LIMIT, whatever the CPU: refuse to write a file that would overflow without VNNI."""
    from onnx import TensorProto, numpy_helper

    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.INT8:
            largest = int(np.abs(numpy_helper.to_array(tensor).astype(np.int16)).max(initial=0))
            if largest > WEIGHT_LIMIT:
                raise FashionCNNError(
                    f"the quantised weight {tensor.name} reaches {largest}, beyond the 7-bit ±{WEIGHT_LIMIT} that CPUs without VNNI compute exactly; nothing was written. Report this with your onnxruntime version"
                )
