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

from ..data.dataset import load_dataset, train_val_split
from ..data.registry import get_spec
from ..devices import resolve_device, set_threads
from ..errors import FashionCNNError
from ..files import atomic_write_json, atomic_write_text
from ..inference.predict import evaluate
from ..models.files import BEST, save_model
from ..models.registry import build_model, model_names
from ..models.summary import summary
from .callbacks import EarlyStopping, ModelCheckpoint
from .loop import History, check_hyperparameters, fit
from .run_dir import CONFIG, METRICS, SUMMARY, RunWriter, new_run_dir


@dataclass
class TrainConfig:
    """Every setting of a training run; the defaults are the tutorial's.

    Args:
        dataset: ``fashion-mnist``, ``mnist`` or ``kmnist``.
        data_dir: local folder with the IDX files (default ``$FASHION_CNN_DATA``, the cache, or download).
        model: a registered architecture name.
        epochs: the most epochs (20).
        batch_size: images per step (32).
        lr: Adam's learning rate (0.001).
        adam_epsilon: Adam's epsilon, Keras' 1e-7.
        val_fraction: share of the training set held out for validation (0.2 → 48,000 / 12,000).
        split_seed: ``random_state`` of the split (42).
        seed: seeds initialisation, shuffling and dropout.
        patience: early-stopping patience in epochs (2); the best model by ``monitor`` is restored.
        monitor: the metric for checkpointing and early stopping (``val_loss``).
        restore_best_weights: end with the best epoch's weights (True).
        limit: train on only the first N images of the training split (quick trials), or None.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
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
    adam_epsilon: float = 1e-7
    val_fraction: float = 0.2
    split_seed: int = 42
    seed: int = 0
    patience: int = 2
    monitor: str = "val_loss"
    restore_best_weights: bool = True
    limit: int | None = None
    device: str = "auto"
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


def train(config: TrainConfig, verbose: bool = True) -> RunResult:
    """Run the whole tutorial and write a run directory (see ``fashion_cnn.training.run_dir``)."""
    config.validate()
    device = resolve_device(config.device)  # also refuses an unknown or absent device before any work
    set_threads(config.threads)
    data = load_dataset(config.dataset, config.data_dir)
    train_set, val_set = train_val_split(data.train, config.val_fraction, config.split_seed)
    if config.limit:
        train_set = train_set.subset(slice(0, config.limit))
    torch.manual_seed(config.seed)
    model = build_model(config.model, num_classes=len(data.classes), image_size=data.train.images.shape[1]).to(device)
    run_dir = new_run_dir(config.runs_dir, config.name, config.model)
    atomic_write_json(run_dir / CONFIG, {**asdict(config), "device": str(device), "threads": torch.get_num_threads()})
    atomic_write_text(run_dir / SUMMARY, summary(model, print_fn=print if verbose else (lambda s: None)) + "\n")
    meta = {
        "classes": list(data.classes),
        "classes_ko": list(data.classes_ko),
        "dataset": {"name": data.name, "val_fraction": config.val_fraction, "split_seed": config.split_seed},
        "input": {"channels": 1, "height": data.train.images.shape[1], "width": data.train.images.shape[2], "scale": 1 / 255},
    }
    if verbose:
        print(f"Training on {len(train_set):,} images, validating on {len(val_set):,} ({device}); run directory {run_dir}")
    early = EarlyStopping(config.monitor, patience=config.patience, restore_best_weights=config.restore_best_weights)
    callbacks = [ModelCheckpoint(run_dir / BEST, config.monitor, save_best_only=True), early, RunWriter(run_dir)]
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, eps=config.adam_epsilon)
    started = time.perf_counter()
    history = fit(model, train_set, val_set, epochs=config.epochs, batch_size=config.batch_size, optimizer=optimizer,
                  callbacks=callbacks, seed=config.seed, verbose=verbose, meta=meta)
    train_seconds = time.perf_counter() - started
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
    return RunResult(run_dir, history, metrics)
