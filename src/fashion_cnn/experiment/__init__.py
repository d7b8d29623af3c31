"""A training run from a configuration: the layer above the loop, the pictures and the run directory.

config.py   TrainConfig: every setting, declared once (the ``train`` flags come from it)
train.py    train(config) → runs/NAME/ ; resume(run_dir)
resume.py   what a resumed run may change, Ctrl-C/SIGTERM, the message that says how to go on
lr_find.py  lr_find(config): the learning-rate range test of a configuration, before training it
runs.py     the runs written so far, one row each (list_runs), and what differs between some (compare_runs)
"""

from .config import TrainConfig
from .resume import Interrupted
from .runs import Comparison, RunInfo, compare_runs, list_runs, read_run
from .train import RunResult, resume, train

__all__ = ["Comparison", "Interrupted", "RunInfo", "RunResult", "TrainConfig", "compare_runs", "list_runs", "read_run", "resume", "train"]
