"""A Keras ``Sequential`` of the tutorial's kind, as the architecture "keras-sequential".

    fashion-cnn import my-model.keras -o my-model.safetensors    # a Keras model other than the tutorial's lands here
    fashion-cnn summary my-model.safetensors

Its one real argument is the list of layers, each a small JSON object in Keras' own terms (missing settings
take Keras' defaults), so a model file records it like any architecture's arguments:

    {"layers": [{"type": "Conv2D", "filters": 16, "kernel_size": [5, 5], "padding": "valid", "activation": "tanh"},
                {"type": "MaxPooling2D", "pool_size": [2, 2]}, {"type": "Flatten"},
                {"type": "Dense", "units": 10, "activation": "softmax"}],
     "image_size": 28, "in_channels": 1}

The list is bounded (at most ``MAX_LAYERS`` = 64 layers of the types in ``LAYER_TYPES``) and checked, shapes
included, before anything is built. Layers get the names Keras gives them by default (``conv2d``,
``max_pooling2d``, ``conv2d_1``...), so the tutorial's list (``tutorial_layers()``) names its tensors as
``tutorial-cnn`` does, and ``architecture_for`` maps it back to that architecture.

The input is what fashion-cnn feeds every model, pixels / 255: what the tutorial feeds its Keras model. A
Keras model whose first layer is ``Rescaling`` takes 0–255 pixels instead, so there that layer's scale is
applied to pixels × 255. Weights move between Keras' layout (a conv kernel (h, w, in, out), a dense kernel
(in, out)) and PyTorch's ((out, in, h, w), (out, in)) in ``from_keras`` / ``to_keras``; a dense kernel after
``Flatten`` needs no reordering, since ``layers.Flatten`` already orders features as Keras does.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..errors import FashionCNNError
from .layers import (
    ACTIVATIONS,
    Activation,
    AveragePooling2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    KerasSequential,
    MaxPooling2D,
    Rescaling,
    keras_init,
)
from .metadata import MAX_ARGUMENT, MAX_LAYERS
from .registry import register_model

#: Each layer type's settings and their Keras defaults, in the order Keras' config lists them.
LAYER_TYPES: dict[str, dict] = {
    "Rescaling": {"scale": 1.0, "offset": 0.0},
    "Conv2D": {
        "filters": None,
        "kernel_size": None,
        "strides": [1, 1],
        "padding": "valid",
        "dilation_rate": [1, 1],
        "activation": "linear",
        "use_bias": True,
    },
    "MaxPooling2D": {"pool_size": [2, 2], "strides": None, "padding": "valid"},
    "AveragePooling2D": {"pool_size": [2, 2], "strides": None, "padding": "valid"},
    "GlobalAveragePooling2D": {},
    "GlobalMaxPooling2D": {},
    "Flatten": {},
    "Dense": {"units": None, "activation": "linear", "use_bias": True},
    "Dropout": {"rate": None},
    "Activation": {"activation": None},
}
#: Activations a hidden layer may have ("softmax" only ends a model: fashion-cnn's models output logits).
HIDDEN_ACTIVATIONS = sorted(k for k in ACTIVATIONS if k not in (None, "softmax"))
OUTPUT_ACTIVATIONS = ("softmax", "linear")


def snake_case(name: str) -> str:
    """Keras' default layer name for a type: ``MaxPooling2D`` → ``max_pooling2d``."""
    return re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)).lower()  # Keras' to_snake_case


def keras_names(layers: list[dict]) -> list[str]:
    """The names Keras gives these layers by default: ``conv2d``, ``max_pooling2d``, ``conv2d_1``...

    Example:
        >>> keras_names(tutorial_layers())
        ['conv2d', 'max_pooling2d', 'conv2d_1', 'max_pooling2d_1', 'flatten', 'dense', 'dropout', 'dense_1']
    """
    seen: dict[str, int] = {}
    names = []
    for layer in layers:
        base = snake_case(layer["type"])
        names.append(base if base not in seen else f"{base}_{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return names


def tutorial_layers(num_classes: int = 10, filters=(32, 64), hidden: int = 100, dropout: float = 0.4) -> list[dict]:
    """The tutorial's model (``tutorial-cnn`` with these arguments) as a list of Keras layers."""

    def conv(f):
        return {"type": "Conv2D", "filters": f, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}

    layers = [conv(filters[0]), {"type": "MaxPooling2D"}, conv(filters[1]), {"type": "MaxPooling2D"}, {"type": "Flatten"}]
    layers += [{"type": "Dense", "units": hidden, "activation": "relu"}, {"type": "Dropout", "rate": dropout}]
    return normalize([*layers, {"type": "Dense", "units": num_classes, "activation": "softmax"}])


def normalize(layers: list[dict]) -> list[dict]:
    """Each layer with every setting written out (Keras' defaults for the missing ones), in one form, checked
    for type: the form model files record and that ``architecture_for`` compares.

    Example:
        >>> normalize([{"type": "MaxPooling2D", "pool_size": 3}])
        [{'type': 'MaxPooling2D', 'pool_size': [3, 3], 'strides': [3, 3], 'padding': 'valid'}]
    """
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise FashionCNNError(f"a keras-sequential model needs a list of 1 to {MAX_LAYERS} layers, got {_short(layers)}")
    return [_normalize_layer(i, layer) for i, layer in enumerate(layers)]


def _normalize_layer(i: int, layer: dict) -> dict:
    kind = layer.get("type") if isinstance(layer, dict) else None
    if kind not in LAYER_TYPES:
        raise FashionCNNError(f"layer {i} is {_short(kind)}, not one of the layer types: {', '.join(LAYER_TYPES)}")
    unknown = sorted(set(layer) - {"type"} - set(LAYER_TYPES[kind]))
    if unknown:
        raise FashionCNNError(f"layer {i} ({kind}) has settings it does not take: {', '.join(map(str, unknown))}")
    out = {"type": kind, **LAYER_TYPES[kind], **{k: v for k, v in layer.items() if k != "type"}}

    def bad(key, want):
        raise FashionCNNError(f"layer {i} ({kind}): {key} is {_short(out[key])}, expected {want}")

    for key in ("filters", "units"):
        if key in out and not _whole(out[key]):
            bad(key, f"a whole number from 1 to {MAX_ARGUMENT:,}")
    for key in ("kernel_size", "pool_size", "strides", "dilation_rate"):
        if key not in out or (key == "strides" and out[key] is None):
            continue
        value = [out[key]] * 2 if _whole(out[key]) else out[key]
        if not (isinstance(value, list | tuple) and len(value) == 2 and all(_whole(v) for v in value)):
            bad(key, f"a whole number or two, each from 1 to {MAX_ARGUMENT:,}")
        out[key] = [int(v) for v in value]
    if "pool_size" in out and out["strides"] is None:
        out["strides"] = list(out["pool_size"])  # Keras' default: windows side by side
    if "padding" in out and out["padding"] not in ("valid", "same"):
        bad("padding", "'valid' or 'same'")
    if kind == "AveragePooling2D" and out["padding"] != "valid":
        bad("padding", "'valid' (Keras leaves the padded pixels out of the average; fashion-cnn does not build that)")
    if "activation" in out:
        out["activation"] = "linear" if out["activation"] is None else out["activation"]
        if out["activation"] not in (*HIDDEN_ACTIVATIONS, "softmax"):
            bad("activation", f"one of: {', '.join(HIDDEN_ACTIVATIONS)}, softmax")
    if "use_bias" in out and not isinstance(out["use_bias"], bool):
        bad("use_bias", "true or false")
    if kind == "Dropout" and not (_number(out["rate"]) and 0 <= out["rate"] < 1):
        bad("rate", "a number from 0 up to 1")
    for key in ("scale", "offset"):
        if key in out:
            value = out[key][0] if isinstance(out[key], list) and len(out[key]) == 1 else out[key]
            if not (_number(value) and math.isfinite(value) and abs(value) <= MAX_ARGUMENT):
                bad(key, "one finite number")
            out[key] = float(value)
    return out


def check_layers(layers: list[dict], image_size: int, in_channels: int = 1, labels: list[str] | None = None) -> list[tuple[int, ...]]:
    """Each layer's output shape, Keras' way ((h, w, c) or (n,)), after checking that the list makes a model:
    image layers before ``Flatten``/global pooling, ``Dense`` after, and a softmax or linear ``Dense`` output.
    ``labels``: what to call each layer in a refusal (default ``layer 3 (Dense)``).

    Example:
        >>> check_layers(tutorial_layers(), 28)[-4:]
        [(3136,), (100,), (100,), (10,)]
    """
    if not _whole(image_size) or not _whole(in_channels):
        raise FashionCNNError(f"a keras-sequential model needs a whole image_size and in_channels, got {image_size!r}, {in_channels!r}")
    shape: tuple[int, ...] = (image_size, image_size, in_channels)
    shapes = []
    labels = labels or [f"layer {i} ({layer['type']})" for i, layer in enumerate(layers)]
    output = output_layer(layers, labels)
    for i, layer in enumerate(layers):
        kind, where = layer["type"], labels[i]
        if layer.get("activation") == "softmax" and i < output:
            raise FashionCNNError(f"{where} has a softmax before the output layer; fashion-cnn supports softmax only as the output")
        if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D") and len(shape) != 3:
            raise FashionCNNError(f"{where} needs an image (height, width, channels) but gets {shape}")
        if kind == "Dense" and len(shape) != 1:
            raise FashionCNNError(f"{where} gets {shape}; fashion-cnn maps Dense layers only after Flatten or global pooling")
        if kind == "Conv2D":
            kernel = [(k - 1) * d + 1 for k, d in zip(layer["kernel_size"], layer["dilation_rate"])]
            shape = (*_pooled(shape[:2], kernel, layer["strides"], layer["padding"], where), layer["filters"])
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            shape = (*_pooled(shape[:2], layer["pool_size"], layer["strides"], layer["padding"], where), shape[2])
        elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            shape = (shape[2],)
        elif kind == "Flatten":
            shape = (math.prod(shape),)
        elif kind == "Dense":
            shape = (layer["units"],)
        if math.prod(shape) > MAX_ARGUMENT:
            raise FashionCNNError(f"{where} outputs {shape}, more than {MAX_ARGUMENT:,} values an image")
        shapes.append(shape)
    return shapes


def output_layer(layers: list[dict], labels: list[str]) -> int:
    """The index of the layer whose activation is the model's output (softmax or linear), after checking it is one."""
    i = len(layers) - 1
    while i > 0 and layers[i]["type"] == "Dropout":
        i -= 1
    if layers[i]["type"] == "Activation" and i > 0 and layers[i - 1]["type"] == "Dense" and layers[i - 1]["activation"] == "linear":
        dense, out = i - 1, i
    else:
        dense = out = i
    if layers[dense]["type"] != "Dense" or layers[out].get("activation") not in OUTPUT_ACTIVATIONS:
        activation = f", with activation {layers[out]['activation']}" if "activation" in layers[out] else ""
        raise FashionCNNError(
            f"{labels[out]} is the model's output{activation}; "
            "fashion-cnn takes models that end in a Dense layer with softmax (probabilities) or linear (logits) activation"
        )
    return out


@register_model("keras-sequential")
def keras_sequential(layers: list[dict] | None = None, image_size: int = 28, in_channels: int = 1) -> KerasSequential:
    """A Keras ``Sequential`` of these layers (see the module's docstring; default the tutorial's), initialised as Keras does.

    Example:
        >>> model = build_model("keras-sequential", layers=[{"type": "Flatten"}, {"type": "Dense", "units": 10}])
        >>> [name for name, _ in model.named_children()], sum(p.numel() for p in model.parameters())
        (['flatten', 'dense'], 7850)
    """
    layers = normalize(tutorial_layers() if layers is None else layers)
    shapes = check_layers(layers, image_size, in_channels)
    modules = OrderedDict()
    channels = in_channels
    for i, (name, layer) in enumerate(zip(keras_names(layers), layers)):
        modules[name] = _module(layer, channels, shapes[i - 1][0] if i else None, first=i == 0)
        channels = shapes[i][-1]
    model = KerasSequential(modules)
    keras_init(model)
    return model


def _module(layer: dict, channels: int, features: int | None, first: bool) -> nn.Module:
    kind = layer["type"]
    if kind == "Conv2D":
        return Conv2D(
            channels,
            layer["filters"],
            layer["kernel_size"],
            layer["activation"],
            strides=layer["strides"],
            padding=layer["padding"],
            dilation_rate=layer["dilation_rate"],
            use_bias=layer["use_bias"],
        )
    if kind == "MaxPooling2D":
        return MaxPooling2D(layer["pool_size"], layer["strides"], layer["padding"])
    if kind == "AveragePooling2D":
        return AveragePooling2D(layer["pool_size"], layer["strides"])
    if kind == "Dense":
        return Dense(features, layer["units"], layer["activation"], use_bias=layer["use_bias"])
    if kind == "Dropout":
        return Dropout(layer["rate"])
    if kind == "Activation":
        return Activation(layer["activation"])
    if kind == "Rescaling":
        # The model's input is pixels / 255; a first Rescaling layer in Keras gets the pixels themselves.
        return Rescaling(layer["scale"] * 255 if first else layer["scale"], layer["offset"])
    return {"Flatten": Flatten, "GlobalAveragePooling2D": GlobalAveragePooling2D, "GlobalMaxPooling2D": GlobalMaxPooling2D}[kind]()


def architecture_layers(arch: dict) -> tuple[list[dict], int, int]:
    """(layers, image_size, in_channels) of a ``tutorial-cnn`` or ``keras-sequential`` architecture; any
    other is refused (it has no Keras ``Sequential`` of these layer types)."""
    name, kwargs = arch.get("name"), dict(arch.get("kwargs") or {})
    size, channels = kwargs.pop("image_size", 28), kwargs.pop("in_channels", 1)
    if name == "tutorial-cnn":
        return tutorial_layers(**kwargs), size, channels
    if name == "keras-sequential":
        return normalize(kwargs.get("layers") or tutorial_layers()), size, channels
    raise FashionCNNError(
        f"a {name!r} model has no Keras Sequential of the layers fashion-cnn maps; "
        "Keras export and import take tutorial-cnn and keras-sequential models"
    )


def architecture_for(layers: list[dict], image_size: int, in_channels: int = 1) -> dict:
    """The architecture that holds these layers: ``tutorial-cnn`` (only its non-default arguments) when they
    are the tutorial's, with any numbers of filters, units and classes and any dropout rate; else
    ``keras-sequential``.

    Example:
        >>> architecture_for(tutorial_layers(filters=(16, 64)), 28)
        {'name': 'tutorial-cnn', 'kwargs': {'filters': [16, 64]}}
    """
    layers = normalize(layers)
    check_layers(layers, image_size, in_channels)
    if len(layers) == 8 and [layer["type"] for layer in layers] == [layer["type"] for layer in tutorial_layers()]:
        kwargs = {
            "num_classes": layers[7]["units"],
            "filters": [layers[0]["filters"], layers[2]["filters"]],
            "hidden": layers[5]["units"],
            "dropout": layers[6]["rate"],
        }
        if layers == tutorial_layers(**kwargs) and image_size >= 4:
            defaults = {"num_classes": 10, "filters": [32, 64], "hidden": 100, "dropout": 0.4, "image_size": 28, "in_channels": 1}
            kwargs.update(image_size=image_size, in_channels=in_channels)
            return {"name": "tutorial-cnn", "kwargs": {k: v for k, v in kwargs.items() if v != defaults[k]}}
    return {"name": "keras-sequential", "kwargs": {"layers": layers, "image_size": image_size, "in_channels": in_channels}}


def keras_weight_shapes(layers: list[dict], image_size: int, in_channels: int = 1) -> list[list[tuple[int, ...]]]:
    """The shapes of each layer's weights in a Keras file, in Keras' order: [kernel, bias] or [] per layer."""
    shapes = check_layers(layers, image_size, in_channels)
    out = []
    for i, layer in enumerate(layers):
        before = shapes[i - 1] if i else (image_size, image_size, in_channels)
        if layer["type"] == "Conv2D":
            kernel = (*layer["kernel_size"], before[-1], layer["filters"])
        elif layer["type"] == "Dense":
            kernel = (before[0], layer["units"])
        else:
            out.append([])
            continue
        out.append([kernel, (kernel[-1],)] if layer["use_bias"] else [kernel])
    return out


def from_keras(layers: list[dict], weights: list[list[np.ndarray]]) -> dict[str, torch.Tensor]:
    """A state_dict for the model of ``layers`` from each layer's Keras weights (the shapes ``keras_weight_shapes`` gives).

    Example:
        >>> layers = normalize([{"type": "Flatten"}, {"type": "Dense", "units": 2}])
        >>> state = from_keras(layers, [[], [np.arange(8.0).reshape(4, 2), np.zeros(2)]])
        >>> state["dense.linear.weight"].tolist()
        [[0.0, 2.0, 4.0, 6.0], [1.0, 3.0, 5.0, 7.0]]
    """
    state = {}
    for name, layer, arrays in zip(keras_names(layers), layers, weights):
        if not arrays:
            continue
        kernel = np.asarray(arrays[0], dtype=np.float32)
        inner = "conv" if layer["type"] == "Conv2D" else "linear"
        state[f"{name}.{inner}.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T)
        )
        if len(arrays) > 1:
            state[f"{name}.{inner}.bias"] = torch.from_numpy(np.ascontiguousarray(arrays[1], dtype=np.float32))
    return state


def to_keras(layers: list[dict], state: dict[str, torch.Tensor]) -> list[list[np.ndarray]]:
    """Each layer's weights in Keras' layout and order ([kernel, bias] or []), from the model's state_dict."""
    out = []
    for name, layer in zip(keras_names(layers), layers):
        inner = {"Conv2D": "conv", "Dense": "linear"}.get(layer["type"])
        if inner is None:
            out.append([])
            continue
        kernel = state[f"{name}.{inner}.weight"].detach().cpu().float().numpy()
        arrays = [np.ascontiguousarray(kernel.transpose(2, 3, 1, 0) if kernel.ndim == 4 else kernel.T)]
        if f"{name}.{inner}.bias" in state:
            arrays.append(state[f"{name}.{inner}.bias"].detach().cpu().float().numpy())
        out.append(arrays)
    return out


def _pooled(size, window, strides, padding: str, where: str) -> tuple[int, int]:
    if padding == "same":
        return tuple(math.ceil(n / s) for n, s in zip(size, strides))
    out = tuple((n - k) // s + 1 for n, k, s in zip(size, window, strides))
    if min(out) < 1 or any(k > n for n, k in zip(size, window)):
        raise FashionCNNError(f"{where}: a {window[0]}×{window[1]} window does not fit the {size[0]}×{size[1]} image it gets")
    return out


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ARGUMENT


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
