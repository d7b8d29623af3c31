"""A run directory, ``runs/NAME/``: the one place that names its files and reads them back.

    runs/tutorial/
      config.json        the resolved configuration (every default written out)
      summary.txt        the model summary
      history.csv/json   one row per epoch: loss, accuracy, val_loss, val_accuracy, seconds
      best.safetensors   the best model by val_loss (the tutorial's best-cnn-model)
      last.safetensors   the model after the last completed epoch
      state.safetensors  everything ``fashion-cnn train --resume`` needs to continue
      metrics.json       final validation and test loss/accuracy, epochs run, timings
      environment.json   versions, CPU and GPU the run was trained on
      loss.png, accuracy.png, report.html   for people to look at
      confusion.png, top-losses.png         written by ``fashion-cnn evaluate --report --top-losses N``
      model.onnx, model.int8.onnx, model.torchscript.pt   written by ``fashion-cnn export``

Everything else asks this module for a file's path (``RunDir(path).best``) or its parsed content
(``RunDir(path).config()``); no other module spells a file name of a run.

Example:
    >>> run = RunDir.create(tmp, "demo", prefix="tutorial-cnn")
    >>> run.write_config({"epochs": 3}); run.config()["epochs"]
    3
    >>> run.best.name
    'best.safetensors'
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

from .errors import FashionCNNError
from .files import atomic_write_json, atomic_write_text

CONFIG = "config.json"
SUMMARY = "summary.txt"
HISTORY_CSV, HISTORY_JSON = "history.csv", "history.json"
BEST, LAST, STATE = "best.safetensors", "last.safetensors", "state.safetensors"
METRICS = "metrics.json"
ENVIRONMENT = "environment.json"
LOSS_PNG, ACCURACY_PNG, REPORT = "loss.png", "accuracy.png", "report.html"
CONFUSION_PNG, TOP_LOSSES_PNG = "confusion.png", "top-losses.png"
ONNX, ONNX_INT8, TORCHSCRIPT = "model.onnx", "model.int8.onnx", "model.torchscript.pt"


class RunDir:
    """The files of one run directory.

    Args:
        path: the run directory (``runs/NAME``); it need not exist yet.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str | None, prefix: str) -> RunDir:
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
        return cls(path)

    @classmethod
    def existing(cls, path: str | os.PathLike) -> RunDir:
        """A run directory that must already exist (as ``report``, ``plot-history`` and ``--resume`` need)."""
        run = cls(path)
        if not run.path.is_dir():
            raise FashionCNNError(f"{run.path} is not a folder; pass a run directory written by 'fashion-cnn train'")
        return run

    # -- paths --------------------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def state(self) -> Path:
        return self.path / STATE

    @property
    def report(self) -> Path:
        return self.path / REPORT

    # -- reading ------------------------------------------------------------------------------------------
    def _json(self, name: str, required: bool):
        path = self.path / name
        if not path.is_file():
            if required:
                raise FashionCNNError(f"{self.path} has no {name}; pass a run directory written by 'fashion-cnn train'")
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise FashionCNNError(f"{path} is not readable JSON ({e}); the run directory is damaged, retrain or restore it") from None

    def config(self, required: bool = False) -> dict | None:
        """The run's ``config.json`` (None when absent, unless ``required``)."""
        return self._json(CONFIG, required)

    def history(self, required: bool = True) -> list[dict] | None:
        """The rows of ``history.json``, one per completed epoch."""
        return self._json(HISTORY_JSON, required)

    def metrics(self, required: bool = False) -> dict | None:
        return self._json(METRICS, required)

    def environment(self) -> dict | None:
        return self._json(ENVIRONMENT, False)

    def finished_at(self) -> str | None:
        """When the run last wrote its metrics (else its history), as ``YYYY-MM-DD HH:MM``."""
        for name in (METRICS, HISTORY_JSON):
            path = self.path / name
            if path.is_file():
                return time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        return None

    # -- writing (atomically) -----------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.path / CONFIG, config)

    def write_summary(self, text: str) -> None:
        atomic_write_text(self.path / SUMMARY, text)

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.path / METRICS, metrics)

    def write_environment(self, environment: dict) -> None:
        atomic_write_json(self.path / ENVIRONMENT, environment)

    def write_history(self, rows: list[dict]) -> None:
        """``history.json`` and ``history.csv`` (one row per epoch, the columns of the first row)."""
        atomic_write_json(self.path / HISTORY_JSON, rows)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path / HISTORY_CSV, buf.getvalue())
