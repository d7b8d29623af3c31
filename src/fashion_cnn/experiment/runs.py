"""The runs ``train`` has written, side by side: one row per run, and what differs between a few of them.

    fashion-cnn runs                        # every run under runs/, oldest first
    fashion-cnn runs ~/runs --sort test_accuracy --json
    fashion-cnn compare runs/tutorial runs/fast -o compare.png

``list_runs`` reads each run directory's config.json, history.json, metrics.json and environment.json (never its
model files) into a ``RunInfo``; a folder that is no run is skipped, one that is still training, stopped before
its final metrics or damaged gets a row that says so. ``compare_runs`` adds the settings that differ between
runs, for the curves of ``fashion_cnn.inspection.plot_runs``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

from ..errors import FashionCNNError, first_line
from ..rundir import CONFIG, HISTORY_JSON, LOCK, METRICS, RunDir
from ..training.callbacks import MonitorCallback

#: What a run's ``status`` may be.
STATUSES = ("finished", "training", "incomplete", "damaged")
#: Columns sorted highest first (the best run on top); every other column sorts lowest (or A, or oldest) first.
HIGHEST_FIRST = ("best_val_accuracy", "test_accuracy")
#: Settings every run has its own of: the run's name is how each is labelled already.
OWN_SETTINGS = ("name",)


@dataclass(frozen=True)
class RunInfo:
    """One run directory as ``fashion-cnn runs`` shows it; None where the run has not recorded it (yet).

    Args:
        name: the folder's name.
        path: the folder.
        status: ``finished`` (metrics.json written), ``training`` (a live process holds train.lock),
            ``incomplete`` (stopped before its final metrics: ``train --resume`` finishes it) or ``damaged``.
        detail: why a run is not finished (one line), else None.
        model, recipe: config.json's ``model`` and ``recipe``.
        epochs: epochs completed (history.json); max_epochs: config.json's ``epochs``.
        best_epoch: the best epoch by the run's ``monitor`` (metrics.json's, else found in history.json).
        best_val_loss, best_val_accuracy: that epoch's validation loss and accuracy, from history.json.
        test_loss, test_accuracy: metrics.json's final test metrics.
        seconds: training time, the sum of the epochs' ``seconds`` in history.json (a resumed run's parts too).
        precision: the arithmetic used (config.json's ``precision_used``: fp32 or bf16).
        cpu: the CPU's name (config.json, else environment.json).
        date: when it finished (``RunDir.finished``), ISO 8601 with the UTC offset.
    """

    name: str
    path: str
    status: str
    detail: str | None = None
    model: str | None = None
    recipe: str | None = None
    epochs: int | None = None
    max_epochs: int | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    best_val_accuracy: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    seconds: float | None = None
    precision: str | None = None
    cpu: str | None = None
    date: str | None = None

    def as_dict(self) -> dict:
        """Every field, always the same keys (``fashion-cnn runs --json`` prints a list of these)."""
        return asdict(self)


#: The columns ``list_runs`` can sort by: every field of ``RunInfo`` but the path and the detail.
COLUMNS = tuple(f.name for f in fields(RunInfo) if f.name not in ("path", "detail"))


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder that ``train`` has begun writing (config.json, history.json, metrics.json or
    train.lock in it); anything else in a runs folder is not a run."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in (CONFIG, HISTORY_JSON, METRICS, LOCK))


def read_run(path: str | os.PathLike) -> RunInfo:
    """What ``path``'s files say about the run; never raises for a damaged or unfinished run (its row says so).

    Example:
        >>> info = read_run(run_dir)
        >>> info.status, info.model, info.epochs, info.best_epoch is not None
        ('finished', 'tutorial-cnn', 3, True)
    """
    run = RunDir(path)
    name, where = run.path.name, str(run.path)
    pid = run.training_pid()
    try:
        config, history, metrics, environment = _files(run)
    except FashionCNNError as e:
        return RunInfo(name, where, "training" if pid else "damaged", f"PID {pid}" if pid else first_line(e, 200))
    config, metrics = config or {}, metrics or {}
    epochs = len(history) if history is not None else None
    best = _int(metrics.get("best_epoch")) if metrics else _best_epoch(history or [], config.get("monitor"))
    best_row = next((r for r in history or [] if r.get("epoch") == best), {})
    if pid:
        status, detail = "training", f"PID {pid}"
    elif metrics:
        status, detail = "finished", None
    else:
        done = f"stopped after epoch {epochs}" if epochs else "no epoch completed"
        status, detail = "incomplete", f"no {METRICS} ({done}): finish it with 'fashion-cnn train --resume {where}'"
    when = run.finished()
    seconds = [_number(r.get("seconds")) for r in history or []]
    return RunInfo(
        name,
        where,
        status,
        detail,
        model=_text(config.get("model")),
        recipe=_text(config.get("recipe")),
        epochs=epochs,
        max_epochs=_int(config.get("epochs")),
        best_epoch=best,
        best_val_loss=_number(best_row.get("val_loss")),
        best_val_accuracy=_number(best_row.get("val_accuracy")),
        test_loss=_number(_dict(metrics.get("test")).get("loss")),
        test_accuracy=_number(_dict(metrics.get("test")).get("accuracy")),
        seconds=sum(seconds) if seconds and None not in seconds else None,
        precision=_text(config.get("precision_used", config.get("precision"))),
        cpu=_text(config.get("cpu") or _dict(environment).get("cpu")),
        date=when.isoformat(timespec="seconds") if when else None,
    )


def list_runs(runs_dir: str | os.PathLike = "runs", sort: str = "date", reverse: bool = False) -> list[RunInfo]:
    """One ``RunInfo`` per run directory in ``runs_dir`` (other folders and files are skipped), sorted.

    Args:
        runs_dir: the folder that holds the runs (``train``'s ``--runs-dir``, default ``runs``).
        sort: one of ``COLUMNS``; accuracies sort highest first, the rest lowest (or oldest, or A) first;
            a run without the value comes last.
        reverse: the other way round (a run without the value still comes last).

    Example:
        >>> [(r.name, r.status) for r in list_runs(run_dir.parent)]
        [('tutorial', 'finished')]
    """
    if sort not in COLUMNS:
        raise FashionCNNError(f"cannot sort by {sort!r}; choose one of: {', '.join(COLUMNS)}")
    folder = Path(runs_dir)
    if not folder.is_dir():
        raise FashionCNNError(f"{folder} is not a folder; pass the folder that holds your run directories (train's --runs-dir)")
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        raise FashionCNNError(f"cannot list {folder} ({e.strerror or e}); pass a folder you can read") from None
    if not any(is_run(p) for p in entries) and is_run(folder):
        raise FashionCNNError(f"{folder} is a run directory itself; pass the folder that holds it: fashion-cnn runs {folder.parent}")
    return sort_runs([read_run(p) for p in entries if is_run(p)], sort, reverse)


def sort_runs(runs: list[RunInfo], column: str, reverse: bool = False) -> list[RunInfo]:
    """``runs`` ordered by ``column`` as ``list_runs`` orders them (ties keep their order: by name)."""
    if column not in COLUMNS:
        raise FashionCNNError(f"cannot sort by {column!r}; choose one of: {', '.join(COLUMNS)}")
    known = [r for r in runs if getattr(r, column) is not None]
    key = (lambda r: datetime.fromisoformat(r.date).timestamp()) if column == "date" else (lambda r: getattr(r, column))
    descending = (column in HIGHEST_FIRST) != reverse
    return sorted(known, key=key, reverse=descending) + [r for r in runs if getattr(r, column) is None]


@dataclass(frozen=True)
class Comparison:
    """What ``compare_runs`` found: the runs, their labels, histories and differing settings, in the order given.

    Args:
        runs: each run's ``RunInfo``.
        labels: the name each is shown by (its folder's name; its path where two runs share a name).
        histories: each run's rows of history.json, by label.
        settings: each config.json key whose value is not the same in every run, with the runs' values in order
            (None where a run's config.json lacks the key).
    """

    runs: list[RunInfo]
    labels: list[str]
    histories: dict[str, list[dict]]
    settings: dict[str, list]


def compare_runs(paths: list[str | os.PathLike]) -> Comparison:
    """Two or more run directories side by side: their rows, histories, and the settings that differ.

    Example:
        >>> import shutil; other = shutil.copytree(run_dir, tmp / "other")
        >>> c = compare_runs([run_dir, other])
        >>> c.labels, list(c.settings), len(c.histories["other"])
        (['tutorial', 'other'], [], 3)
    """
    if len(paths) < 2:
        raise FashionCNNError(
            f"compare needs at least two run directories, got {len(paths)}; pass them like: fashion-cnn compare runs/a runs/b"
        )
    seen: dict[Path, str] = {}
    for p in paths:
        if not is_run(p):
            raise FashionCNNError(
                f"{p} is not a run directory (no {CONFIG} or {HISTORY_JSON}); pass folders written by 'fashion-cnn train'"
            )
        real = Path(p).resolve()
        if real in seen:
            raise FashionCNNError(f"{p} is given twice (also as {seen[real]}); pass each run once")
        seen[real] = str(p)
    runs = [read_run(p) for p in paths]
    names = [r.name for r in runs]
    labels = [r.name if names.count(r.name) == 1 else r.path for r in runs]
    configs, histories = [], {}
    for run, label in zip(runs, labels):
        if run.status == "damaged":
            raise FashionCNNError(f"{run.path} cannot be compared: {run.detail}")
        config, history, _, _ = _files(RunDir(run.path))
        if not history:
            raise FashionCNNError(f"{run.path} has no completed epoch yet, so it has no curves; compare it after its first epoch")
        configs.append(config or {})
        histories[label] = history
    return Comparison(runs, labels, histories, differing_settings(configs))


def differing_settings(configs: list[dict]) -> dict[str, list]:
    """The keys of ``configs`` (each run's config.json) whose values are not all equal, with every run's value;
    a key a run lacks counts as None there (an older run's file). ``name``, every run's own, is left out.

    Example:
        >>> differing_settings([{"lr": 0.001, "epochs": 3}, {"lr": 0.003, "epochs": 3}])
        {'lr': [0.001, 0.003]}
    """
    keys = dict.fromkeys(k for c in configs for k in c if k not in OWN_SETTINGS)
    return {k: [c.get(k) for c in configs] for k in keys if any(c.get(k) != configs[0].get(k) for c in configs)}


def _files(run: RunDir) -> tuple[dict | None, list[dict] | None, dict | None, dict | None]:
    """config, history, metrics and environment, each None when absent; a FashionCNNError naming the file
    for one that is not readable JSON of the right shape."""
    config, history, metrics = run.config(), run.history(required=False), run.metrics()
    environment = run.environment()
    for value, name, kind in ((config, CONFIG, dict), (history, HISTORY_JSON, list), (metrics, METRICS, dict)):
        if value is not None and not isinstance(value, kind):
            raise FashionCNNError(f"{run.file(name)} is not a JSON {'object' if kind is dict else 'list'}; the run directory is damaged")
    if history is not None and not all(isinstance(r, dict) for r in history):
        raise FashionCNNError(f"{run.file(HISTORY_JSON)} holds a row that is not a JSON object; the run directory is damaged")
    return config, history, metrics, environment if isinstance(environment, dict) else None


def _best_epoch(history: list[dict], monitor) -> int | None:
    """The epoch ``EarlyStopping`` counts as best so far (the first with the best ``monitor``), for a run whose
    metrics.json does not say yet."""
    judge = MonitorCallback(monitor if isinstance(monitor, str) else "val_loss")
    best, epoch = judge.initial(), None
    for row in history:
        value = _number(row.get(judge.monitor))
        if value is not None and judge.is_improvement(value, best):
            best, epoch = value, _int(row.get("epoch"))
    return epoch


def _number(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _int(x) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _text(x) -> str | None:
    return x if isinstance(x, str) else None


def _dict(x) -> dict:
    return x if isinstance(x, dict) else {}
