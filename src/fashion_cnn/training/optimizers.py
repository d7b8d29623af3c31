"""The optimizers a run may use: the tutorial's Adam, AdamW (decoupled weight decay), SGD with Nesterov momentum.

    fashion-cnn train --optimizer adamw --weight-decay 5e-4 --lr 3e-3 --schedule cosine
    fashion-cnn train --optimizer sgd --lr 0.1 --momentum 0.9 --weight-decay 5e-4 --schedule cosine

Adam keeps Keras' settings (beta2 0.999, epsilon 1e-7), and AdamW shares them. Weight decay applies to every
weight; with SGD it is the classic L2 term added to the gradient, with AdamW decoupled (Loshchilov & Hutter).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import FashionCNNError

OPTIMIZERS = ("adam", "adamw", "sgd")


def check_optimizer(name: str, weight_decay: float = 0.0, momentum: float = 0.9) -> None:
    if name not in OPTIMIZERS:
        raise FashionCNNError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and 0 <= weight_decay < 1):
        raise FashionCNNError(f"--weight-decay must be a number from 0 to below 1 (5e-4 is usual), got {weight_decay!r}")
    if not (isinstance(momentum, (int, float)) and math.isfinite(momentum) and 0 <= momentum < 1):
        raise FashionCNNError(f"--momentum must be a number from 0 to below 1 (0.9 is usual), got {momentum!r}")
    if name == "adam" and weight_decay:
        raise FashionCNNError("Adam takes no --weight-decay here (it would be L2 tangled with the adaptive rates); use --optimizer adamw")


def make_optimizer(
    name: str, model: nn.Module, lr: float, *, epsilon: float = 1e-7, weight_decay: float = 0.0, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``model``'s parameters (the fused/foreach implementations: same arithmetic).

    Example:
        >>> type(make_optimizer("sgd", build_model(), 0.1, weight_decay=5e-4)).__name__
        'SGD'
    """
    check_optimizer(name, weight_decay, momentum)
    params = model.parameters()
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=epsilon, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=epsilon, weight_decay=weight_decay, fused=True)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay, foreach=True)
