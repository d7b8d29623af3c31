"""Learning-rate schedules, stepped after every batch: the tutorial's constant rate, one-cycle, and cosine.

fashion-cnn train --schedule onecycle --lr 3e-3 --batch-size 128 --epochs 8 --patience 8   # the fast recipe
fashion-cnn train --schedule cosine --warmup-epochs 1 --lr 3e-3 --epochs 30               # cosine decay after a warm-up
"""

from __future__ import annotations

import math

import torch

from ..errors import FashionCNNError

#: ``constant``: the tutorial's; ``onecycle``: warm up to the peak ``lr`` over the first 30% of steps, then anneal;
#: ``cosine``: rise linearly to ``lr`` over ``warmup_epochs``, then follow half a cosine down to 0 at the last step.
SCHEDULES = ("constant", "onecycle", "cosine")


def check_schedule(name: str, warmup_epochs: float = 0.0, epochs: int | None = None) -> None:
    """Refuse an unknown schedule, and a warm-up that is negative or longer than the run's ``epochs``."""
    if name not in SCHEDULES:
        raise FashionCNNError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    longest = epochs if epochs is not None else float("inf")
    if not (isinstance(warmup_epochs, (int, float)) and 0 <= warmup_epochs <= longest):
        raise FashionCNNError(f"--warmup-epochs must be from 0 to --epochs ({epochs}), got {warmup_epochs!r}")


def make_schedule(name: str, optimizer: torch.optim.Optimizer, lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0):
    """The schedule ``name`` over ``epochs`` epochs of ``steps_per_epoch`` steps (None: the constant rate).

    Example:
        >>> from fashion_cnn.training.loop import adam
        >>> make_schedule("onecycle", adam(build_model()), 3e-3, epochs=8, steps_per_epoch=100).total_steps
        800
        >>> s = make_schedule("cosine", adam(build_model()), 1.0, epochs=4, steps_per_epoch=10, warmup_epochs=1)
        >>> [round(s.lr_lambdas[0](k), 2) for k in (0, 9, 19, 29, 39)]   # the rate of steps 1, 10, 20, 30 and 40
        [0.1, 1.0, 0.75, 0.25, 0.0]
    """
    check_schedule(name)
    if name == "constant":
        return None
    total = epochs * steps_per_epoch
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    warmup = min(total, round(warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:  # the rate of step ``step + 1``, as a share of lr
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup + 1) / max(1, total - warmup))))

    for group in optimizer.param_groups:
        group["lr"] = lr
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def steps_per_epoch(images: int, batch_size: int) -> int:
    return math.ceil(images / batch_size)
