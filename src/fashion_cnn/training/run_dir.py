"""A run directory, ``runs/<name>/``: everything one training run leaves behind.

    config.json       the resolved configuration (every default written out)
    summary.txt       the model summary
    history.csv/json  one row per epoch: loss, accuracy, val_loss, val_accuracy, seconds
    best.safetensors  the best model by val_loss (the tutorial's best-cnn-model)
    last.safetensors  the model after the last completed epoch
    metrics.json      final validation and test loss/accuracy, epochs run, timings
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from ..errors import FashionCNNError
from ..files import atomic_write_json, atomic_write_text
from .callbacks import Callback

CONFIG, HISTORY_CSV, HISTORY_JSON, METRICS, SUMMARY = "config.json", "history.csv", "history.json", "metrics.json", "summary.txt"
LAST = "last.safetensors"


def new_run_dir(runs_dir: str | Path, name: str | None, prefix: str) -> Path:
    """Create ``runs_dir/name`` (default ``<prefix>-<date>-<time>``); refuse to reuse an existing run."""
    runs_dir = Path(runs_dir)
    if name is None:
        name = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
        base, k = name, 2
        while (runs_dir / name).exists():
            name, k = f"{base}-{k}", k + 1
    if not name or "/" in name or name in (".", ".."):
        raise FashionCNNError(f"run name {name!r} is not a plain folder name; pass --name like 'tutorial'")
    path = runs_dir / name
    if path.exists() and any(path.iterdir()):
        raise FashionCNNError(f"run directory {path} already exists and is not empty; choose another --name or delete it")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FashionCNNError(f"cannot create run directory {path} ({e.strerror}); choose another --runs-dir") from None
    return path


def read_history(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / HISTORY_JSON
    if not path.is_file():
        raise FashionCNNError(f"{run_dir} has no {HISTORY_JSON}; pass a run directory written by 'fashion-cnn train'")
    return json.loads(path.read_text())


class RunWriter(Callback):
    """After every epoch: rewrite the history files and the last model, atomically."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if not self.trainer.is_main:
            return
        rows = self.trainer.history.epochs
        atomic_write_json(self.run_dir / HISTORY_JSON, rows)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.run_dir / HISTORY_CSV, buf.getvalue())
        self.trainer.save(self.run_dir / LAST, epoch=epoch + 1, metrics=dict(logs))
