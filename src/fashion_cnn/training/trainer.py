"""What a running ``fit`` shares with its callbacks: the ``Trainer`` state and the ``History`` of epochs.

In a module of its own so that callbacks and the checkpoint format read the loop's state without
importing the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .. import distributed
from ..models.files import save_model
from .augment import Augment
from .optimizers import FusedAdam


@dataclass
class History:
    """One dict of metrics per epoch; ``history["val_loss"]`` gives a column, like Keras' ``history.history``.

    Example:
        >>> h = History([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
        >>> h["loss"], len(h)
        ([0.5, 0.4], 2)
    """

    epochs: list[dict[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)


@dataclass
class Trainer:
    """What callbacks see of a running ``fit``: the model, optimizer, history, and ``stop_training``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer | FusedAdam  # FusedAdam: torch's fused Adam without torch.optim
    history: History
    meta: dict
    stop_training: bool = False
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None  # stepped after every batch
    generator: torch.Generator | None = None  # the shuffle order's (and augmentation's) RNG (saved for --resume)
    initial_epoch: int = 0  # epochs already done, set by a resumed ResumeState in on_train_begin
    augment: Augment = field(default_factory=Augment)  # applied to every training batch
    label_smoothing: float = 0.0
    class_weight: torch.Tensor | None = None  # (classes,) the training loss's weight of each class, on the device
    ema: torch.optim.swa_utils.AveragedModel | None = None  # an exponential moving average of the weights

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated, checkpointed and kept: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files (always, unless training with torchrun)."""
        return distributed.info().is_main

    def save(self, path, **meta) -> None:
        """Write the model file (the ``eval_model``) with the run's metadata plus ``meta`` (on the main process only)."""
        if self.is_main:
            save_model(path, self.eval_model, **{**self.meta, **meta})
