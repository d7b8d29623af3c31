"""Continue a run after a crash, a kill or Ctrl-C: what may change, and what to tell the user.

    fashion-cnn train --resume runs/NAME              # continue with the run's own config.json
    fashion-cnn train --resume runs/NAME --epochs 30  # ... and train for more epochs than first asked

The run's state itself (weights, Adam, RNGs, callbacks) is saved and restored by
``fashion_cnn.training.checkpoint``; this module decides which settings a resumed run may change, turns
Ctrl-C and SIGTERM into a clean stop, and says how to go on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from ..errors import FashionCNNError
from ..rundir import CONFIG, METRICS, RunDir
from ..training.checkpoint import completed_epochs, load_state
from .config import TrainConfig, flag_of

#: Settings that say where a run executes, not what it computes: a resumed run may change them.
WHERE_IT_RUNS = ("data_dir", "device", "threads", "kernels", "hold_memory")
#: Settings that say where a run is reported (``--log``): a resumed run may change them too.
WHERE_IT_IS_LOGGED = ("log", "mlflow_uri")


class Interrupted(FashionCNNError):
    """Ctrl-C or SIGTERM during training; the message says how to resume. Exit status 130, as a shell's."""

    exit_code = 130


def resumed_config(run_dir: str | os.PathLike, overrides: dict) -> TrainConfig:
    """The run's configuration from its ``config.json``, refusing changes that would make it another run.

    Args:
        run_dir: the run directory to continue.
        overrides: settings the user gave. ``epochs`` may be raised; ``data_dir``, ``device`` and
            ``threads`` say where the run executes, ``log`` and ``mlflow_uri`` where it is logged, and may
            change; anything else must equal the stored value.
    """
    run = RunDir(run_dir)
    stored = run.config()
    if stored is None:
        raise FashionCNNError(f"{run} has no {CONFIG}; --resume takes a run directory written by 'fashion-cnn train'")
    if not isinstance(stored, dict):
        raise FashionCNNError(f"{run.file(CONFIG)} is not a JSON object of settings; the run cannot be resumed, start a new one")
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in stored.items() if k in known}
    if "epochs" in overrides and overrides["epochs"] != values.get("epochs") and values.get("schedule", "constant") != "constant":
        raise FashionCNNError(
            f"--epochs cannot change when resuming {run}: its {values['schedule']} learning-rate schedule is laid out over {values.get('epochs')} epochs"
        )
    for name, value in overrides.items():
        if name in WHERE_IT_RUNS or name in WHERE_IT_IS_LOGGED or name == "epochs":
            values[name] = value
        elif name in known and value != values.get(name):
            flag = flag_of(name)
            raise FashionCNNError(
                f"{flag} {value} would change the run being resumed (it used {values.get(name)!r}); --resume continues "
                f"with the run's own settings from {run.file(CONFIG)}: drop {flag}, or start a new run without --resume"
            )
    config = TrainConfig(**values)
    config.runs_dir, config.name = str(run.path.parent), run.path.name
    try:
        config.validate()
    except FashionCNNError as e:  # an edited config.json: say which file holds the bad setting
        raise FashionCNNError(f"{run.file(CONFIG)} holds a setting that is not valid ({e}); fix it or start a new run") from None
    done = completed_epochs(run.path)
    if done > config.epochs:
        raise FashionCNNError(
            f"{run} has already completed {done} epochs, more than --epochs {config.epochs}; pass --epochs of at least {done}"
        )
    if done and run.file(METRICS).is_file():
        state = load_state(run.state)
        if state["stop_training"]:
            raise FashionCNNError(
                f"{run} was ended by early stopping after epoch {done}; there is nothing to resume, start a new run (e.g. with a larger --patience)"
            )
        if done == config.epochs:
            raise FashionCNNError(f"{run} already finished its {done} epochs; pass a larger --epochs to train it further")
    return config


def interrupted_message(run_dir: str | os.PathLike, epochs: int) -> str:
    done = completed_epochs(run_dir)
    saved = (
        "no epoch was completed" if not done else f"epoch 1 of {epochs} is saved" if done == 1 else f"epochs 1-{done} of {epochs} are saved"
    )
    return f"interrupted; {saved} in {Path(run_dir)}: continue with 'fashion-cnn train --resume {Path(run_dir)}'"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``, a job scheduler's stop) like Ctrl-C while training, so it ends just as cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
