"""The tutorial as one function: load, split, build, fit with checkpoint + early stopping, evaluate.

    fashion-cnn train --data-dir ../shared/data/fashion-mnist            # the CLI face
    python -c "from fashion_cnn import TrainConfig, train; train(TrainConfig())"   # the API face
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import distributed
from ..data.dataset import load_dataset, train_val_split
from ..data.registry import get_spec
from ..data.transforms import input_meta
from ..devices import PRECISIONS, resolve_device, resolve_precision, set_threads
from ..errors import FashionCNNError
from ..files import atomic_write_json, atomic_write_text, remove_temporaries
from ..inference.predict import evaluate
from ..models.files import BEST, save_model
from ..models.registry import build_model, model_names
from ..models.summary import summary
from .callbacks import EarlyStopping, ModelCheckpoint
from .loop import History, adam, check_hyperparameters, fit
from .guards import NonFiniteLoss
from .resume import Interrupted, ResumeState, completed_epochs, interrupted_message, resumed_config, sigterm_as_interrupt
from .run_dir import CONFIG, METRICS, SUMMARY, RunWriter, new_run_dir


SCHEDULES = ("constant", "onecycle")


@dataclass
class TrainConfig:
    """Every setting of a training run; the defaults are the tutorial's.

    Args:
        dataset: ``fashion-mnist``, ``mnist`` or ``kmnist``.
        data_dir: local folder with the IDX files (default ``$FASHION_CNN_DATA``, the cache, or download).
        model: a registered architecture name.
        epochs: the most epochs (20).
        batch_size: images per step (32).
        lr: Adam's learning rate (0.001); with ``schedule="onecycle"`` the peak rate.
        schedule: ``constant`` (the tutorial's) or ``onecycle`` (warm up to ``lr`` over the first 30% of
            steps, then anneal to ~0: the fast recipe's).
        adam_epsilon: Adam's epsilon, Keras' 1e-7.
        val_fraction: share of the training set held out for validation (0.2 → 48,000 / 12,000).
        split_seed: ``random_state`` of the split (42).
        seed: seeds initialisation, shuffling and dropout.
        patience: early-stopping patience in epochs (2); the best model by ``monitor`` is restored.
        monitor: the metric for checkpointing and early stopping (``val_loss``).
        restore_best_weights: end with the best epoch's weights (True).
        limit: train on only the first N images of the training split (quick trials), or None.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        precision: ``auto`` (bf16 autocast where the hardware computes bf16 natively, else fp32), ``fp32``
            or ``bf16``; weights, optimizer state, loss and evaluation stay fp32 either way.
        threads: CPU threads (default: all cores).
        runs_dir: where run directories go (``runs``).
        name: the run's folder name (default ``<model>-<date>-<time>``).
    """

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    model: str = "tutorial-cnn"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "constant"
    adam_epsilon: float = 1e-7
    val_fraction: float = 0.2
    split_seed: int = 42
    seed: int = 0
    patience: int = 2
    monitor: str = "val_loss"
    restore_best_weights: bool = True
    limit: int | None = None
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    runs_dir: str = "runs"
    name: str | None = None

    def validate(self) -> None:
        """Check every setting before any data is read or file written."""
        check_hyperparameters(self.epochs, self.batch_size, self.lr)
        get_spec(self.dataset)
        if self.model not in model_names():
            raise FashionCNNError(f"unknown model {self.model!r}; choose one of: {', '.join(model_names())}")
        if not (math.isfinite(self.adam_epsilon) and self.adam_epsilon > 0):
            raise FashionCNNError(f"Adam epsilon must be a positive finite number, got {self.adam_epsilon}; Keras uses 1e-7")
        if self.precision not in PRECISIONS:
            raise FashionCNNError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.schedule not in SCHEDULES:
            raise FashionCNNError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if self.patience < 0:
            raise FashionCNNError(f"patience must be 0 or more, got {self.patience}; the tutorial uses 2")
        if self.limit is not None and self.limit < 1:
            raise FashionCNNError(f"--limit must be at least 1, got {self.limit}")
        if not 0 < self.val_fraction < 1:
            raise FashionCNNError(f"validation fraction must be between 0 and 1 (exclusive), got {self.val_fraction}; the tutorial uses 0.2")


@dataclass
class RunResult:
    run_dir: Path
    history: History
    metrics: dict = field(default_factory=dict)


def train(config: TrainConfig, verbose: bool = True, *, resume_from: str | Path | None = None) -> RunResult:
    """Run the whole tutorial and write a run directory (see ``fashion_cnn.training.run_dir``).

    ``resume_from`` continues that run directory from its ``state.safetensors``; use ``resume`` rather
    than passing it yourself, as ``resume`` also checks that ``config`` is the run's own.
    """
    config.validate()
    device = resolve_device(config.device)  # also refuses an unknown or absent device before any work
    ddp, device = distributed.setup(device)  # one process unless launched by torchrun
    verbose = verbose and ddp.is_main
    set_threads(config.threads)
    data = load_dataset(config.dataset, config.data_dir)
    # A folder dataset with its own val/ is validated on it; otherwise the tutorial's split of train.
    train_set, val_set = (data.train, data.val) if data.val is not None else train_val_split(data.train, config.val_fraction, config.split_seed)
    if config.limit:
        train_set = train_set.subset(slice(0, config.limit))
    torch.manual_seed(config.seed)
    model = build_model(config.model, num_classes=len(data.classes), image_size=data.train.images.shape[1]).to(device)
    if ddp.is_main:
        run_dir = new_run_dir(config.runs_dir, config.name, config.model) if resume_from is None else Path(resume_from)
        atomic_write_json(run_dir / CONFIG, {**asdict(config), "device": str(device), "threads": torch.get_num_threads(), "processes": ddp.world_size,
                                          "precision_used": resolve_precision(config.precision, device)})
        atomic_write_text(run_dir / SUMMARY, summary(model, print_fn=print if verbose else (lambda s: None)) + "\n")
    run_dir = distributed.broadcast(run_dir if ddp.is_main else None)
    meta = {
        "classes": list(data.classes),
        "classes_ko": list(data.classes_ko),
        "dataset": {"name": data.name, "val_fraction": config.val_fraction, "split_seed": config.split_seed},
        "input": input_meta(*data.train.images.shape[1:]),
    }
    if verbose:
        print(f"Training on {len(train_set):,} images, validating on {len(val_set):,} ({device}); run directory {run_dir}")
    early = EarlyStopping(config.monitor, patience=config.patience, restore_best_weights=config.restore_best_weights)
    checkpoint = ModelCheckpoint(run_dir / BEST, config.monitor, save_best_only=True)
    # ResumeState last: it snapshots the others after they have finished the epoch.
    callbacks = [checkpoint, early, RunWriter(run_dir), ResumeState(run_dir, [checkpoint, early], resume=resume_from is not None)]
    optimizer = adam(model, config.lr, config.adam_epsilon)
    scheduler = _schedule(config, optimizer, len(train_set))
    started = time.perf_counter()
    try:
        with sigterm_as_interrupt():
            history = fit(model, train_set, val_set, epochs=config.epochs, batch_size=config.batch_size, optimizer=optimizer,
                          scheduler=scheduler, callbacks=callbacks, seed=config.seed, precision=config.precision, verbose=verbose, meta=meta)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_message(run_dir, config.epochs)) from None
    except NonFiniteLoss as e:
        kept = f"the best model so far is kept in {run_dir / BEST}" if (run_dir / BEST).is_file() else "no epoch had finished, so no model was kept"
        raise NonFiniteLoss(f"{e}; {kept}", e.epoch, e.step) from None
    train_seconds = time.perf_counter() - started
    if not ddp.is_main:  # rank 0 evaluates and writes; the weights are the same on every rank
        distributed.cleanup()
        return RunResult(run_dir, history)
    metrics = {
        "val": evaluate(model, val_set),
        "test": evaluate(model, data.test),
        "epochs_run": len(history),
        "best_epoch": None if early.best_epoch is None else early.best_epoch + 1,
        "stopped_early": early.stopped_epoch is not None,
        "seconds_per_epoch": sum(history["seconds"]) / len(history),
        "train_seconds": train_seconds,
        "train_images_per_second": len(train_set) * len(history) / sum(history["seconds"]),
    }
    if config.restore_best_weights and early.best_epoch is not None:
        # The final weights are the best epoch's: store them again, now with the final metrics.
        save_model(run_dir / BEST, model, **meta, epoch=metrics["best_epoch"], metrics=metrics)
    atomic_write_json(run_dir / METRICS, metrics)
    if verbose:
        if early.stopped_epoch is not None:
            print(f"Epoch {early.stopped_epoch + 1}: early stopping; restored the weights of epoch {metrics['best_epoch']}")
        print(f"val   loss {metrics['val']['loss']:.4f}  accuracy {metrics['val']['accuracy']:.4f}")
        print(f"test  loss {metrics['test']['loss']:.4f}  accuracy {metrics['test']['accuracy']:.4f}")
        print(f"Wrote {run_dir}/")
    from ..inspection.run_outputs import write_run_pictures  # late: matplotlib is needed only now

    write_run_pictures(run_dir, model, data.test, meta, verbose=verbose)  # loss.png, accuracy.png, report.html
    distributed.cleanup()
    return RunResult(run_dir, history, metrics)


def _schedule(config: TrainConfig, optimizer: torch.optim.Optimizer, n_train: int):
    """The learning-rate schedule, stepped after every batch (None: the tutorial's constant rate)."""
    if config.schedule != "onecycle":
        return None
    total = config.epochs * math.ceil(n_train / config.batch_size)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)


def resume(run_dir: str | Path, verbose: bool = True, **overrides) -> RunResult:
    """Continue a run after a crash, a kill or Ctrl-C, from its last completed epoch.

    The history, optimizer, early-stopping counters, best score and RNG states come back from the run's
    ``state.safetensors``, so the result equals an uninterrupted run (see ``fashion_cnn.training.resume``).

    Args:
        run_dir: the run directory (``runs/NAME``).
        verbose: print progress.
        **overrides: ``epochs`` (may be raised to train further), ``data_dir``, ``device``, ``threads``;
            any other setting must equal the run's own (from its ``config.json``).

    Example:
        >>> resume("runs/tutorial", epochs=30)  # doctest: +SKIP
    """
    config = resumed_config(run_dir, TrainConfig, overrides)
    remove_temporaries(run_dir)  # what a killed write left behind; the files it was replacing are intact
    if verbose:
        done = completed_epochs(run_dir)
        print(f"Resuming {run_dir} after epoch {done} of {config.epochs}" if done else f"{run_dir} has no completed epoch; starting it again")
    return train(config, verbose, resume_from=run_dir)
