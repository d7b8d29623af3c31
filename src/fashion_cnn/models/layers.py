"""Keras-shaped layers: each module here is one row of the tutorial's ``model.summary()``.

The tutorial's layers (Conv2D, MaxPooling2D, Flatten, Dense, Dropout) take the options Keras' do where a
Keras model can set them (strides, ``padding='valid'|'same'``, activations by name), plus the few other layers
a plain Keras ``Sequential`` of this kind holds (Rescaling, AveragePooling2D, global pooling, Activation), so
an imported Keras model (``models/keras_sequential.py``) is built from the same parts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FashionCNNError

#: Keras' activations by name, as PyTorch modules with the same definition (Keras 3's ``gelu`` is the exact
#: one, as PyTorch's). ``softmax`` stands for an output layer's: the loss and ``predict`` apply it.
ACTIVATIONS: dict[str | None, type[nn.Module]] = {
    None: nn.Identity,
    "linear": nn.Identity,
    "softmax": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "mish": nn.Mish,
}


def activation_module(name: str | None) -> nn.Module:
    """The module computing Keras' activation ``name`` (``"relu"`` → ``nn.ReLU()``).

    Example:
        >>> activation_module("tanh"), activation_module("linear")
        (Tanh(), Identity())
    """
    if name not in ACTIVATIONS:
        known = ", ".join(k for k in ACTIVATIONS if k)
        raise FashionCNNError(f"unknown activation {name!r}; choose one of: {known}")
    return ACTIVATIONS[name]()


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Keras' ``kernel_size=3`` or ``(3, 3)`` as (height, width)."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def same_padding(size: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int], dilation=(1, 1)) -> tuple[int, ...]:
    """Keras' (TensorFlow's) ``padding='same'`` for an input of ``size``: (left, right, top, bottom) for ``F.pad``.

    The output has ``ceil(size / stride)`` pixels a side; an odd padding puts the extra pixel after (right,
    bottom), which PyTorch's own ``padding='same'`` does only for stride 1.
    """
    pads = []
    for n, k, s, d in zip(size, kernel, strides, dilation):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return (left, right, top, bottom)


def keras_init(module: nn.Module) -> None:
    """Keras' default initialisation: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Conv2D(nn.Module):
    """``keras.layers.Conv2D(filters, kernel_size, strides, padding, dilation_rate, activation, use_bias)``.

    Keras' defaults where the tutorial sets nothing (strides 1, no dilation, a bias); the tutorial's
    ``activation='relu', padding='same'`` are this class's defaults.
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        activation: str | None = "relu",
        *,
        strides: int | tuple[int, int] = 1,
        padding: str = "same",
        dilation_rate: int | tuple[int, int] = 1,
        use_bias: bool = True,
    ):
        super().__init__()
        kernel, stride, dilation = pair(kernel_size), pair(strides), pair(dilation_rate)
        # PyTorch pads 'same' itself only at stride 1, and evenly; a strided or uneven 'same' (an even kernel) is
        # padded in forward, from the input's size, with the extra pixel after, as Keras does.
        uneven = any((k - 1) * d % 2 for k, d in zip(kernel, dilation))
        self.same = (kernel, stride, dilation) if padding == "same" and (stride != (1, 1) or uneven) else None
        torch_padding = "same" if padding == "same" and self.same is None else 0
        self.conv = nn.Conv2d(in_channels, filters, kernel, stride=stride, padding=torch_padding, dilation=dilation, bias=use_bias)
        self.activation = activation
        self.act = activation_module(activation)

    def forward(self, x: torch.Tensor, activate: bool = True) -> torch.Tensor:
        if self.same is not None:
            x = F.pad(x, same_padding(tuple(x.shape[-2:]), *self.same))
        return self.act(self.conv(x)) if activate else self.conv(x)


class MaxPooling2D(nn.MaxPool2d):
    """``keras.layers.MaxPooling2D(pool_size, strides, padding)``: strides default to the pool size."""

    def __init__(self, pool_size: int | tuple[int, int] = 2, strides: int | tuple[int, int] | None = None, padding: str = "valid"):
        def size(v):  # an int stays an int: the tutorial's layer prints as MaxPooling2D(kernel_size=2, ...)
            return v if v is None or isinstance(v, int) else pair(v)

        super().__init__(size(pool_size), size(strides))
        self.same = padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:  # padded pixels never win the max
            x = F.pad(x, same_padding(tuple(x.shape[-2:]), pair(self.kernel_size), pair(self.stride)), value=-math.inf)
        return super().forward(x)


class AveragePooling2D(nn.AvgPool2d):
    """``keras.layers.AveragePooling2D(pool_size, strides)`` with ``padding='valid'``."""

    def __init__(self, pool_size: int | tuple[int, int] = 2, strides: int | tuple[int, int] | None = None):
        super().__init__(pair(pool_size), None if strides is None else pair(strides))


class GlobalAveragePooling2D(nn.Module):
    """``keras.layers.GlobalAveragePooling2D()``: (N, C, H, W) → (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class GlobalMaxPooling2D(nn.Module):
    """``keras.layers.GlobalMaxPooling2D()``: (N, C, H, W) → (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3))


class Rescaling(nn.Module):
    """``keras.layers.Rescaling(scale, offset)``: ``x * scale + offset``."""

    def __init__(self, scale: float = 1.0, offset: float = 0.0):
        super().__init__()
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"


class Activation(nn.Module):
    """``keras.layers.Activation(name)``."""

    def __init__(self, activation: str | None):
        super().__init__()
        self.activation = activation
        self.act = activation_module(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


class Flatten(nn.Module):
    """``keras.layers.Flatten()`` in Keras' order: height, width, then channels.

    PyTorch keeps images as (N, C, H, W); flattening that directly would order the features differently
    from the tutorial's (N, H, W, C) and so pair them with differently initialised Dense weights.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1) if x.ndim == 4 else x.flatten(1)


class Dense(nn.Module):
    """``keras.layers.Dense(units, activation, use_bias)``; a softmax output is left to the loss and to ``predict``."""

    def __init__(self, in_features: int, units: int, activation: str | None = None, use_bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, units, bias=use_bias)
        self.act = activation_module(activation)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))


class Dropout(nn.Dropout):
    """``keras.layers.Dropout(rate)``."""


class KerasSequential(nn.Sequential):
    """Keras' ``Sequential``: the layers in order, with one exact rewrite for speed.

    ``Conv2D(activation="relu")`` followed by ``MaxPooling2D`` computes the pooling first and the ReLU
    after it, on a quarter of the values. ReLU is monotonic, so ``max(relu(x)) == relu(max(x))`` exactly,
    and the gradient reaches the same element either way (``tests/test_model.py`` checks both); the
    training step is ~1.3× faster (``python bench/step_variants.py``). Each layer is still called as a
    module, so hooks (the summary, the diagram) see every layer with its usual shapes; with ``fuse = False``
    they also see its usual values (the conv layer's output after its ReLU), as ``inspection.internals`` needs.

    On the CPU, ``fashion_cnn.kernels.use_kernels(model)`` sets ``kernels`` to a backend that computes each
    conv → pool → ReLU block in one C pass where it applies (and PyTorch's operators elsewhere); until then, and
    after ``remove_kernels``, every block runs PyTorch's operators.
    """

    fuse = True
    #: The backend for conv → pool → ReLU blocks (``fashion_cnn.kernels``), or None: PyTorch's operators.
    kernels = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)

    def with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(output, feature map, penultimate)`` from one pass: the output as ``forward`` computes it, the last
        4-D activation (what Flatten or global pooling receives, (N, C, H, W)) and the input of the last Dense
        layer (N, units); None for a part the model does not have. What the not-clothing score reads
        (``fashion_cnn.inference.ood``)."""
        seen: dict[str, torch.Tensor] = {}
        return self._run(x, seen), seen.get("map"), seen.get("penultimate")

    def _run(self, x: torch.Tensor, seen: dict | None = None) -> torch.Tensor:
        layers = list(self)
        last_dense = max((j for j, layer in enumerate(layers) if isinstance(layer, Dense)), default=None)
        i = 0
        while i < len(layers):
            layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if seen is not None:  # plain Python bookkeeping: the arithmetic is forward's own
                if x.ndim == 4:
                    seen["map"] = x
                if i == last_dense:
                    seen["penultimate"] = x
            if self.fuse and _conv_relu_pool(layer, after):
                x = self.kernels(layer, after, x) if self.kernels is not None else torch.relu(after(layer(x, activate=False)))
                i += 2
            else:
                x = layer(x)
                i += 1
        return x


def _conv_relu_pool(layer: nn.Module, after: nn.Module | None) -> bool:
    return isinstance(layer, Conv2D) and isinstance(layer.act, nn.ReLU) and isinstance(after, MaxPooling2D)


def conv_relu_pool_blocks(model: nn.Module):
    """Each conv → pool → ReLU block of ``model``'s fusing ``KerasSequential`` parts: (its position in its
    sequence, 1 = the first; the Conv2D; the MaxPooling2D)."""
    for seq in model.modules():
        if isinstance(seq, KerasSequential) and seq.fuse:
            layers = list(seq)
            pairs = [(layer, after) for layer, after in zip(layers, layers[1:]) if _conv_relu_pool(layer, after)]
            yield from ((i, layer, after) for i, (layer, after) in enumerate(pairs, 1))
