"""Learning-rate schedules, stepped after every batch: the tutorial's constant rate, and one-cycle.

fashion-cnn train --schedule onecycle --lr 3e-3 --batch-size 128 --epochs 8 --patience 8   # the fast recipe
"""

from __future__ import annotations

import math

import torch

from ..errors import FashionCNNError

#: ``constant``: the tutorial's; ``onecycle``: warm up to the peak ``lr`` over the first 30% of steps, then anneal.
SCHEDULES = ("constant", "onecycle")


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        raise FashionCNNError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")


def make_schedule(name: str, optimizer: torch.optim.Optimizer, lr: float, epochs: int, steps_per_epoch: int):
    """The schedule ``name`` over ``epochs`` epochs of ``steps_per_epoch`` steps (None: the constant rate).

    Example:
        >>> from fashion_cnn.training.loop import adam
        >>> make_schedule("onecycle", adam(build_model()), 3e-3, epochs=8, steps_per_epoch=100).total_steps
        800
    """
    check_schedule(name)
    if name == "constant":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)


def steps_per_epoch(images: int, batch_size: int) -> int:
    return math.ceil(images / batch_size)
