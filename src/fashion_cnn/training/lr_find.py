"""The learning-rate range test (Leslie Smith, "Cyclical Learning Rates for Training Neural Networks", 2017):
train for a few mini-batches while the learning rate grows from tiny to huge, and read off where the loss falls fastest.

    fashion-cnn lr-find --data-dir ../shared/data/fashion-mnist -o lr.png      # prints the suggested --lr

What it does, step by step:

* the learning rate grows exponentially over ``steps`` mini-batches, ``start_lr * (end_lr / start_lr) ** (i / (steps - 1))``,
  on the run's optimizer (Adam by default) and loss (class weights and label smoothing included);
* single batches are noisy, so the losses are smoothed by a moving mean over ``window`` steps (a tenth of
  ``steps``, odd, at least 5: 11 for 100 steps). While it runs, the mean of the last ``window`` losses stops the
  test once it exceeds ``diverge`` (4, fastai's) times its lowest value, or at a loss that is not finite;
* the curve drawn and read afterwards is the *centred* mean (``window // 2`` steps each side), which does not
  lag: an exponential average, as fastai's and torch-lr-finder's (decay 0.98 and 0.95), trails the raw loss by
  20-50 steps, 1.5-4 of the 8 decades, and on Fashion-MNIST moved the suggestion for Adam from 1e-3 to 1.5e-2;
* the **suggestion is the steepest descent**: the learning rate where the smoothed loss falls fastest against
  log(lr), searched from a tenth of the way in up to the lowest smoothed loss (so always before the divergence).
  The lowest loss's learning rate divided by 10 (the other usual rule) is returned too, as ``min_over_10``;
* the model's weights, buffers and gradients, and torch's random generator, are put back afterwards: the
  test trains nothing for good.

Why not a library: ``torch-lr-finder`` (0.2.2, September 2024; it runs on torch 2.13 without torchvision) was
tried. It prints unconditionally (a progress bar and a "finished" line, which would break ``--json``), needs a
``DataLoader`` (this project slices in-memory tensors: ``loop.BatchPlan``), computes its own loss outside
``training_loss``, and suggests a rate only inside ``plot()``, drawn with pyplot. The loop it would spare is the
thirty lines below.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import devices
from ..data.types import LabeledImages
from ..errors import FashionCNNError
from .augment import Augment
from .class_weights import weight_tensor
from .loop import BatchPlan, check_hyperparameters, train_step
from .optimizers import make_optimizer
from .trainer import History, Trainer

#: The smoothed loss, as a multiple of its lowest, at which the test stops (fastai's 4; torch-lr-finder's 5).
DIVERGE = 4.0
#: Learning rates are tried from MIN_START_LR up to MAX_END_LR at most, over at least MIN_STEPS steps.
MIN_START_LR, MAX_END_LR, MIN_STEPS, MAX_STEPS = 1e-10, 1e3, 10, 10_000


@dataclass(frozen=True)
class RangeTest:
    """What a range test found.

    Args:
        lrs: the learning rate of each step taken.
        losses: each step's batch loss (before its update).
        smoothed: the centred moving mean of ``losses`` (NaN at a loss that was not finite).
        suggestion: the learning rate of the steepest descent of ``smoothed`` (see the module's docstring).
        suggestion_index: its step.
        method: how it was chosen: ``steepest descent`` or, where the loss never fell below its start, ``lowest loss``.
        min_over_10: the learning rate of the lowest smoothed loss, divided by 10.
        diverged: whether it stopped because the loss diverged (else it ran all its steps).
        start_lr, end_lr, steps: what was asked.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    suggestion_index: int
    method: str
    min_over_10: float
    diverged: bool
    start_lr: float
    end_lr: float
    steps: int

    def to_json(self) -> dict:
        return {
            "suggestion": self.suggestion,
            "method": self.method,
            "min_over_10": self.min_over_10,
            "diverged": self.diverged,
            "diverged_at": float(self.lrs[-1]) if self.diverged else None,
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "steps": self.steps,
            "lrs": self.lrs.tolist(),
            "losses": self.losses.tolist(),
            "smoothed": self.smoothed.tolist(),
        }


def check_range(start_lr: float, end_lr: float, steps: int) -> None:
    """Refuse a range that is not ``MIN_START_LR <= start < end <= MAX_END_LR`` over ``MIN_STEPS``-``MAX_STEPS`` steps."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (start_lr, end_lr))
    if not numbers or not MIN_START_LR <= start_lr < end_lr <= MAX_END_LR:
        raise FashionCNNError(
            f"--start-lr and --end-lr must satisfy {MIN_START_LR:g} <= start < end <= {MAX_END_LR:g}, got {start_lr!r} and {end_lr!r}; "
            "the defaults 1e-7 and 10 span every useful rate"
        )
    if not isinstance(steps, int) or isinstance(steps, bool) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise FashionCNNError(f"--steps must be a whole number from {MIN_STEPS} to {MAX_STEPS:,} (100 is usual), got {steps!r}")


def lr_range_test(
    model: nn.Module,
    train: LabeledImages,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    batch_size: int = 32,
    optimizer: str = "adam",
    epsilon: float = 1e-7,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    seed: int = 0,
    precision: str = "fp32",
    augment: Augment | None = None,
    label_smoothing: float = 0.0,
    class_weight=None,
    balanced_sampling: bool = False,
    diverge: float = DIVERGE,
) -> RangeTest:
    """Run the range test on ``model`` (left as it was) with batches of ``train``; see the module's docstring.

    Args:
        model: e.g. ``build_model("tutorial-cnn")``; run on the device its parameters are on.
        train: the training images (batches are drawn as ``fit`` draws them, one epoch after another).
        start_lr, end_lr: the first and the last learning rate of the exponential ramp.
        steps: mini-batches in the ramp (fewer where the loss diverges first).
        batch_size, optimizer, epsilon, weight_decay, momentum, precision, augment, label_smoothing,
            class_weight, balanced_sampling: as ``fit`` and ``TrainConfig`` take them: test with the training you will run.
        seed: seeds the batches and dropout.
        diverge: stop when the smoothed loss exceeds this multiple of its lowest value.

    Example:
        >>> model = build_model(); before = model.state_dict()["dense.linear.weight"].clone()
        >>> result = lr_range_test(model, train_set, steps=30, batch_size=16)
        >>> bool(result.start_lr <= result.suggestion < result.lrs[-1]), torch.equal(model.state_dict()["dense.linear.weight"], before)
        (True, True)
    """
    check_range(start_lr, end_lr, steps)
    check_hyperparameters(1, batch_size, start_lr)
    device = next(model.parameters()).device
    saved, rng, was_training = copy.deepcopy(model.state_dict()), torch.get_rng_state(), model.training
    try:
        trainer = Trainer(
            model,
            make_optimizer(optimizer, model, start_lr, epsilon=epsilon, weight_decay=weight_decay, momentum=momentum, scheduled=True),
            History(),
            {},
        )
        trainer.augment, trainer.label_smoothing = augment or Augment(), label_smoothing
        trainer.class_weight = weight_tensor(class_weight, len(train.classes) if train.classes else None, device)
        trainer.generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        lrs, losses, diverged = _ramp(
            trainer, BatchPlan(train, batch_size, 0, 1, device, balanced=balanced_sampling), start_lr, end_lr, steps, precision, diverge
        )
    finally:
        model.load_state_dict(saved)
        for p in model.parameters():
            p.grad = None
        model.train(was_training)
        torch.set_rng_state(rng)
    return read_range_test(np.asarray(lrs), np.asarray(losses), diverged, start_lr, end_lr, steps)


def window_for(steps: int) -> int:
    """The moving mean's width: a tenth of the steps, odd (so it centres on a step), at least 5.

    Example:
        >>> window_for(100), window_for(30)
        (11, 5)
    """
    return max(5, steps // 10) | 1


def _ramp(trainer: Trainer, plan: BatchPlan, start_lr: float, end_lr: float, steps: int, precision: str, diverge: float):
    """The training steps of the test: their learning rates and batch losses, and whether the loss diverged."""
    model = trainer.model
    autocast = devices.autocast(plan.device, devices.resolve_precision(precision, plan.device))
    model.train()
    window = window_for(steps)
    lrs, losses, best = [], [], math.inf
    order = None
    for i in range(steps):
        lr = start_lr * (end_lr / start_lr) ** (i / (steps - 1))
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr
        if i % plan.steps == 0:  # a new epoch of batches
            order = plan.order(trainer.generator)
        x, y = plan.batch(order, i % plan.steps, trainer.augment, trainer.generator)
        loss = train_step(model, trainer, x, y, autocast)[1].item()
        lrs.append(lr)
        losses.append(loss)
        recent = sum(losses[-window:]) / len(losses[-window:])  # what the test knows so far: the last steps' mean
        best = min(best, recent)
        if not math.isfinite(loss) or recent > diverge * best:
            return lrs, losses, True
    return lrs, losses, False


def centred_mean(values, window: int) -> np.ndarray:
    """Each value's mean with its ``window // 2`` neighbours on each side (fewer at the ends): a smoothing without lag.
    A non-finite value (where the test stopped) stays out of every mean and is NaN itself.

    Example:
        >>> centred_mean([1.0, 2.0, 3.0, 10.0, float("nan")], 3).tolist()
        [1.5, 2.0, 5.0, 6.5, nan]
    """
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    n = int(np.argmin(finite)) if not finite.all() else len(values)  # the finite losses come first
    sums = np.concatenate([[0.0], np.cumsum(values[:n])])
    i, half = np.arange(n), window // 2
    lo, hi = np.maximum(0, i - half), np.minimum(n, i + half + 1)
    return np.concatenate([(sums[hi] - sums[lo]) / (hi - lo), np.full(len(values) - n, np.nan)])


def read_range_test(lrs: np.ndarray, losses: np.ndarray, diverged: bool, start_lr: float, end_lr: float, steps: int) -> RangeTest:
    """What the losses of a range test say: the centred moving mean, the steepest descent and the lowest point.

    Args:
        lrs, losses: each step's learning rate and batch loss.
        diverged: whether the test stopped at a diverging loss (its last step is then no candidate).
        start_lr, end_lr, steps: what the test was asked for (``steps`` sets the smoothing window).
    """
    smoothed = centred_mean(losses, window_for(steps))
    usable = len(lrs) - 1 if diverged else len(lrs)  # the diverging step itself is no candidate
    if usable < 3:
        raise FashionCNNError(
            f"the loss diverged after {len(lrs)} steps, at a learning rate of {lrs[-1]:.2g}; lower --start-lr (or --end-lr) "
            "so the test sees the loss fall first"
        )
    lowest = int(np.argmin(smoothed[:usable]))
    first = max(window_for(steps) // 2, usable // 10)  # the first steps' means are over fewer losses
    if lowest > first:
        slope = np.gradient(smoothed[:usable], np.log(lrs[:usable]))
        index, method = first + int(np.argmin(slope[first : lowest + 1])), "steepest descent"
    else:  # no descent to measure: the loss was lowest at the start
        index, method = lowest, "lowest loss"
    return RangeTest(
        lrs,
        losses,
        smoothed,
        float(lrs[index]),
        index,
        method,
        float(lrs[lowest] / 10),
        diverged,
        float(start_lr),
        float(end_lr),
        int(steps),
    )
