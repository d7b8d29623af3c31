"""Callbacks with Keras' semantics, so checkpointing and early stopping stay out of the loop.

Each callback gets ``self.trainer`` (model, optimizer, history, ``stop_training``) before training starts.

Example — the tutorial's two callbacks::

    fit(model, train, val, callbacks=[
        ModelCheckpoint("best.safetensors", save_best_only=True),
        EarlyStopping(patience=2, restore_best_weights=True),
    ])
"""

from __future__ import annotations

import copy
import math
import os

from ..errors import FashionCNNError
from ..rundir import RunDir
from .trainer import Trainer

MODES = ("auto", "min", "max")
#: What every epoch's logs hold (``val_*`` only with validation data): what a callback may monitor.
METRICS = ("val_loss", "val_accuracy", "loss", "accuracy")


def check_monitor(monitor: str) -> None:
    """Refuse, before any training, a metric the epoch logs will not have."""
    if monitor not in METRICS:
        raise FashionCNNError(f"unknown metric to monitor {monitor!r}; choose one of: {', '.join(METRICS)}")


def check_patience(patience) -> None:
    """Refuse a patience below 0 (or not a whole number), with the tutorial's value as the hint."""
    if not isinstance(patience, int) or patience < 0:
        raise FashionCNNError(f"patience must be a whole number of 0 or more, got {patience!r}; the tutorial uses 2")


class Callback:
    """Hooks a ``fit`` calls: ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end``, ``on_train_end``."""

    trainer: Trainer

    def set_trainer(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self) -> None: ...

    def on_epoch_begin(self, epoch: int) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...

    def on_train_end(self) -> None: ...

    def state_dict(self) -> dict:
        """What must survive a crash for ``fit`` to continue exactly (see ``training.resume``); JSON values
        and tensors (also in nested dicts) only."""
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class CallbackList:
    """The callbacks of one ``fit``, called in order at each hook (as Keras' ``CallbackList``)."""

    def __init__(self, callbacks, trainer: Trainer):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_trainer(trainer)

    def on_train_begin(self) -> None:
        for cb in self.callbacks:
            cb.on_train_begin()

    def on_epoch_begin(self, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self) -> None:
        for cb in self.callbacks:
            cb.on_train_end()


class MonitorCallback(Callback):
    """The one owner of "is this epoch better?": which metric, which direction, by how much (Keras' own base).

    Args:
        monitor: metric name from the epoch logs.
        mode: ``min``, ``max`` or ``auto`` (``max`` for accuracies, else ``min``).
        min_delta: smallest change that counts as improvement.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0):
        if mode not in MODES:
            raise FashionCNNError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)

    def initial(self) -> float:
        """The score every first epoch beats."""
        return math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict[str, float]) -> float:
        """The monitored metric of an epoch, or a clear error naming the metrics there are."""
        if self.monitor not in logs:
            raise FashionCNNError(
                f"{type(self).__name__} monitors {self.monitor!r} but the epoch logs have only: {', '.join(logs)}; "
                "pass monitor= one of those (validation metrics need validation data)"
            )
        return logs[self.monitor]

    def is_improvement(self, current: float, best: float) -> bool:
        if self.mode == "min":
            return current + self.min_delta < best
        return current - self.min_delta > best


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (Keras 3 semantics).

    After each epoch: if the metric improved on the best so far (by more than ``min_delta``) the best
    is updated and the wait counter reset; otherwise the counter grows, and training stops once it
    reaches ``patience`` (never after the first epoch). With ``restore_best_weights=True`` the model
    ends training with the weights of its best epoch, whether or not it stopped early.

    Args:
        monitor: metric name from the epoch logs (default ``val_loss``).
        patience: epochs without improvement before stopping (default 0, as Keras; the tutorial uses 2).
        min_delta: smallest change that counts as improvement.
        mode: ``min``, ``max`` or ``auto`` (``max`` for accuracies, else ``min``).
        restore_best_weights: load the best epoch's weights at the end (default False, as Keras).

    Example:
        >>> early = EarlyStopping(patience=2, min_delta=10, restore_best_weights=True)  # nothing improves by 10
        >>> history = fit(build_model(), train_set, val_set, epochs=20, callbacks=[early], verbose=False)
        >>> len(history), early.best_epoch, early.stopped_epoch     # epoch 0 is the best; 2 more without improvement
        (3, 0, 2)
    """

    def __init__(
        self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0, mode: str = "auto", restore_best_weights: bool = False
    ):
        super().__init__(monitor, mode, min_delta)
        check_patience(patience)
        self.patience, self.restore_best_weights = patience, restore_best_weights

    def on_train_begin(self) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self.best, self.best_weights = self.initial(), None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        current = self.value(logs)
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(self.trainer.eval_model.state_dict())
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.trainer.model.load_state_dict(self.best_weights)

    def state(self) -> dict:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch}

    def state_dict(self) -> dict:
        return {**self.state(), "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.wait, self.best, self.best_epoch, self.stopped_epoch = (
            state["wait"],
            state["best"],
            state["best_epoch"],
            state["stopped_epoch"],
        )
        self.best_weights = state["best_weights"]


class ModelCheckpoint(MonitorCallback):
    """Save the model after each epoch, or only when ``monitor`` improves (``save_best_only=True``).

    Args:
        filepath: the ``.safetensors`` file to write (atomically; see ``fashion_cnn.models.save_model``).
        monitor: metric name from the epoch logs (default ``val_loss``).
        save_best_only: only overwrite the file when the metric improves (the tutorial sets True).
        mode: ``min``, ``max`` or ``auto``.

    Example:
        >>> checkpoint = ModelCheckpoint(tmp / "best.safetensors", save_best_only=True)
        >>> _ = fit(build_model(), train_set, val_set, epochs=2, callbacks=[checkpoint], verbose=False)
        >>> load_model(tmp / "best.safetensors").meta["epoch"] in (1, 2)
        True
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"):
        super().__init__(monitor, mode)
        self.filepath, self.save_best_only = filepath, save_best_only
        self.best = self.initial()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            current = self.value(logs)
            if not self.is_improvement(current, self.best):
                return
            self.best = current
        self.trainer.save(self.filepath, epoch=epoch + 1, metrics=dict(logs))

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]


class RunWriter(Callback):
    """After every epoch: rewrite the run directory's history files and last model, atomically."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run = RunDir(run_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if not self.trainer.is_main:
            return
        self.run.write_history(self.trainer.history.epochs)
        self.trainer.save(self.run.last, epoch=epoch + 1, metrics=dict(logs))
