"""Portable copies of a trained model: ONNX (onnxruntime, any language) and TorchScript.

    fashion-cnn export runs/NAME --format onnx            # → runs/NAME/model.onnx
    fashion-cnn export runs/NAME --format torchscript     # → runs/NAME/model.torchscript.pt

Both take uint8 pixels (N, H, W) and output class probabilities: the ``x / 255`` scaling and the softmax
are inside the exported graph, so no consumer can forget them. Class names and the input description
travel with the file (ONNX ``metadata_props``, TorchScript extra file ``fashion_cnn.json``). Running an
ONNX file is inference's job: ``fashion_cnn.inference.onnx.OnnxClassifier``.
"""

from .onnx import export_onnx
from .torchscript import export_torchscript

__all__ = ["export_onnx", "export_torchscript"]
