"""Step 3 of the tutorial: fit with checkpointing and early stopping, and the run directory."""

from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .loop import History, Trainer, adam, fit
from .recipe import RunResult, TrainConfig, train

__all__ = ["Callback", "EarlyStopping", "History", "ModelCheckpoint", "RunResult", "TrainConfig", "Trainer", "adam", "fit", "train"]
