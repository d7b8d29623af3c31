"""Keras export: a fashion-cnn model as a ``.keras`` file, back to the notebook it came from.

    fashion-cnn export runs/NAME --format keras                  # → runs/NAME/model.keras
    fashion-cnn export model.safetensors --format keras -o best-cnn-model.keras

    model = keras.saving.load_model("best-cnn-model.keras")      # in the notebook (Keras 3, any backend)
    model.predict(x_test.reshape(-1, 28, 28, 1) / 255.0)

Unlike the ONNX and TorchScript exports (uint8 pixels in, probabilities out), this is the model as the tutorial
has it: images / 255 of shape (batch, height, width, 1) in, the output layer's activation out (softmax
probabilities for the tutorial's model; a model imported with a leading ``Rescaling`` takes the pixels
themselves, as it did). ``tutorial-cnn`` and ``keras-sequential`` models can be exported. The file is Keras 3's
format (a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``), written without Keras (JSON and
h5py), and checked before it is renamed into place: read back by fashion-cnn's own Keras importer it must give
the model's probabilities within 1e-5. ``metadata.json`` also carries the class names.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import torch
from torch import nn

from ..errors import FashionCNNError
from ..files import atomic_path
from ..models.files import unwrap
from ..models.keras_files import read_keras_file
from ..models.keras_import import model_from_keras
from ..models.keras_sequential import architecture_layers, keras_names, to_keras
from ..models.metadata import temperature_of
from ..version import __version__
from .graph import PixelsToProbabilities, exportable

TOLERANCE = 1e-5
#: Settings Keras writes for every layer of these types that the layer list leaves implicit.
_IMPLICIT = {
    "Conv2D": {"data_format": "channels_last", "groups": 1},
    "MaxPooling2D": {"data_format": "channels_last"},
    "AveragePooling2D": {"data_format": "channels_last"},
    "GlobalAveragePooling2D": {"data_format": "channels_last", "keepdims": False},
    "GlobalMaxPooling2D": {"data_format": "channels_last", "keepdims": False},
    "Flatten": {"data_format": "channels_last"},
}


def export_keras(model: nn.Module, path: str | os.PathLike) -> dict:
    """Write ``model`` as a Keras 3 ``.keras`` file atomically, after checking it predicts the same.

    Returns:
        ``{"path", "max_abs_diff"}``: the largest difference between the file's probabilities (as read back)
        and the model's.

    Example:
        >>> export_keras(model, "cnn.keras")["max_abs_diff"] < 1e-5
        True
        >>> import zipfile; sorted(zipfile.ZipFile("cnn.keras").namelist())
        ['config.json', 'metadata.json', 'model.weights.h5']
    """
    data = keras_bytes(model)
    wrapped, example = exportable(model)
    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (64, *example.shape[1:]), dtype=np.uint8))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        back = PixelsToProbabilities(model_from_keras(read_keras_file(tmp)))
        with torch.no_grad():
            diff = float((back(pixels) - wrapped(pixels)).abs().max())
        if not diff <= TOLERANCE:
            raise FashionCNNError(f"the Keras file differs from the model by {diff:.2e}; nothing was written")
    return {"path": str(path), "max_abs_diff": diff}


def keras_bytes(model: nn.Module) -> bytes:
    """The ``.keras`` file of ``model``: Keras 3's zip, its members in Keras' order with a fixed date, so the
    same model always gives the same bytes."""
    arch = getattr(unwrap(model), "arch", None)
    if not isinstance(arch, dict):
        raise FashionCNNError(
            "this model was not made by fashion_cnn.build_model, so its layers are unknown; build it with build_model(name)"
        )
    layers, side, channels = architecture_layers(arch)
    names = keras_names(layers)
    weights = to_keras(layers, unwrap(model).state_dict())
    temperature = temperature_of(getattr(unwrap(model), "meta", None))
    if temperature != 1.0:  # a calibrated model: softmax((Wx + b) / T) is the last Dense with W / T and b / T
        last = max(i for i, arrays in enumerate(weights) if arrays)
        weights[last] = [(np.asarray(a, np.float64) / temperature).astype(np.float32) for a in weights[last]]
    entries = [
        _entry("InputLayer", {"batch_shape": [None, side, side, channels], "dtype": "float32", "sparse": False, "name": "input_layer"})
    ]
    for name, layer in zip(names, layers):
        settings = {k: v for k, v in layer.items() if k != "type"}
        entries.append(
            _entry(layer["type"], {"name": name, "trainable": True, "dtype": "float32", **settings, **_IMPLICIT.get(layer["type"], {})})
        )
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "dtype": "float32", "layers": entries},
        "registered_name": None,
        "build_config": {"input_shape": [None, side, side, channels]},
    }
    meta = getattr(model, "meta", {})
    metadata = {
        "keras_version": "3",
        "saved_by": f"fashion-cnn {__version__}",
        "classes": meta.get("classes", []),
        "classes_ko": meta.get("classes_ko", []),
        "input": f"(batch, {side}, {side}, {channels}) float32: "
        + ("the pixels, 0..255" if layers[0]["type"] == "Rescaling" else "the pixels / 255, as the tutorial feeds them"),
    }
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for name, data in (
            ("metadata.json", json.dumps(metadata, ensure_ascii=False).encode()),
            ("config.json", json.dumps(config).encode()),
            ("model.weights.h5", _weights_h5(names, weights)),
        ):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return archive.getvalue()


def _entry(kind: str, settings: dict) -> dict:
    return {"module": "keras.layers", "class_name": kind, "config": settings, "registered_name": None}


def _weights_h5(names: list[str], weights: list[list[np.ndarray]]) -> bytes:
    """Keras 3's weights file: ``layers/<name>/vars/<i>`` for each layer, in Keras' variable order."""
    try:
        import h5py
    except ImportError:
        raise FashionCNNError("writing Keras files needs h5py, which is not installed: pip install 'fashion-cnn[keras]'") from None
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for name, arrays in zip(names, weights):
            group = h5.create_group(f"layers/{name}/vars")
            group.attrs["name"] = name
            for i, array in enumerate(arrays):
                group.create_dataset(str(i), data=np.asarray(array, dtype=np.float32))
        h5.create_group("vars").attrs["name"] = "sequential"
    return buffer.getvalue()
