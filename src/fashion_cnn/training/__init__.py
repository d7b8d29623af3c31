"""Step 3 of the tutorial: fit with checkpointing and early stopping.

    loop.py        fit(): setup, train_one_epoch, validate, the callbacks
    trainer.py     the state callbacks see (Trainer) and the History of epochs
    callbacks.py   Callback, EarlyStopping, ModelCheckpoint (one MonitorCallback base), RunWriter
    checkpoint.py  state.safetensors: everything a run needs to continue after a crash (ResumeState)
    schedules.py   learning-rate schedules
    loss.py        the training loss (class-weighted, label-smoothed cross-entropy)
    class_weights.py  --class-weight balanced|FILE: the weight of each class in that loss
    lr_find.py     the learning-rate range test (lr_range_test)
    guards.py      stop on a NaN or infinite loss, naming the epoch and step
    progress.py    Keras' progress line
    loggers.py     --log tensorboard,mlflow: RunLogger callbacks that send the run to TensorBoard and MLflow

Training never draws pictures or builds a run from a config: that is ``fashion_cnn.experiment``.
"""

from .callbacks import Callback, EarlyStopping, ModelCheckpoint, MonitorCallback, RunWriter
from .checkpoint import ResumeState
from .loop import adam, fit
from .lr_find import RangeTest, lr_range_test
from .trainer import History, Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "MonitorCallback",
    "RangeTest",
    "ResumeState",
    "RunWriter",
    "Trainer",
    "adam",
    "fit",
    "lr_range_test",
]
