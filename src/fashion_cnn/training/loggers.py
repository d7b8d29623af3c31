"""Send a run to TensorBoard and MLflow as it trains: ``fashion-cnn train --log tensorboard,mlflow``.

    fashion-cnn train --log tensorboard                       # event files in runs/NAME/tensorboard/
    fashion-cnn train --log tensorboard,mlflow                # ... and an MLflow run in runs/mlflow.db (SQLite)
    fashion-cnn train --log mlflow --mlflow-uri http://HOST:5000

Each logger is a ``Callback`` (a ``RunLogger``). It sends, from the main process only (rank 0 under torchrun):
at the start, the run's settings (its config.json) as hyper-parameters; after every epoch, the epoch's row of
the history (loss, accuracy, val_*, seconds) with images per second and the learning rate, at step = the epoch
number (1, 2, ...); at the end, the final metrics (metrics.json, under ``final/``), the pictures and, to MLflow,
the model file.

Resuming continues the same TensorBoard folder and MLflow run (its id is kept in the run's loggers.json) from
the epoch after the last one the tool received. Epochs a crash kept from it are sent from the restored history
(without the learning rate, which the history does not hold), and TensorBoard hides whatever it received
beyond the last epoch recorded (``purge_step``), so every step is there once.

A new logger is a ``RunLogger`` subclass in ``LOGGERS``; ``--log`` then accepts its name.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import time
from pathlib import Path
from typing import ClassVar

from ..errors import FashionCNNError, first_line
from ..rundir import MLFLOW_ARTIFACTS, MLFLOW_DB, TENSORBOARD, RunDir
from .callbacks import Callback

#: The metrics TensorBoard's HParams tab shows beside each run's settings.
HPARAM_METRICS = ("final/test_accuracy", "final/test_loss", "final/val_accuracy", "final/val_loss", "val_accuracy", "val_loss")


def logger_names(value: str | None) -> tuple[str, ...]:
    """The logger names of a ``--log`` value, checked: ``"tensorboard,mlflow"`` → ``("tensorboard", "mlflow")``.

    Example:
        >>> logger_names("tensorboard, mlflow"), logger_names(None)
        (('tensorboard', 'mlflow'), ())
    """
    if value is None:
        return ()
    if not isinstance(value, str):
        raise FashionCNNError(f"--log takes logger names separated by commas, like 'tensorboard,mlflow'; got {value!r}")
    names = tuple(dict.fromkeys(name.strip() for name in value.split(",")))
    for name in names:
        if name not in LOGGERS:
            raise FashionCNNError(
                f"unknown logger {name!r} in --log {value}; choose from: {', '.join(sorted(LOGGERS))} (several separated by commas)"
            )
    return names


def check_log(value: str | None, mlflow_uri: str | None = None) -> None:
    """Refuse, before any training, an unknown logger name, a logger whose extra is not installed, and
    ``--mlflow-uri`` without ``--log mlflow``."""
    names = logger_names(value)
    for name in names:
        LOGGERS[name].require()
    if mlflow_uri is not None and "mlflow" not in names:
        raise FashionCNNError("--mlflow-uri says where --log mlflow sends the run; add --log mlflow, or drop --mlflow-uri")


def epoch_scalars(row: dict, images_per_epoch: int | None = None, learning_rate: float | None = None) -> dict[str, float]:
    """What a logger sends for one row of the history: its numbers but the epoch (the step), with images per
    second and the learning rate where known.

    Example:
        >>> epoch_scalars({"epoch": 1, "loss": 0.5, "seconds": 2.0}, images_per_epoch=100, learning_rate=1e-3)
        {'loss': 0.5, 'seconds': 2.0, 'images_per_second': 50.0, 'learning_rate': 0.001}
    """
    scalars = {k: float(v) for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))}
    if images_per_epoch and row.get("seconds"):
        scalars["images_per_second"] = images_per_epoch / row["seconds"]
    if learning_rate is not None:
        scalars["learning_rate"] = float(learning_rate)
    return scalars


def final_scalars(metrics: dict, prefix: str = "final/") -> dict[str, float]:
    """The numbers of metrics.json (True/False as 1/0, None left out), nested names joined by ``_``, under ``prefix``.

    Example:
        >>> final_scalars({"test": {"loss": 0.25, "accuracy": 0.9}, "best_epoch": None, "stopped_early": False})
        {'final/test_loss': 0.25, 'final/test_accuracy': 0.9, 'final/stopped_early': 0.0}
    """
    scalars = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            scalars.update(final_scalars(value, f"{prefix}{key}_"))
        elif isinstance(value, (int, float)):
            scalars[prefix + key] = float(value)
    return scalars


def learning_rate(optimizer) -> float:
    """The learning rate the optimizer's next step uses (a schedule moves it after every batch)."""
    return float(optimizer.param_groups[0]["lr"])


class RunLogger(Callback):
    """A tracking tool that receives a run as it trains; a subclass says how (``open``, ``log_scalars``,
    ``log_results``, ``end``) and which extra brings its library.

    Args:
        run_dir: the run directory (``runs/NAME``); its config.json gives the hyper-parameters.
        images_per_epoch: training images per epoch, to log images per second (None: not logged).
    """

    name: ClassVar[str]
    extra: ClassVar[str]  # the extra of pyproject.toml that installs the library
    module: ClassVar[str]  # what must import for the logger to work
    options: ClassVar[tuple[str, ...]] = ()  # the TrainConfig settings it takes, by name

    def __init__(self, run_dir: str | os.PathLike, images_per_epoch: int | None = None):
        self.run, self.images_per_epoch = RunDir(run_dir), images_per_epoch
        self.active = False  # open, and no error since

    @classmethod
    def require(cls) -> None:
        """Import the library, or a one-line error naming the extra to install."""
        try:
            importlib.import_module(cls.module)
        except ImportError as e:
            missing = f"{e.name} is not installed" if e.name else first_line(e, 80)
            raise FashionCNNError(
                f"--log {cls.name} needs the {cls.extra} extra ({missing}): pip install 'fashion-cnn[{cls.extra}]'"
            ) from None

    # -- what a tool implements ---------------------------------------------------------------------------
    def open(self, hparams: dict) -> int:
        """Start the tool's run (or continue the one recorded in loggers.json); return the last epoch it holds."""
        raise NotImplementedError

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None: ...

    def log_results(self, step: int, scalars: dict[str, float], files: list[Path]) -> None: ...

    def end(self, status: str) -> None:
        """Close the tool's run: ``status`` is ``FINISHED``, ``FAILED`` or ``KILLED`` (Ctrl-C, SIGTERM)."""

    def where(self) -> str:
        """Where the run went, and how to look at it (one line)."""
        return self.name

    # -- the callback -------------------------------------------------------------------------------------
    def on_train_begin(self) -> None:
        if not self.trainer.is_main:
            return
        logged = self.open(self.run.config() or {})
        self.active = True
        for row in self.trainer.history.epochs:  # restored by ResumeState (an earlier callback) when resuming
            if row["epoch"] > logged:
                self._send(row, None)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.active:
            self._send(self.trainer.history.epochs[-1], learning_rate(self.trainer.optimizer))

    def _send(self, row: dict, lr: float | None) -> None:
        self._guarded(f"epoch {row['epoch']}", self.log_scalars, int(row["epoch"]), epoch_scalars(row, self.images_per_epoch, lr))

    def log_final(self, metrics: dict, files: list[Path]) -> None:
        """After the last epoch: metrics.json's numbers (at the last epoch's step) and the run's files."""
        if self.active:
            self._guarded("the final metrics", self.log_results, int(metrics["epochs_run"]), final_scalars(metrics), files)

    def close(self, status: str) -> None:
        if self.active:
            self._guarded("the end of the run", self.end, status)
            self.active = False

    def _guarded(self, what: str, call, *args) -> None:
        """A tool that fails once it is open (a tracking server gone, a full disk) stops logging; training goes on."""
        try:
            call(*args)
        except Exception as e:
            self.active = False
            print(
                f"fashion-cnn: warning: --log {self.name} stopped at {what} ({type(e).__name__}: {first_line(e, 120)}); "
                f"training goes on, and {self.run}/history.json keeps every epoch",
                file=sys.stderr,
            )


class TensorBoardLogger(RunLogger):
    """TensorBoard's event files in ``runs/NAME/tensorboard/``, through ``torch.utils.tensorboard``'s writer: every
    epoch's scalars, the settings in the HParams tab, the final metrics under ``final/``, the pictures (as their
    PNG files) under ``pictures/``.

        tensorboard --logdir runs        # every run of runs/ side by side
    """

    name, extra, module = "tensorboard", "tensorboard", "torch.utils.tensorboard"

    def open(self, hparams: dict) -> int:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        folder = self.run.tensorboard
        logged = int(self.run.loggers().get(self.name, {}).get("epochs_logged", 0))
        # A folder written before: TensorBoard hides what it holds from step logged + 1 on (what a crash left after
        # the last epoch recorded in loggers.json), so those epochs, sent again, are there once.
        self.writer = SummaryWriter(str(folder), purge_step=logged + 1 if folder.is_dir() else None)
        if not logged:
            simple = {k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v) for k, v in hparams.items()}
            experiment, start, self.end_summary = hparams_summaries(simple, dict.fromkeys(HPARAM_METRICS, 0.0))
            self.writer.file_writer.add_summary(experiment)
            self.writer.file_writer.add_summary(start)
        else:
            self.end_summary = hparams_summaries({}, {})[2]
        self.writer.flush()
        return logged

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()
        self.run.write_logger(self.name, {"log_dir": TENSORBOARD, "epochs_logged": step})

    def log_results(self, step: int, scalars: dict[str, float], files: list[Path]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        for path in files:
            if path.suffix == ".png" and path.is_file():
                self.writer.file_writer.add_summary(png_summary(f"pictures/{path.stem}", path.read_bytes()), step)
        self.writer.flush()

    def end(self, status: str) -> None:
        if status == "FINISHED":  # the HParams tab counts a run without it as still running
            self.writer.file_writer.add_summary(self.end_summary)
        self.writer.close()

    def where(self) -> str:
        return f"TensorBoard: {self.run.tensorboard} (look: tensorboard --logdir {self.run.path.parent})"


def png_summary(tag: str, png: bytes):
    """A TensorBoard image summary holding the PNG file's own bytes (nothing re-encoded)."""
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    with Image.open(io.BytesIO(png)) as image:
        width, height, channels = image.width, image.height, len(image.getbands())
    picture = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=picture)])


class MLflowLogger(RunLogger):
    """An MLflow run in experiment ``fashion-cnn`` (``$MLFLOW_EXPERIMENT_NAME`` to change it), through
    ``MlflowClient``: the settings as parameters, every epoch's metrics, the final metrics under ``final/``, and
    as artifacts the model file (``model/``), the pictures (``pictures/``), report.html, metrics.json and config.json.

    The store is ``--mlflow-uri``, else ``$MLFLOW_TRACKING_URI``, else SQLite in the runs folder
    (``runs/mlflow.db``): every run of that folder in one store, to compare in the MLflow UI. A SQLite store keeps
    the artifacts of the experiment it creates in ``mlartifacts/`` beside its database file. MLflow 3 refuses a
    ``file:`` store unless ``MLFLOW_ALLOW_FILE_STORE=true``.

    Args:
        mlflow_uri: the tracking URI (``sqlite:///PATH``, ``http://HOST:5000``, ``databricks``...).
    """

    name, extra, module = "mlflow", "mlflow", "mlflow.tracking"
    options = ("mlflow_uri",)

    def __init__(self, run_dir: str | os.PathLike, images_per_epoch: int | None = None, mlflow_uri: str | None = None):
        super().__init__(run_dir, images_per_epoch)
        self.mlflow_uri = mlflow_uri

    def open(self, hparams: dict) -> int:
        from mlflow.tracking import MlflowClient

        default = self.run.path.parent.resolve()
        uri = self.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default / MLFLOW_DB}"
        try:
            with _quiet("mlflow"):  # creating a SQLite store logs its migrations at INFO level
                self.client, self.uri = MlflowClient(tracking_uri=uri), uri
                logged = self._continue(hparams)
                if logged is None:
                    self._start(hparams, _artifacts_beside(uri))
                    logged = 0
        except Exception as e:  # whatever the store: one line saying which, and why
            why = f"{type(e).__name__}: {first_line(e, 300)}"
            if "MLFLOW_ALLOW_FILE_STORE" in str(e):  # MLflow 3's paragraph on its file store, in short
                why = "MLflow 3 refuses a file store unless MLFLOW_ALLOW_FILE_STORE=true; it prefers sqlite:///PATH/mlflow.db"
            raise FashionCNNError(f"cannot log to MLflow at {uri} ({why}); pass another --mlflow-uri, or drop --log mlflow") from None
        return logged

    def _continue(self, hparams: dict) -> int | None:
        """The last epoch of the run loggers.json names, continued; None when there is none in this store."""
        from mlflow.entities import Param

        record = self.run.loggers().get(self.name, {})
        if record.get("tracking_uri") != self.uri or not record.get("run_id"):
            return None
        try:
            found = self.client.get_run(record["run_id"])
        except Exception:  # deleted from the store for good
            return None
        if found.info.lifecycle_stage != "active":
            return None
        self.run_id = found.info.run_id
        self.client.update_run(self.run_id, status="RUNNING")
        # Parameters never change in MLflow: the new ones are added, a changed one (--epochs raised) becomes a tag.
        params = {k: _text(v) for k, v in hparams.items()}
        new = [Param(k, v) for k, v in params.items() if k not in found.data.params]
        for start in range(0, len(new), 100):
            self.client.log_batch(self.run_id, params=new[start : start + 100])
        for k, v in params.items():
            if k in found.data.params and found.data.params[k] != v:
                self.client.set_tag(self.run_id, f"resumed.{k}", v)
        # log_batch sends an epoch's metrics in one transaction: the steps of "loss" are the epochs the store holds.
        return max((m.step for m in self.client.get_metric_history(self.run_id, "loss")), default=0)

    def _start(self, hparams: dict, artifact_location: str | None) -> None:
        from mlflow.entities import Param

        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "fashion-cnn"
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name, artifact_location=artifact_location)
        started = self.client.create_run(
            experiment_id, run_name=self.run.path.name, tags={"fashion_cnn.run_dir": str(self.run.path.resolve())}
        )
        self.run_id = started.info.run_id
        params = [Param(k, _text(v)) for k, v in hparams.items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters in one batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        self.run.write_logger(self.name, {"tracking_uri": self.uri, "experiment_id": experiment_id, "run_id": self.run_id})

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in scalars.items()])

    def log_results(self, step: int, scalars: dict[str, float], files: list[Path]) -> None:
        self.log_scalars(step, scalars)
        for path in files:
            if path.is_file():
                folder = {".png": "pictures", ".safetensors": "model"}.get(path.suffix)
                self.client.log_artifact(self.run_id, str(path), folder)

    def end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)

    def where(self) -> str:
        look = f"mlflow ui --backend-store-uri {self.uri}" if self.uri.startswith("sqlite:") else self.uri
        return f"MLflow: run {self.run_id} in {self.uri} (look: {look})"


def _artifacts_beside(uri: str) -> str | None:
    """A SQLite store's artifact folder for a new experiment: ``mlartifacts/`` beside the database file (MLflow's own
    default is ``./mlruns`` in whatever folder training starts from). None for other stores: theirs decides."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix + ":memory:":
        return None
    return (Path(uri[len(prefix) :]).resolve().parent / MLFLOW_ARTIFACTS).as_uri()


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


@contextlib.contextmanager
def _quiet(logger: str):
    """A library's INFO lines (``Creating initial MLflow database tables...``) kept off a ``--quiet`` run's stderr."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


#: ``--log`` names → logger classes.
LOGGERS: dict[str, type[RunLogger]] = {"tensorboard": TensorBoardLogger, "mlflow": MLflowLogger}


class RunLoggers:
    """The loggers a ``--log`` value names, as ``fit`` callbacks; ``log_final`` sends the results, and leaving the
    ``with`` block ends each tool's run as the block ended (``FINISHED``; ``KILLED`` by Ctrl-C; else ``FAILED``).

    Args:
        names: the ``--log`` value (``"tensorboard,mlflow"``; None: no logger).
        run_dir: the run directory.
        images_per_epoch: training images per epoch.
        **options: the loggers' settings (``mlflow_uri``); each takes those in its ``options``.

    Example::

        with RunLoggers("tensorboard", run, images_per_epoch=len(train_set)) as loggers:
            fit(model, train_set, val_set, callbacks=[*loggers])
            loggers.log_final(metrics, [run / "loss.png"])
    """

    def __init__(self, names: str | None, run_dir: str | os.PathLike, images_per_epoch: int | None = None, **options):
        self.loggers = [
            LOGGERS[name](run_dir, images_per_epoch, **{k: v for k, v in options.items() if k in LOGGERS[name].options})
            for name in logger_names(names)
        ]

    def __iter__(self):
        return iter(self.loggers)

    def __len__(self) -> int:
        return len(self.loggers)

    def log_final(self, metrics: dict, files: list[Path]) -> None:
        for logger in self.loggers:
            logger.log_final(metrics, files)

    def where(self) -> list[str]:
        """One line per logger that received the run."""
        return [logger.where() for logger in self.loggers if logger.active]

    def __enter__(self) -> RunLoggers:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        # Ctrl-C reaches here as the one-line error it was turned into (raised from it, so it is the context).
        stopped = isinstance(error, KeyboardInterrupt) or isinstance(getattr(error, "__context__", None), KeyboardInterrupt)
        status = "FINISHED" if error is None else "KILLED" if stopped else "FAILED"
        for logger in self.loggers:
            logger.close(status)
