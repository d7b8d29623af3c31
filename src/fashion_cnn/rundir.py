"""A run directory, ``runs/NAME/``: the one place that names its files and reads them back.

    runs/tutorial/
      config.json        the resolved configuration (every default written out)
      summary.txt        the model summary
      history.csv/json   one row per epoch: loss, accuracy, val_loss, val_accuracy, seconds
      best.safetensors   the best model by val_loss (the tutorial's best-cnn-model)
      last.safetensors   the model after the last completed epoch
      state.safetensors  everything ``fashion-cnn train --resume`` needs to continue
      metrics.json       final validation and test loss/accuracy, epochs run, timings, when it finished
      environment.json   versions, CPU and GPU the run was trained on
      loss.png, accuracy.png, report.html   for people to look at
      confusion.png, top-losses.png         written by ``fashion-cnn evaluate --report --top-losses N``
      model.onnx, model.int8.onnx, model.torchscript.pt   written by ``fashion-cnn export``
      tensorboard/       TensorBoard's event files (``train --log tensorboard``)
      loggers.json       where each ``--log`` logger sends the run (its MLflow run id) and how far it got
    runs/mlflow.db, runs/mlartifacts/   the default MLflow store of the runs in runs/ (``train --log mlflow``)

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

import contextlib
import csv
import io
import json
import os
import re
import time
from datetime import datetime
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
KERAS = "model.keras"
TENSORBOARD, LOGGERS = "tensorboard", "loggers.json"
#: In the runs folder, beside the run directories: the MLflow store they share by default.
MLFLOW_DB, MLFLOW_ARTIFACTS = "mlflow.db", "mlartifacts"
#: Held (with the process id in it) while ``train`` or ``train --resume`` writes the run.
LOCK = "train.lock"
#: Run names are plain folder names of at most this many characters.
MAX_NAME = 100


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
        check_run_name(name)
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

    @contextlib.contextmanager
    def lock(self):
        """Hold ``train.lock`` while training writes the run, so a second ``--resume`` of it is refused.

        A lock left by a process that no longer runs (killed) is taken over.
        """
        path = self.path / LOCK
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                holder = _lock_holder(path)
                if holder is not None:
                    raise FashionCNNError(
                        f"{self.path} is being trained by another fashion-cnn process (PID {holder}); wait for it to end "
                        f"or stop it, then run 'fashion-cnn train --resume {self.path}' if it did not finish"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # stale: its process is gone
        try:
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
        except OSError as e:
            path.unlink()
            raise FashionCNNError(f"cannot write {path} ({e.strerror or e}); free some space or choose a writable --runs-dir") from None
        try:
            yield self
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

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

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

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

    def loggers(self) -> dict:
        """``loggers.json``: what each ``--log`` logger recorded of this run (empty when none has)."""
        return self._json(LOGGERS, False) or {}

    def finished(self) -> datetime | None:
        """When the run finished: the time ``train`` recorded in metrics.json (``finished_at``), else when its
        metrics (else its history) file was last written, in local time; None for a run with neither.

        The recorded time survives a copy of the folder (``cp -r`` gives the files new times); older runs have none.
        """
        with contextlib.suppress(FashionCNNError, KeyError, TypeError, ValueError):
            return datetime.fromisoformat(self.metrics()["finished_at"]).astimezone()
        for name in (METRICS, HISTORY_JSON):
            path = self.path / name
            if path.is_file():
                return datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        return None

    def finished_at(self) -> str | None:
        """``finished()`` as ``YYYY-MM-DD HH:MM``."""
        when = self.finished()
        return when.strftime("%Y-%m-%d %H:%M") if when else None

    def training_pid(self) -> int | None:
        """The id of the live process that holds ``train.lock`` (training the run now), else None (a lock left
        by a killed process does not count)."""
        path = self.path / LOCK
        return _lock_holder(path) if path.is_file() else None

    # -- writing (atomically) -----------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.path / CONFIG, config)

    def write_summary(self, text: str) -> None:
        atomic_write_text(self.path / SUMMARY, text)

    def write_metrics(self, metrics: dict) -> None:
        atomic_write_json(self.path / METRICS, metrics)

    def write_environment(self, environment: dict) -> None:
        atomic_write_json(self.path / ENVIRONMENT, environment)

    def write_logger(self, name: str, record: dict) -> None:
        """Set logger ``name``'s entry of ``loggers.json`` (the other loggers' entries stay)."""
        atomic_write_json(self.path / LOGGERS, {**self.loggers(), name: record})

    def write_history(self, rows: list[dict]) -> None:
        """``history.json`` and ``history.csv`` (one row per epoch, the columns of the first row)."""
        atomic_write_json(self.path / HISTORY_JSON, rows)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path / HISTORY_CSV, buf.getvalue())


def check_run_name(name: str | None) -> None:
    """Refuse a run name that is not a plain, short folder name (None: a name is made from the date)."""
    if name is None:
        return
    if not name or name in (".", "..") or "/" in name or "\\" in name or len(name) > MAX_NAME or not re.fullmatch(r"[^\x00-\x1f]+", name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise FashionCNNError(f"run name {shown!r} is not a plain folder name of 1 to {MAX_NAME} characters; pass --name like 'tutorial'")


def _lock_holder(path: Path) -> int | None:
    """The id of the live process holding the lock file ``path``, or None when it is gone (or unreadable)."""
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, another user's
    return pid
