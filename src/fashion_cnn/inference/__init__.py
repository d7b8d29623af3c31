"""The tutorial's last steps: evaluate a model and predict class probabilities, with PyTorch or onnxruntime.

predict.py   evaluate (loss, accuracy) and predict_proba in large no-grad batches
engines.py   one interface for every engine: load_classifier(RUN, engine="torch" | "onnx")
onnx.py      OnnxClassifier: an exported .onnx file run by onnxruntime
"""

from .engines import ENGINES, Classifier, load_classifier
from .predict import evaluate, predict_proba

__all__ = ["ENGINES", "Classifier", "evaluate", "load_classifier", "predict_proba"]
