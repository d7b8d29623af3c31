"""Portable copies of a trained model: ONNX (onnxruntime, any language), TorchScript, and Keras.

    fashion-cnn export runs/NAME --format onnx            # → runs/NAME/model.onnx
    fashion-cnn export runs/NAME --format torchscript     # → runs/NAME/model.torchscript.pt
    fashion-cnn export runs/NAME --format keras           # → runs/NAME/model.keras (keras.py: the tutorial's model again)

ONNX and TorchScript take uint8 pixels (N, H, W) and output class probabilities: the ``x / 255`` scaling and
the softmax are inside the exported graph, so no consumer can forget them (the Keras file is the tutorial's
model as Keras holds it: images / 255 in). Class names and the input description
travel with the file (ONNX ``metadata_props``, TorchScript extra file ``fashion_cnn.json``). Running an
ONNX file is inference's job: ``fashion_cnn.inference.onnx.OnnxClassifier``.
"""

from .keras import export_keras
from .onnx import export_onnx
from .torchscript import export_torchscript

__all__ = ["export_keras", "export_onnx", "export_torchscript"]
