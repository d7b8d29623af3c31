"""Stop training when the loss stops being a number (NaN or infinity), naming the epoch and step.

    fashion-cnn train --lr 1e6      # → error: the training loss became nan in epoch 1 at step 3 of 8 ...

The check costs no host-device synchronisation per step. The loop keeps, on the device, the running
loss sum and a counter of the steps after which that sum was still finite (``count_finite``). Once a
loss is NaN or infinite the sum stays so (cross-entropy is never negative, so nothing cancels), so the
counter stops growing exactly at the first bad step. The loop reads the sum only where it already
synchronises (the live progress bar, the end of the epoch); ``check_loss`` turns a non-finite sum into
``NonFiniteLoss`` with the step taken from the counter. The callbacks of that epoch do not run, so the
best checkpoint, ``last.safetensors`` and the resumable state remain those of the last good epoch.
"""

from __future__ import annotations

import math

import torch

from ..errors import FashionCNNError


class NonFiniteLoss(FashionCNNError):
    """The training loss became NaN or infinite; ``epoch`` and ``step`` are 1-based."""

    def __init__(self, message: str, epoch: int, step: int):
        super().__init__(message)
        self.epoch, self.step = epoch, step


def count_finite(counter: torch.Tensor, loss_sum: torch.Tensor) -> None:
    """Add 1 to ``counter`` (on the device, no sync) while ``loss_sum`` is finite."""
    counter += torch.isfinite(loss_sum)


def check_loss(loss_sum, finite_steps, epoch: int, steps: int) -> None:
    """Raise ``NonFiniteLoss`` if ``loss_sum`` is NaN or infinite.

    Args:
        loss_sum: the running loss sum of the epoch (a number or a 0-d tensor).
        finite_steps: the counter kept by ``count_finite`` during the epoch.
        epoch: the 0-based epoch.
        steps: steps per epoch, for the message.
    """
    value = float(loss_sum)
    if math.isfinite(value):
        return
    epoch, step = epoch + 1, int(finite_steps) + 1
    raise NonFiniteLoss(
        f"the training loss became {value} in epoch {epoch} at step {step} of {steps}, so training stopped; "
        "the usual cause is a learning rate that is too high: try a smaller --lr",
        epoch,
        step,
    )
