"""Keras-shaped layers: each module here is one row of the tutorial's ``model.summary()``."""

from __future__ import annotations

import torch
from torch import nn


def keras_init(module: nn.Module) -> None:
    """Keras' default initialisation: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Conv2D(nn.Module):
    """``keras.layers.Conv2D(filters, kernel_size, activation='relu', padding='same')``."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int = 3, activation: str | None = "relu"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, filters, kernel_size, padding="same")
        self.act = nn.ReLU() if activation == "relu" else nn.Identity()

    def forward(self, x: torch.Tensor, activate: bool = True) -> torch.Tensor:
        return self.act(self.conv(x)) if activate else self.conv(x)


class MaxPooling2D(nn.MaxPool2d):
    """``keras.layers.MaxPooling2D(pool_size)``."""

    def __init__(self, pool_size: int = 2):
        super().__init__(pool_size)


class Flatten(nn.Module):
    """``keras.layers.Flatten()`` in Keras' order: height, width, then channels.

    PyTorch keeps images as (N, C, H, W); flattening that directly would order the features differently
    from the tutorial's (N, H, W, C) and so pair them with differently initialised Dense weights.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


class Dense(nn.Module):
    """``keras.layers.Dense(units, activation)``; a softmax output is left to the loss and to ``predict``."""

    def __init__(self, in_features: int, units: int, activation: str | None = None):
        super().__init__()
        self.linear = nn.Linear(in_features, units)
        self.act = nn.ReLU() if activation == "relu" else nn.Identity()
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
    """

    fuse = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        i = 0
        while i < len(layers):
            layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if self.fuse and isinstance(layer, Conv2D) and isinstance(layer.act, nn.ReLU) and isinstance(after, MaxPooling2D):
                x = torch.relu(after(layer(x, activate=False)))
                i += 2
            else:
                x = layer(x)
                i += 1
        return x
