"""The training loop: ``fit(model, train, val, epochs=..., callbacks=[...])``, like Keras' ``model.fit``.

Speed comes from keeping the whole training set in memory as one uint8 tensor and slicing batches out of
it by index (no per-sample Dataset/DataLoader), scaling to 0..1 inside the step, and reading metrics back
from the device only when they are printed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import LabeledImages
from ..data.transforms import to_model_input
from ..errors import FashionCNNError
from ..inference.predict import evaluate
from ..models.files import save_model
from .callbacks import Callback
from .progress import ProgressLine


@dataclass
class History:
    """One dict of metrics per epoch; ``history["val_loss"]`` gives a column, like Keras' ``history.history``."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)


@dataclass
class Trainer:
    """What callbacks see of a running ``fit``: the model, optimizer, history, and ``stop_training``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    meta: dict
    stop_training: bool = False

    def save(self, path, **meta) -> None:
        """Write the model file with the run's metadata plus ``meta``."""
        save_model(path, self.model, **{**self.meta, **meta})


def adam(model: nn.Module, lr: float = 1e-3, epsilon: float = 1e-7) -> torch.optim.Adam:
    """Adam with Keras' defaults (beta1 0.9, beta2 0.999, epsilon 1e-7; PyTorch's own epsilon is 1e-8)."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=epsilon)


def check_hyperparameters(epochs: int, batch_size: int, lr: float) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise FashionCNNError(f"epochs must be a whole number of at least 1, got {epochs!r}; the tutorial uses 20")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise FashionCNNError(f"batch size must be a whole number of at least 1, got {batch_size!r}; the tutorial uses 32")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise FashionCNNError(f"learning rate must be a positive finite number, got {lr!r}; Keras' Adam uses 0.001")


def fit(
    model: nn.Module,
    train: LabeledImages,
    val: LabeledImages | None = None,
    *,
    epochs: int = 20,
    batch_size: int = 32,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    callbacks: list[Callback] = (),
    seed: int | None = None,
    verbose: bool = True,
    meta: dict | None = None,
) -> History:
    """Train ``model`` on ``train`` with sparse categorical cross-entropy, validating after each epoch.

    Args:
        model: e.g. ``build_model("tutorial-cnn")``; trained on the device its parameters are on.
        train: the training images and labels.
        val: validation data; adds ``val_loss`` and ``val_accuracy`` to each epoch's logs.
        epochs: the most epochs to run (callbacks may stop sooner).
        batch_size: images per step (the tutorial's 32).
        optimizer: default Adam with Keras' settings and learning rate ``lr``.
        callbacks: e.g. ``[ModelCheckpoint(...), EarlyStopping(patience=2, restore_best_weights=True)]``.
        seed: seeds the shuffle order and dropout, so the same seed gives the same history on the CPU.
        verbose: print Keras' progress lines.
        meta: metadata stored in every model file a callback writes (classes, dataset...).

    Returns:
        The ``History``: loss, accuracy, val_loss, val_accuracy and seconds per epoch.

    Example:
        >>> history = fit(build_model(), train, val, epochs=20,  # doctest: +SKIP
        ...               callbacks=[EarlyStopping(patience=2, restore_best_weights=True)])
    """
    check_hyperparameters(epochs, batch_size, lr)
    device = next(model.parameters()).device
    # Channels-last convolutions are ~1.3x faster on the CPU (oneDNN); Keras-order Flatten is then free.
    model.to(memory_format=torch.channels_last)
    optimizer = optimizer or adam(model, lr)
    trainer = Trainer(model, optimizer, History(), dict(meta or {}))
    generator = torch.Generator()
    if seed is not None:
        torch.manual_seed(seed)
        generator.manual_seed(seed)
    images = torch.from_numpy(train.images).to(device)
    labels = torch.from_numpy(train.labels).to(device)
    n = len(labels)
    steps = math.ceil(n / batch_size)
    progress = ProgressLine(epochs, enabled=verbose)
    for cb in callbacks:
        cb.set_trainer(trainer)
        cb.on_train_begin()
    for epoch in range(epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        progress.start_epoch(epoch, steps)
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            x, y = to_model_input(images[idx]), labels[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
            if progress.wants_update():
                seen = min((step + 1) * batch_size, n)
                progress.update(step + 1, {"loss": loss_sum.item() / seen, "accuracy": correct.item() / seen})
        logs = {"loss": loss_sum.item() / n, "accuracy": correct.item() / n}
        if val is not None:
            logs.update({f"val_{k}": v for k, v in evaluate(model, val).items()})
        logs["seconds"] = progress.end_epoch(logs)
        trainer.history.epochs.append({"epoch": epoch + 1, **logs})
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if trainer.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end()
    return trainer.history
