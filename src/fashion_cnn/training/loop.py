"""The training loop: ``fit(model, train, val, epochs=..., callbacks=[...])``, like Keras' ``model.fit``.

Speed comes from keeping the whole training set in memory as one uint8 tensor and slicing batches out of
it by index (no per-sample Dataset/DataLoader), scaling to 0..1 inside the step, and reading metrics back
from the device only when they are printed. The same loop runs on one process or under torchrun (DDP):
each rank computes its share of every global batch.

    fit          setup, then per epoch: train_one_epoch, validate, the callbacks
    BatchPlan    the training set on the device, each epoch's order (shuffled or balanced) and this rank's
                 share of each global batch
    train_one_epoch, train_step, validate
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import devices, distributed
from ..data.sampling import balanced_order, balanced_sample_weights
from ..data.transforms import tensor_of, to_model_input
from ..data.types import LabeledImages
from ..errors import FashionCNNError
from ..inference.predict import evaluate
from ..models.metadata import images_meta
from .augment import Augment
from .callbacks import Callback, CallbackList
from .class_weights import weight_tensor
from .guards import check_loss, count_finite
from .loss import training_loss
from .optimizers import FusedAdam, make_optimizer
from .progress import ProgressLine
from .trainer import History, Trainer


def adam(model: nn.Module, lr: float = 1e-3, epsilon: float = 1e-7) -> torch.optim.Adam:
    """Adam with Keras' defaults (beta1 0.9, beta2 0.999, epsilon 1e-7; PyTorch's own epsilon is 1e-8), as a
    ``torch.optim`` optimizer (learning-rate schedules take it).

    The fused implementation updates each tensor in one kernel instead of ~10 (same arithmetic). ``fit`` without
    an optimizer uses the same kernel without ``torch.optim``'s start-up cost (``optimizers.FusedAdam``).
    """
    check_adam(lr, epsilon)
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=epsilon, fused=True)


def check_adam(lr: float, epsilon: float = 1e-7) -> None:
    """Refuse a learning rate or epsilon that is not a positive finite number."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise FashionCNNError(f"learning rate must be a positive finite number, got {lr!r}; Keras' Adam uses 0.001")
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise FashionCNNError(f"Adam epsilon must be a positive finite number, got {epsilon!r}; Keras uses 1e-7")


def check_hyperparameters(epochs: int, batch_size: int, lr: float) -> None:
    """Refuse epochs or a batch size that are not whole numbers of at least 1, and a bad learning rate."""
    if not isinstance(epochs, int) or epochs < 1:
        raise FashionCNNError(f"epochs must be a whole number of at least 1, got {epochs!r}; the tutorial uses 20")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise FashionCNNError(f"batch size must be a whole number of at least 1, got {batch_size!r}; the tutorial uses 32")
    check_adam(lr)


def fit(
    model: nn.Module,
    train: LabeledImages,
    val: LabeledImages | None = None,
    *,
    epochs: int = 20,
    batch_size: int = 32,
    optimizer: torch.optim.Optimizer | FusedAdam | None = None,
    lr: float = 1e-3,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    callbacks: list[Callback] = (),
    seed: int | None = None,
    precision: str = "fp32",
    verbose: bool = True,
    meta: dict | None = None,
    augment: Augment | None = None,
    label_smoothing: float = 0.0,
    ema: float = 0.0,
    class_weight=None,
    balanced_sampling: bool = False,
) -> History:
    """Train ``model`` on ``train`` with sparse categorical cross-entropy, validating after each epoch.

    Args:
        model: e.g. ``build_model("tutorial-cnn")``; trained on the device its parameters are on.
        train: the training images and labels.
        val: validation data; adds ``val_loss`` and ``val_accuracy`` to each epoch's logs.
        epochs: the most epochs to run (callbacks may stop sooner).
        batch_size: images per step (the tutorial's 32).
        optimizer: default Adam with Keras' settings and learning rate ``lr`` (``optimizers.FusedAdam``: the
            arithmetic of ``torch.optim.Adam(fused=True)``; a ``scheduler`` needs a ``torch.optim`` one, e.g. ``adam``).
        scheduler: a learning-rate schedule on ``optimizer``, stepped after every batch (e.g. OneCycleLR).
        callbacks: e.g. ``[ModelCheckpoint(...), EarlyStopping(patience=2, restore_best_weights=True)]``.
        seed: seeds the shuffle order and dropout, so the same seed gives the same history on the CPU.
        precision: ``fp32``, ``bf16`` (autocast; fp32 weights and optimizer) or ``auto`` (bf16 where the
            hardware has native bf16: AVX512-BF16/AMX CPUs, Ampere+ GPUs). Evaluation is always fp32.
        verbose: print Keras' progress lines.
        meta: metadata stored in every model file a callback writes, over what ``train`` knows of itself
            (its class names, dataset and split: see ``fashion_cnn.models.metadata.images_meta``).
        augment: shifts, flips and erasing applied to every training batch (``fashion_cnn.training.augment``).
        label_smoothing: the share of each target spread evenly over all classes (0: the tutorial's hard labels).
        ema: keep an exponential moving average of the weights with this decay per step (e.g. 0.999; 0: none);
            it is what is validated, checkpointed and left in ``model`` at the end.
        class_weight: the weight of each class in the training loss, in label order (e.g.
            ``resolve_class_weights("balanced", train.labels, train.classes)``; None: all 1). The validation
            loss stays unweighted, as in Keras.
        balanced_sampling: draw each epoch's images with replacement, every class about equally often
            (``fashion_cnn.data.sampling``), instead of shuffling them.

    ``fit`` changes nothing outside ``model``; what it changes there: the weights, and the memory format (it moves
    the model to channels-last memory, ~1.3× faster convolutions on the CPU; the values are the same). For the
    speed of ``fashion-cnn train`` call ``fashion_cnn.use_kernels(model)`` (the CPU kernels) and, in a program
    that owns its process, ``fashion_cnn.runtime.hold_freed_memory()`` first.

    Returns:
        The ``History``: loss, accuracy, val_loss, val_accuracy and seconds per epoch.

    Example:
        >>> history = fit(build_model(), train_set, val_set, epochs=2, seed=0, verbose=False)
        >>> [round(e["val_accuracy"], 1) >= 0.1 for e in history.epochs], sorted(history.epochs[0])
        ([True, True], ['accuracy', 'epoch', 'loss', 'seconds', 'val_accuracy', 'val_loss'])
    """
    check_hyperparameters(epochs, batch_size, lr)
    check_label_smoothing(label_smoothing)
    check_ema(ema)
    device = next(model.parameters()).device
    # Channels-last convolutions are ~1.3x faster on the CPU (oneDNN); Keras-order Flatten is then free.
    model.to(memory_format=torch.channels_last)
    trainer = Trainer(
        model, optimizer or make_optimizer("adam", model, lr), History(), {**images_meta(train), **(meta or {})}, scheduler=scheduler
    )
    trainer.augment, trainer.label_smoothing = augment or Augment(), label_smoothing
    trainer.class_weight = weight_tensor(class_weight, len(train.classes) if train.classes else None, device)
    if ema:
        from torch.optim.swa_utils import AveragedModel

        trainer.ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(ema), use_buffers=True)
    dist = distributed.info()
    plan = BatchPlan(train, batch_size, dist.rank, dist.world_size, device, balanced=balanced_sampling)
    # Under torchrun each rank computes its share of every global batch; DDP averages the gradients.
    net = (
        model
        if not dist.enabled
        else nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    )
    # bf16 autocast: forward and backward of conv/matmul in bf16, master weights, Adam and loss in fp32.
    autocast = devices.autocast(device, devices.resolve_precision(precision, device))
    trainer.generator = torch.Generator()
    if seed is not None:
        torch.manual_seed(seed + dist.rank)  # dropout differs per rank; the shuffle order (generator) is shared
        trainer.generator.manual_seed(seed)
    val_part = val if val is None or not dist.enabled else val.subset(slice(dist.rank, None, dist.world_size))
    progress = ProgressLine(epochs, enabled=verbose and dist.is_main)
    hooks = CallbackList(callbacks, trainer)
    hooks.on_train_begin()
    for epoch in range(trainer.initial_epoch, epochs):
        if trainer.stop_training:  # a resumed run that early stopping had already ended
            break
        hooks.on_epoch_begin(epoch)
        logs = train_one_epoch(net, trainer, plan, autocast, epoch, progress)
        if val_part is not None:
            logs.update(validate(trainer.eval_model, val_part, across_ranks=dist.enabled))
        logs["seconds"] = progress.end_epoch(logs)
        trainer.history.epochs.append({"epoch": epoch + 1, **logs})
        hooks.on_epoch_end(epoch, logs)
        if trainer.stop_training:
            break
    if trainer.ema is not None:  # the average is the model from here on (EarlyStopping may then restore its best)
        model.load_state_dict(trainer.ema.module.state_dict())
    hooks.on_train_end()
    return trainer.history


def check_label_smoothing(value: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
        raise FashionCNNError(f"--label-smoothing must be a number from 0 to below 1 (0.1 is usual), got {value!r}")


def ema_with_warmup(decay: float):
    """An update for ``torch.optim.swa_utils.AveragedModel``: after ``n`` updates the average moves toward the
    weights by ``1 - min(decay, (1 + n) / (10 + n))`` (TensorFlow's ``ExponentialMovingAverage`` with
    ``num_updates``). Without the warm-up a decay of 0.999 keeps a third of the random initial weights after
    1,000 steps, and a network with batch norm evaluates as a constant for its first epochs.

    Example:
        >>> a, b = [torch.zeros(2)], [torch.ones(2)]
        >>> ema_with_warmup(0.999)(a, b, torch.tensor(0)); a[0].tolist()   # the first update takes 90 %
        [0.8999999761581421, 0.8999999761581421]
    """
    from torch.optim.swa_utils import get_ema_multi_avg_fn

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        if torch.is_floating_point(averaged[0]):
            get_ema_multi_avg_fn(d)(averaged, current, num_averaged)  # PyTorch's EMA step at this decay: one kernel
        else:  # counters (batch norm's num_batches_tracked): the current value
            for a, c in zip(averaged, current):
                a.copy_(c)

    return update


def check_ema(decay: float) -> None:
    if not (isinstance(decay, (int, float)) and not isinstance(decay, bool) and (decay == 0 or 0.5 <= decay < 1)):
        raise FashionCNNError(f"--ema must be 0 (off) or a decay from 0.5 to below 1 (0.999 is usual), got {decay!r}")


@dataclass
class BatchPlan:
    """The training set on the device, each epoch's order, and which images of each global batch this rank computes.

    ``batch_size`` is the global batch; with several ranks (torchrun) a last batch smaller than the
    world would leave a rank without data, so it is dropped. ``balanced``: each epoch is drawn by balanced
    sampling instead of shuffled; either way every rank draws the same order from the shared generator and
    computes its own share of each global batch, so balanced sampling under DDP is the one-process sampling.
    """

    images: torch.Tensor
    labels: torch.Tensor
    batch_size: int
    rank: int
    world: int
    device: torch.device

    def __init__(self, data: LabeledImages, batch_size: int, rank: int, world: int, device: torch.device, balanced: bool = False):
        self.images, self.labels = _to_device(tensor_of(data.images), device), _to_device(tensor_of(data.labels), device)
        self.batch_size, self.rank, self.world, self.device = batch_size, rank, world, device
        # Drawn on the CPU from the CPU generator, as the shuffle is: the same order on every device.
        self.sample_weights = balanced_sample_weights(data.labels) if balanced else None
        self.local = distributed.local_batch(batch_size, world)
        n = len(self.labels)
        self.steps = math.ceil(n / batch_size) if n % batch_size == 0 or n % batch_size >= world else n // batch_size
        self.seen_total = min(n, self.steps * batch_size)

    def order(self, generator: torch.Generator) -> torch.Tensor:
        """This epoch's order of the whole set, shuffled or balanced (the same on every rank: the generator is shared)."""
        if self.sample_weights is not None:
            return balanced_order(self.sample_weights, generator).to(self.device)
        return torch.randperm(len(self.labels), generator=generator).to(self.device)

    def batch(
        self, order: torch.Tensor, step: int, augment: Augment | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of global batch ``step``: scaled images (N, 1, H, W), augmented, and labels."""
        idx = order[step * self.batch_size : (step + 1) * self.batch_size][self.rank :: self.world]
        images = self.images[idx]
        if augment is not None:  # an inactive Augment hands the batch back as it is
            images = augment(images, generator)
        return to_model_input(images), self.labels[idx]

    def weight_total(self, order: torch.Tensor, step: int, weight: torch.Tensor | None) -> torch.Tensor | None:
        """Under DDP with class weights: ``sum w[y]`` over global batch ``step``, per rank (see ``training_loss``);
        else None. Every rank holds every label, so this needs no communication."""
        if weight is None or self.world == 1:
            return None
        return weight[self.labels[order[step * self.batch_size : (step + 1) * self.batch_size]]].sum() / self.world

    def seen_after(self, step: int) -> int:
        """Images this rank has trained on after ``step`` steps of an epoch (for the live averages)."""
        return min(step * self.local, math.ceil(self.seen_total / self.world))


def train_one_epoch(net: nn.Module, trainer: Trainer, plan: BatchPlan, autocast, epoch: int, progress: ProgressLine) -> dict[str, float]:
    """One pass over the training set; returns the epoch's mean ``loss`` and ``accuracy`` over all ranks.

    Metrics are summed on the device and read back only for the progress bar and at the end, so a step
    never waits for the host. A NaN or infinite loss stops training (``guards.NonFiniteLoss``).
    """
    model, scheduler = trainer.model, trainer.scheduler
    progress.start_epoch(epoch, plan.steps)
    model.train()
    order = plan.order(trainer.generator)
    device = plan.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    finite_steps = torch.zeros((), dtype=torch.long, device=device)
    for step in range(plan.steps):
        x, y = plan.batch(order, step, trainer.augment, trainer.generator)
        logits, loss = train_step(net, trainer, x, y, autocast, plan.weight_total(order, step, trainer.class_weight))
        if scheduler is not None:
            scheduler.step()
        if trainer.ema is not None:
            trainer.ema.update_parameters(model)
        with torch.no_grad():
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            count_finite(finite_steps, loss_sum)
        if progress.wants_update():
            check_loss(loss_sum, finite_steps, epoch, plan.steps)
            seen = plan.seen_after(step + 1)
            progress.update(step + 1, {"loss": loss_sum.item() / seen, "accuracy": correct.item() / seen})
    loss_sum, correct = distributed.all_sum(loss_sum, correct)
    logs = {"loss": loss_sum.item() / plan.seen_total, "accuracy": correct.item() / plan.seen_total}
    check_loss(logs["loss"], finite_steps, epoch, plan.steps)
    return logs


def train_step(net: nn.Module, trainer: Trainer, x: torch.Tensor, y: torch.Tensor, autocast, weight_total=None):
    """One optimizer step on the batch ``x, y`` with the run's loss (``loss.training_loss``); returns the logits and the loss."""
    with autocast():
        logits = net(x)
        loss = training_loss(logits, y, weight=trainer.class_weight, label_smoothing=trainer.label_smoothing, weight_total=weight_total)
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trainer.optimizer.step()
    return logits, loss


def validate(model: nn.Module, val: LabeledImages, *, across_ranks: bool = False) -> dict[str, float]:
    """``val_loss`` and ``val_accuracy`` (fp32, no grad); with ``across_ranks`` over every rank's shard."""
    return {f"val_{k}": v for k, v in evaluate(model, val, across_ranks=across_ranks).items()}


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The whole training set moves to the GPU once (from pinned memory); on the CPU it stays put."""
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t
