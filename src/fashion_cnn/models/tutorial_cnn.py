"""The tutorial's CNN: 333,526 parameters (320 / 18,496 / 313,700 / 1,010).

    Conv2D(32, 3, relu, same) → MaxPooling2D(2) → Conv2D(64, 3, relu, same) → MaxPooling2D(2)
    → Flatten → Dense(100, relu) → Dropout(0.4) → Dense(10, softmax)

The module returns logits; the softmax lives in the loss (cross-entropy) and in ``predict``.
"""

from __future__ import annotations

from collections import OrderedDict

from ..errors import FashionCNNError
from .layers import Conv2D, Dense, Dropout, Flatten, KerasSequential, MaxPooling2D, keras_init
from .registry import register_model


@register_model("tutorial-cnn")
def tutorial_cnn(
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    filters: tuple[int, int] = (32, 64),
    hidden: int = 100,
    dropout: float = 0.4,
) -> KerasSequential:
    """The Keras tutorial's model, with the layer names Keras gives it."""
    if not isinstance(image_size, int) or image_size < 4:
        raise FashionCNNError(f"tutorial-cnn needs images of at least 4×4 pixels (it pools twice by 2), got {image_size!r}")
    side = image_size // 2 // 2
    model = KerasSequential(
        OrderedDict(
            conv2d=Conv2D(in_channels, filters[0], 3),
            max_pooling2d=MaxPooling2D(2),
            conv2d_1=Conv2D(filters[0], filters[1], 3),
            max_pooling2d_1=MaxPooling2D(2),
            flatten=Flatten(),
            dense=Dense(side * side * filters[1], hidden, "relu"),
            dropout=Dropout(dropout),
            dense_1=Dense(hidden, num_classes, "softmax"),
        )
    )
    keras_init(model)
    return model
