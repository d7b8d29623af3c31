"""Step 2 of the tutorial: the model, its summary, and model files.

layers.py       Keras-shaped layers (Conv2D, MaxPooling2D, Flatten in Keras' order, Dense, Dropout)
tutorial_cnn.py the tutorial's CNN, registered as "tutorial-cnn"
stronger.py     past the tutorial: "tutorial-cnn-bn", "compact-cnn", "resnet-small"
registry.py     architectures by name: build_model, register_model
summary.py      model.summary(): the layer table
metadata.py     what a model file records besides its weights (classes, input, dataset)
files.py        safetensors model files: save_model, load_model (never unpickles)
keras_sequential.py   a Keras Sequential of those layers as an architecture, "keras-sequential"
keras_files.py  reading .keras / .h5 files without Keras; keras_import.py: import_keras, a Keras model as a fashion-cnn one
"""

from . import keras_sequential, stronger, tutorial_cnn  # noqa: F401  (register their architectures)
from .files import load_model, save_model
from .registry import build_model, model_names, register_model
from .summary import layer_table, summary

__all__ = ["build_model", "layer_table", "load_model", "model_names", "register_model", "save_model", "summary"]
