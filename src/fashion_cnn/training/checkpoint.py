"""The checkpoint format that lets a training run continue after a crash, a kill or Ctrl-C.

    fashion-cnn train --resume runs/NAME              # continue with the run's own config.json
    fashion-cnn train --resume runs/NAME --epochs 30  # ... and train for more epochs than first asked

(``fashion_cnn.experiment.resume`` decides what may change on resuming; this module saves and restores.)
At the end of every epoch ``ResumeState`` writes ``runs/NAME/state.safetensors`` atomically: one
self-consistent snapshot of everything ``fit`` needs to carry on as if it had never stopped, so the
resumed history equals that of an uninterrupted run with the same seed (on the same device and threads):

    tensors  model.*            the weights after the epoch
             ema.*              the moving average of the weights and its count (with --ema)
             optimizer.*        Adam's moments and step counts (the learning-rate schedule's position is in the header)
             rng.torch          torch's CPU generator (dropout), rng.cuda.N for each GPU
             rng.shuffle        the generator that orders each epoch's batches
             rng.numpy          NumPy's global generator (as raw bytes)
             callbacks.*        tensors of callback state (EarlyStopping's best weights)
    header   the completed epochs, the history rows, each callback's counters and best score, the
             optimizer's settings and Python's ``random`` state, as JSON

The weights are in the snapshot although ``last.safetensors`` holds them too: the two files cannot be
replaced as one, and a crash between the two renames must not pair new weights with old optimizer state.
Nothing is pickled: tensors go through safetensors, everything else through JSON.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import FashionCNNError, first_line
from ..files import atomic_write_bytes
from ..models.files import check_tensors, unwrap
from ..rundir import STATE, RunDir
from .callbacks import Callback
from .trainer import Trainer

STATE_FORMAT = "fashion-cnn-state"
STATE_VERSION = 1


class ResumeState(Callback):
    """Write ``state.safetensors`` after every epoch; with ``resume=True``, first restore from it.

    Put it last in the callbacks, so the callbacks it snapshots have finished their epoch.

    Args:
        run_dir: the run directory.
        callbacks: the callbacks whose state (``state_dict()``) must survive, e.g. checkpoint and early stopping.
        resume: restore the model, optimizer, RNGs, history and callbacks before the first epoch.

    Example:
        >>> from fashion_cnn.training.callbacks import EarlyStopping
        >>> early = EarlyStopping(patience=2)
        >>> _ = fit(build_model(), train_set, val_set, epochs=1, callbacks=[early, ResumeState(tmp, [early])], verbose=False)
        >>> completed_epochs(tmp), load_state(tmp / "state.safetensors")["callbacks"][0]["class"]
        (1, 'EarlyStopping')
    """

    def __init__(self, run_dir: str | os.PathLike, callbacks: list[Callback] = (), resume: bool = False):
        self.path = RunDir(run_dir).state
        self.callbacks, self.resume = list(callbacks), resume

    def on_train_begin(self) -> None:
        if self.resume and self.path.is_file():
            try:
                restore(self.trainer, self.callbacks, load_state(self.path), self.path)
            except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:  # readable, but not what capture() wrote
                raise FashionCNNError(
                    f"{self.path} is damaged ({type(e).__name__}: {first_line(e, 100)}); it cannot be resumed, start a new run"
                ) from None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.trainer.is_main:
            save_state(self.path, capture(self.trainer, self.callbacks, epoch))


def capture(trainer: Trainer, callbacks: list[Callback], epoch: int) -> dict:
    """Everything needed to continue after ``epoch`` (0-based), as nested dicts of JSON values and tensors."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {
        "epoch": epoch + 1,
        "stop_training": trainer.stop_training,
        "history": trainer.history.epochs,
        "model": unwrap(trainer.model).state_dict(),
        "ema": None if trainer.ema is None else {"weights": trainer.ema.module.state_dict(), "count": trainer.ema.n_averaged},
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "callbacks": [{"class": type(cb).__name__, "state": cb.state_dict()} for cb in callbacks],
        "rng": {
            "torch": torch.get_rng_state(),
            "shuffle": trainer.generator.get_state() if trainer.generator is not None else None,
            "cuda": list(cuda),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
    }


def restore(trainer: Trainer, callbacks: list[Callback], state: dict, path: Path | str = STATE) -> None:
    """Put ``state`` (from ``capture``) back into a freshly built trainer and its callbacks."""
    model = unwrap(trainer.model)
    check_tensors(Path(path), model.state_dict(), state["model"])
    model.load_state_dict(state["model"])
    ema = state.get("ema")
    if (ema is None) != (trainer.ema is None):
        raise FashionCNNError(
            f"{path} was written {'with' if ema is not None else 'without'} a moving average of the weights (--ema), unlike this run; "
            "resume with the run's own settings"
        )
    if ema is not None:
        check_tensors(Path(path), trainer.ema.module.state_dict(), ema["weights"])
        trainer.ema.module.load_state_dict(ema["weights"])
        trainer.ema.n_averaged.copy_(ema["count"])
    _load_optimizer(trainer.optimizer, state["optimizer"], path)
    if (state["scheduler"] is None) != (trainer.scheduler is None):
        raise FashionCNNError(
            f"{path} was written {'with' if state['scheduler'] is not None else 'without'} a learning-rate schedule, unlike this run; resume with the run's own settings"
        )
    if trainer.scheduler is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    saved = state["callbacks"]
    if [c["class"] for c in saved] != [type(cb).__name__ for cb in callbacks]:
        raise FashionCNNError(
            f"{path} holds the state of callbacks {[c['class'] for c in saved]} but this run has "
            f"{[type(cb).__name__ for cb in callbacks]}; resume with the same fashion-cnn version that started the run"
        )
    for cb, c in zip(callbacks, saved):
        cb.load_state_dict(c["state"])
    trainer.history.epochs[:] = state["history"]
    trainer.initial_epoch = state["epoch"]
    trainer.stop_training = state["stop_training"]
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if trainer.generator is not None and rng["shuffle"] is not None:
        trainer.generator.set_state(rng["shuffle"])
    if rng["cuda"] and torch.cuda.is_available() and torch.cuda.device_count() == len(rng["cuda"]):
        torch.cuda.set_rng_state_all(rng["cuda"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict, path) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, per_param in saved.get("state", {}).items():
        if not (isinstance(index, int) and 0 <= index < len(params)):
            raise FashionCNNError(
                f"{path} has optimizer state for parameter {index!r}, but the model has {len(params)}; the file is damaged, start a new run"
            )
        for key, value in per_param.items():
            # Moments laid out like their parameter (channels-last convolutions), as in the uninterrupted run.
            if isinstance(value, torch.Tensor) and value.shape == params[index].shape and value.dtype == params[index].dtype:
                per_param[key] = torch.empty_like(params[index]).copy_(value)
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise FashionCNNError(
            f"{path} holds optimizer state that does not fit this optimizer ({e}); resume with the run's own settings or start a new run"
        ) from None


def save_state(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: tensors as safetensors, everything else as JSON metadata."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    packed = _pack(state, "", tensors)
    header = {"format": STATE_FORMAT, "version": str(STATE_VERSION), "epoch": str(state["epoch"]), "state": json.dumps(packed)}
    atomic_write_bytes(path, save(tensors, metadata=header))


def load_state(path: str | os.PathLike) -> dict:
    """Read a ``state.safetensors`` written by ``save_state`` (never unpickling anything)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
        if header.get("format") != STATE_FORMAT or header.get("version") != str(STATE_VERSION):
            raise ValueError(f"format {header.get('format')!r} version {header.get('version')!r}")
        return _unpack(json.loads(header["state"]), tensors)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        first = first_line(e, 120)
        raise FashionCNNError(f"{path} is not a fashion-cnn training state ({first}); it cannot be resumed, start a new run") from None


def completed_epochs(run_dir: str | os.PathLike) -> int:
    """How many epochs the run's ``state.safetensors`` holds (0 when there is none), from its header only."""
    from safetensors import SafetensorError, safe_open

    path = RunDir(run_dir).state
    if not path.is_file():
        return 0
    try:
        with safe_open(str(path), framework="pt") as f:
            return int((f.metadata() or {})["epoch"])
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise FashionCNNError(
            f"{path} is not a fashion-cnn training state ({type(e).__name__}); it cannot be resumed, start a new run"
        ) from None


# JSON cannot hold tensors, tuples, non-string keys or arrays; these tags stand in for them.
def _pack(obj, key: str, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, torch.Tensor):
        name = key.lstrip(".")
        if name in tensors:
            raise ValueError(f"two state entries are both called {name!r}")
        tensors[name] = obj.detach().to("cpu").contiguous().clone()
        return {"$tensor": name}
    if isinstance(obj, np.ndarray):
        raw = {"$tensor": _pack(torch.from_numpy(np.ascontiguousarray(obj).view(np.uint8).reshape(-1).copy()), key, tensors)["$tensor"]}
        return {"$ndarray": raw, "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _pack(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        return {"$items": [[k, _pack(v, f"{key}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"$tuple": [_pack(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(f"cannot store a {type(obj).__name__} in a training state (at {key.lstrip('.')})")


def _unpack(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$tensor" in obj:
        return tensors[obj["$tensor"]]
    if "$ndarray" in obj:
        raw = tensors[obj["$ndarray"]["$tensor"]].numpy()
        return raw.view(np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
    if "$items" in obj:
        return {k: _unpack(v, tensors) for k, v in obj["$items"]}
    if "$tuple" in obj:
        return tuple(_unpack(v, tensors) for v in obj["$tuple"])
    return {k: _unpack(v, tensors) for k, v in obj.items()}
