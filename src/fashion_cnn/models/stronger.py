"""Past the tutorial's accuracy: three architectures registered beside ``tutorial-cnn`` (see experiment/recipes.py).

    fashion-cnn summary --model tutorial-cnn-bn     # the tutorial's CNN with batch norm: 333,622 parameters, 8.3 MFLOPs
    fashion-cnn summary --model compact-cnn         # 426,474 parameters, 44.1 MFLOPs: the best-small recipe's
    fashion-cnn summary --model resnet-small        # 696,042 parameters, 161.0 MFLOPs: the best recipe's

* ``tutorial-cnn-bn``: the tutorial's layers, each convolution followed by batch normalisation before its ReLU
  (the convolution's bias is dropped: the norm's shift replaces it). Trains faster and takes a higher rate.
* ``compact-cnn``: three stages of 3×3 convolutions with batch norm (32; 64, 64; 128, 128 filters), each ending
  in max-pooling, then a dense layer of 128 with dropout: 5.3× the tutorial's arithmetic.
* ``resnet-small``: a 3×3 stem and three stages of two basic residual blocks (He et al., 2016) of 32, 64 and
  128 filters at 28, 14 and 7 pixels, global average pooling and one dense layer: 19× the tutorial's arithmetic.

Every layer is a direct child with a name, so ``summary``, ``plot-model``, ``layer_outputs`` and Grad-CAM see
them; convolution blocks keep ``Conv2D``'s interface (``.conv``, ``activate=False``), so the tutorial's
fused conv → pool → ReLU still applies where a block is followed by pooling.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import FashionCNNError
from .layers import Conv2D, Dense, Dropout, Flatten, KerasSequential, MaxPooling2D, keras_init
from .registry import register_model


class ConvBN(Conv2D):
    """``Conv2D(filters, 3, padding='same', use_bias=False)`` → ``BatchNormalization`` → ReLU, as one layer."""

    def __init__(self, in_channels: int, filters: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(in_channels, filters, kernel_size)
        self.conv = nn.Conv2d(in_channels, filters, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01)  # Keras' BatchNormalization defaults

    def forward(self, x: torch.Tensor, activate: bool = True) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.act(x) if activate else x


class GlobalAveragePooling2D(nn.Module):
    """``keras.layers.GlobalAveragePooling2D()``: each channel's mean over the picture."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class BasicBlock(nn.Module):
    """Two 3×3 ``ConvBN`` layers and a shortcut (a strided 1×1 convolution with batch norm when the shape changes)."""

    def __init__(self, in_channels: int, filters: int, stride: int = 1):
        super().__init__()
        self.conv = ConvBN(in_channels, filters, 3, stride)
        self.conv_1 = ConvBN(filters, filters, 3)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_channels == filters
            else nn.Sequential(
                nn.Conv2d(in_channels, filters, 1, stride=stride, bias=False), nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv_1(self.conv(x), activate=False) + self.shortcut(x))


def _check_size(name: str, image_size: int, pools: int) -> None:
    least = 2**pools
    if not isinstance(image_size, int) or image_size < least:
        raise FashionCNNError(f"{name} needs images of at least {least}×{least} pixels (it halves them {pools} times), got {image_size!r}")


@register_model("tutorial-cnn-bn")
def tutorial_cnn_bn(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, hidden: int = 100, dropout: float = 0.4):
    """The tutorial's CNN with batch norm after each convolution."""
    _check_size("tutorial-cnn-bn", image_size, 2)
    side = image_size // 4
    model = KerasSequential(
        OrderedDict(
            conv2d=ConvBN(in_channels, 32),
            max_pooling2d=MaxPooling2D(2),
            conv2d_1=ConvBN(32, 64),
            max_pooling2d_1=MaxPooling2D(2),
            flatten=Flatten(),
            dense=Dense(side * side * 64, hidden, "relu"),
            dropout=Dropout(dropout),
            dense_1=Dense(hidden, num_classes, "softmax"),
        )
    )
    keras_init(model)
    return model


@register_model("compact-cnn")
def compact_cnn(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 32, hidden: int = 128, dropout: float = 0.3
):
    """Three stages of 3×3 convolutions with batch norm (``width``; 2×, 2×; 4×, 4× filters), each pooled."""
    _check_size("compact-cnn", image_size, 3)
    w = width
    side = image_size // 8
    model = KerasSequential(
        OrderedDict(
            conv2d=ConvBN(in_channels, w),
            max_pooling2d=MaxPooling2D(2),
            conv2d_1=ConvBN(w, 2 * w),
            conv2d_2=ConvBN(2 * w, 2 * w),
            max_pooling2d_1=MaxPooling2D(2),
            conv2d_3=ConvBN(2 * w, 4 * w),
            conv2d_4=ConvBN(4 * w, 4 * w),
            max_pooling2d_2=MaxPooling2D(2),
            flatten=Flatten(),
            dense=Dense(side * side * 4 * w, hidden, "relu"),
            dropout=Dropout(dropout),
            dense_1=Dense(hidden, num_classes, "softmax"),
        )
    )
    keras_init(model)
    return model


@register_model("resnet-small")
def resnet_small(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 32, blocks: int = 2, dropout: float = 0.0):
    """A 3×3 stem, three stages of ``blocks`` residual blocks (``width``, 2×, 4× filters; the last two stages
    halve the picture), global average pooling, dense."""
    _check_size("resnet-small", image_size, 2)
    if not isinstance(blocks, int) or not 1 <= blocks <= 8:
        raise FashionCNNError(f"resnet-small takes 1 to 8 blocks per stage, got {blocks!r}")
    w = width
    layers: OrderedDict[str, nn.Module] = OrderedDict(conv2d=ConvBN(in_channels, w))
    channels = w
    for stage, (filters, stride) in enumerate(((w, 1), (2 * w, 2), (4 * w, 2))):
        for b in range(blocks):
            layers[f"block{stage + 1}_{b + 1}"] = BasicBlock(channels, filters, stride if b == 0 else 1)
            channels = filters
    layers["global_average_pooling2d"] = GlobalAveragePooling2D()
    layers["dropout"] = Dropout(dropout)
    layers["dense"] = Dense(channels, num_classes, "softmax")
    model = KerasSequential(layers)
    keras_init(model)
    for m in model.modules():  # He initialisation for the residual convolutions, as ResNets are trained
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model
