"""Bring a Keras model: a ``Sequential`` saved by Keras, as a fashion-cnn model.

    fashion-cnn import best-cnn-model.keras                    # → best-cnn-model.safetensors
    fashion-cnn import best-cnn-model.h5 -o cnn.safetensors --dataset fashion-mnist

The file is read by ``keras_files`` (no Keras or TensorFlow needed); each layer of its ``Sequential`` is mapped
onto the layer list of ``keras_sequential``, setting by setting: the tutorial's model becomes ``tutorial-cnn``,
any other Sequential of the supported layers ``keras-sequential``. A layer or setting that would change the
predictions and has no exact counterpart here (a ``BatchNormalization``, a ``Lambda``, ``channels_first``, a
custom activation, mixed precision...) is refused by name; a setting that only matters to training
(initialisers, regularisers, constraints) is ignored.

The model takes fashion-cnn's input, pixels / 255, which is what the tutorial feeds its Keras model; a Keras
model that starts with ``Rescaling`` gets the pixels themselves there, as it did in Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.registry import get_spec
from ..errors import FashionCNNError
from .files import check_tensors
from .keras_files import KerasFile, read_keras_file
from .keras_sequential import (
    HIDDEN_ACTIVATIONS,
    LAYER_TYPES,
    architecture_for,
    check_layers,
    from_keras,
    keras_names,
    keras_weight_shapes,
    normalize,
)
from .metadata import dataset_meta
from .registry import build_model

#: The Keras layers that map onto fashion-cnn's (InputLayer only states the input's shape).
SUPPORTED = ("InputLayer", *LAYER_TYPES)
#: Settings that matter only to training (or are checked separately, as dtype): ignored when mapping.
TRAINING_ONLY = {
    "name",
    "trainable",
    "dtype",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "seed",
    "noise_shape",
    "batch_input_shape",
    "batch_shape",
    "input_shape",
    "lora_alpha",
}
#: Settings that must have exactly these values (Keras' defaults) to be mapped.
REQUIRED = {
    "data_format": (None, "channels_last"),
    "groups": (None, 1),
    "keepdims": (None, False),
    "lora_rank": (None,),
    "quantization_config": (None,),
}


def import_keras(path: str | os.PathLike, dataset: str = "fashion-mnist") -> nn.Module:
    """Read a Keras ``.keras`` or ``.h5`` model file into a fashion-cnn model (no Keras needed).

    Args:
        path: the file ``model.save(...)`` wrote.
        dataset: what it was trained on, for the class names (``fashion-mnist``, ``mnist``, ``kmnist`` or
            ``folder:PATH``); it must have as many classes as the model has outputs.

    Returns:
        The model in eval mode, carrying ``arch`` and ``meta`` (classes, dataset, input, and ``source`` /
        ``keras``: the file and the Keras version that saved it): ``save_model(path, model)`` writes it.

    Example:
        >>> from fashion_cnn.export.keras import export_keras
        >>> _ = export_keras(model, "cnn.keras")
        >>> back = import_keras("cnn.keras")
        >>> back.arch, back.meta["source"]
        ({'name': 'tutorial-cnn', 'kwargs': {}}, 'imported from Keras 3 file cnn.keras')
        >>> bool(np.abs(predict_proba(back, images) - predict_proba(model, images)).max() < 1e-6)
        True
    """
    classes = dataset_meta(get_spec(dataset))["classes"]  # an unknown dataset is refused before the file is read
    keras = read_keras_file(path)
    model = model_from_keras(keras)
    side = model.arch["kwargs"].get("image_size", 28)
    outputs = [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
    if len(classes) != outputs:
        raise FashionCNNError(
            f"the Keras model has {outputs} outputs but {dataset} has {len(classes)} classes; pass --dataset with the dataset it was trained on"
        )
    meta = dataset_meta(get_spec(dataset), (side, side))
    meta["source"] = f"imported from Keras {keras.keras_version or '(version not recorded)'} file {keras.path.name}"
    meta["keras"] = {"file": keras.path.name, "format": keras.format, "keras_version": keras.keras_version}
    model.meta = {**meta, "arch": model.arch}
    return model


def model_from_keras(keras: KerasFile) -> nn.Module:
    """The fashion-cnn model (eval mode, no metadata) holding a read Keras file's layers and weights."""
    layers, names, side = keras_layers(keras)
    labels = [f"{keras.path}: model.layers[{i}] {layer['type']} ({_name(name)})" for i, (layer, name) in enumerate(zip(layers, names))]
    check_layers(layers, side, labels=labels)
    arch = architecture_for(layers, side)
    weights = _weights(keras, layers, names, side)
    bad = [name for name, arrays in zip(names, weights) if any(not np.isfinite(a).all() for a in arrays)]
    if bad:
        raise FashionCNNError(
            f"{keras.path} holds NaN or infinite weights (layer {bad[0]}), so every prediction would be NaN; it comes from a training that diverged"
        )
    largest = float(np.finfo(np.float32).max)
    huge = [(name, float(np.abs(a).max())) for name, arrays in zip(names, weights) for a in arrays if a.size and np.abs(a).max() > largest]
    if huge:
        raise FashionCNNError(
            f"{keras.path}: layer {huge[0][0]} holds a weight of {huge[0][1]:.3g}, beyond float32's {largest:.3g}, "
            "so it would become infinite in fashion-cnn's float32 model; it comes from a training that diverged"
        )
    with torch.random.fork_rng(devices=[]):  # importing must not move a seeded experiment's RNG
        model = build_model(arch["name"], **arch["kwargs"])
    state = from_keras(layers, weights)
    check_tensors(keras.path, model.state_dict(), state)
    model.load_state_dict(state)
    return model.eval()


def keras_layers(keras: KerasFile) -> tuple[list[dict], list[str], int]:
    """The file's Sequential as (fashion-cnn's layer list, each layer's Keras name, the image side), or a
    refusal naming the first layer or setting that cannot be mapped exactly."""
    config = keras.config
    kind = config.get("class_name")
    if kind != "Sequential":
        raise FashionCNNError(
            f"{keras.path} holds a {_text(kind)} model; fashion-cnn imports Keras Sequential models (keras.Sequential([...])): rebuild it as one and save it again"
        )
    inner = config.get("config")
    entries = inner.get("layers") if isinstance(inner, dict) else inner  # Keras 2.2 and before: the list itself
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FashionCNNError(f"{keras.path} has a Sequential config without a list of layers; the file is damaged, save the model again")
    shape = None
    layers, names = [], []
    for entry in entries:
        where = f"model.layers[{len(layers)}]"
        kind, settings = entry.get("class_name"), entry.get("config")
        if not isinstance(settings, dict):
            raise FashionCNNError(f"{keras.path}: {where} has no config; the file is damaged, save the model again")
        label = f"{where} {_name(kind)} ({_name(settings.get('name'))})"
        _check_origin(keras.path, label, entry, kind)
        if shape is None:
            shape = settings.get("batch_shape") or settings.get("batch_input_shape")
        if kind == "InputLayer":
            _check_input(keras.path, label, settings)
            continue
        layers.append(_map_layer(keras.path, label, kind, settings))
        names.append(str(settings.get("name")))
    if not layers:
        raise FashionCNNError(f"{keras.path} has a Sequential without layers; there is nothing to import")
    for holder in (config, inner if isinstance(inner, dict) else {}, entries[0]):
        if shape is None and isinstance(holder.get("build_config"), dict):
            shape = holder["build_config"].get("input_shape")
    return layers, names, _input_side(keras.path, shape)


def _check_origin(path: Path, label: str, entry: dict, kind) -> None:
    """Refuse layers that carry code or come from outside Keras, naming what to do instead."""
    if kind == "Lambda":
        raise FashionCNNError(
            f"{path}: {label} is a Lambda layer, which holds Python code; fashion-cnn never runs code from a file: "
            "replace it with built-in layers and save the model again"
        )
    module, registered = entry.get("module"), entry.get("registered_name")
    custom = (module is not None and not str(module).startswith("keras")) or registered not in (None, kind)
    if custom or kind not in SUPPORTED:
        what = "a custom layer" if custom else "not supported"
        raise FashionCNNError(f"{path}: {label} is {what}; supported: {', '.join(SUPPORTED)}")


def _check_input(path: Path, label: str, settings: dict) -> None:
    for key, allowed in (("sparse", (None, False)), ("ragged", (None, False)), ("optional", (None, False))):
        if settings.get(key) not in allowed:
            raise FashionCNNError(f"{path}: {label} takes {key} input; fashion-cnn imports models of dense images")
    _check_dtype(path, label, settings.get("dtype"))


def _map_layer(path: Path, label: str, kind: str, settings: dict) -> dict:
    """One Keras layer's config as a layer of ``keras_sequential``'s list, every setting accounted for."""
    ours = LAYER_TYPES[kind]
    for key, value in settings.items():
        if key in ours or key in TRAINING_ONLY:
            continue
        if key in REQUIRED:
            if value not in REQUIRED[key]:
                raise FashionCNNError(
                    f"{path}: {label} has {key}={_text(value)}, which fashion-cnn does not build; supported: {_text(REQUIRED[key][-1])}"
                )
            continue
        raise FashionCNNError(
            f"{path}: {label} has the setting {_text(key)}={_text(value)}, which fashion-cnn does not know, so it cannot tell "
            "whether it changes the predictions; save the model from a Keras version without it"
        )
    _check_dtype(path, label, settings.get("dtype"))
    layer = {"type": kind, **{key: settings[key] for key in ours if key in settings}}
    activation = layer.get("activation")
    if "activation" in layer and not (activation is None or isinstance(activation, str)):
        raise FashionCNNError(
            f"{path}: {label} has a custom activation ({_text(activation)}); supported: {', '.join(HIDDEN_ACTIVATIONS)}, softmax"
        )
    try:
        return normalize([layer])[0]
    except FashionCNNError as e:
        raise FashionCNNError(f"{path}: {label}: {str(e).split(': ', 1)[-1]}") from None


def _check_dtype(path: Path, label: str, dtype) -> None:
    """Refuse a layer that computes in anything but float32 (mixed precision, quantised): its predictions
    would differ from fashion-cnn's float32 ones."""
    name = dtype
    if isinstance(dtype, dict):
        name = (dtype.get("config") or {}).get("name") if isinstance(dtype.get("config"), dict) else None
    if name not in (None, "float32"):
        raise FashionCNNError(
            f"{path}: {label} computes in {_text(name)}; fashion-cnn imports float32 models: "
            "keras.mixed_precision.set_global_policy('float32'), rebuild the model, load its weights and save it again"
        )


def _input_side(path: Path, shape) -> int:
    """The image side from Keras' input shape (None, side, side[, 1]); refuses what fashion-cnn cannot feed."""
    if not isinstance(shape, list | tuple) or len(shape) not in (3, 4):
        raise FashionCNNError(
            f"{path} does not say the shape of its input ({_text(shape)}); build the model with keras.Input((28, 28, 1)) and save it again"
        )
    dims = list(shape[1:])
    side = dims[0]
    if not (isinstance(side, int) and not isinstance(side, bool) and 1 <= side <= 4096 and dims[1] == side):
        raise FashionCNNError(
            f"{path} takes {_text(tuple(dims))} inputs; fashion-cnn feeds square images of a fixed size, such as (28, 28, 1)"
        )
    if len(dims) == 3 and dims[2] != 1:
        raise FashionCNNError(f"{path} takes images with {_text(dims[2])} channels; fashion-cnn feeds grayscale images: (height, width, 1)")
    return side


def _weights(keras: KerasFile, layers: list[dict], names: list[str], side: int) -> list[list[np.ndarray]]:
    """Each layer's arrays from the file, checked against the shapes its config needs.

    A ``.keras`` file keys them by the layer's type and position (``conv2d``, ``conv2d_1``...: Keras 3 does not
    trust layer names, which differ between two builds of one model); a legacy ``.h5`` by the layer's name.
    """
    keys = keras_names(layers) if keras.format == "keras" else names
    out = []
    for i, (key, name, layer, shapes) in enumerate(zip(keys, names, layers, keras_weight_shapes(layers, side))):
        arrays = keras.weights.get(key, [])
        got = [tuple(a.shape) for a in arrays]
        if got != shapes:
            raise FashionCNNError(
                f"{keras.path}: model.layers[{i}] {layer['type']} ({_name(name)}) holds weights {got}, its config needs {shapes}; "
                "the file is damaged or its weights were not saved with it"
            )
        out.append(arrays)
    return out


def _text(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name(value) -> str:
    """A class or layer name from the file, as printable text of at most 60 characters."""
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
