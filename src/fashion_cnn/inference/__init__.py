"""The tutorial's last steps: evaluate a model and predict class probabilities, with PyTorch or onnxruntime.

predict.py   evaluate (loss, accuracy) and predict_proba in large no-grad batches
engines.py   one interface for every engine: load_classifier(RUN, engine="torch" | "onnx")
onnx.py      OnnxClassifier: an exported .onnx file run by onnxruntime
calibration.py  expected calibration error, reliability bins, temperature scaling (calibrate)
ood.py       the not-clothing score: fit_detector, predict_with_scores, scores_of, separation
"""

from .calibration import calibrate, expected_calibration_error
from .engines import ENGINES, Classifier, load_classifier
from .ood import fit_detector, predict_with_scores, scores_of
from .predict import evaluate, predict_proba

__all__ = [
    "ENGINES",
    "Classifier",
    "calibrate",
    "evaluate",
    "expected_calibration_error",
    "fit_detector",
    "load_classifier",
    "predict_proba",
    "predict_with_scores",
    "scores_of",
]
