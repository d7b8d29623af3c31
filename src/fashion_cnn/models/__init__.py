"""Step 2 of the tutorial: the model, its summary, and model files."""

from . import tutorial_cnn  # noqa: F401  (registers "tutorial-cnn")
from .files import load_model, save_model
from .registry import build_model, model_names, register_model
from .summary import layer_table, summary

__all__ = ["build_model", "layer_table", "load_model", "model_names", "register_model", "save_model", "summary"]
