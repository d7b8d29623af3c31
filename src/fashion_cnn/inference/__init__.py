"""The tutorial's last steps: evaluate a model and predict class probabilities."""

from .predict import evaluate, predict_proba

__all__ = ["evaluate", "predict_proba"]
