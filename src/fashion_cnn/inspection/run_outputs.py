"""What ``fashion-cnn train`` leaves in a run directory for people to look at, written after the metrics:

loss.png, accuracy.png   the learning curves (redraw with: fashion-cnn plot-history RUN)
environment.json         versions, CPU and GPU the run was trained on
report.html              the shareable report (redo with: fashion-cnn report RUN)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from torch import nn

from ..data.types import LabeledImages
from ..environment import environment
from ..errors import FashionCNNError
from ..models.metadata import class_names
from ..rundir import ACCURACY_PNG, CONFUSION_PNG, LOSS_PNG, RunDir
from .analysis import analyze
from .figures import save_figure
from .plots import plot_confusion_matrix, plot_history
from .report import write_report


def write_curves(run_dir: str | Path, history=None, out_dir: str | Path | None = None, dpi: int | None = None) -> list[Path]:
    """Draw loss.png and accuracy.png from the run's history into ``out_dir`` (default the run directory)."""
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    history = history if history is not None else run_dir
    return [
        save_figure(plot_history(history, metric), out / name, dpi) for metric, name in (("loss", LOSS_PNG), ("accuracy", ACCURACY_PNG))
    ]


def write_run_pictures(
    run_dir: str | Path,
    model: nn.Module,
    test: LabeledImages,
    meta: dict,
    verbose: bool = True,
    test_probs: np.ndarray | None = None,
    confusion: bool = False,
) -> list[Path]:
    """At the end of training: curves, environment and the HTML report on the test split; the files written.

    ``test_probs``: the model's probabilities on ``test`` when the caller has them (the final evaluation's),
    so the report does not predict the test set a second time. ``confusion``: also confusion.png, the test
    split's confusion matrix (for ``train --log``, which sends the pictures on).

    A problem here does not undo a finished training run: it is reported on stderr with the command that
    retries it, and the model files stay as they are.
    """
    run_dir = Path(run_dir)
    try:
        RunDir(run_dir).write_environment(environment())
        written = write_curves(run_dir)
        analysis = analyze(model, test, class_names(meta), split="test", probs=test_probs)
        if confusion:
            written.append(save_figure(plot_confusion_matrix(analysis.confusion, analysis.names), run_dir / CONFUSION_PNG))
        curves = tuple(path.read_bytes() for path in written[:2])  # the report shows the same pictures, not redrawn
        written.append(write_report(run_dir, analysis=analysis, model=model, korean_names=meta.get("classes_ko"), curves=curves))
    except (FashionCNNError, OSError) as e:
        print(
            f"fashion-cnn: warning: the run finished but its pictures or report could not be written ({e}); "
            f"retry with: fashion-cnn report {run_dir}",
            file=sys.stderr,
        )
        return []
    if verbose:
        print(f"Pictures and report: {', '.join(str(p) for p in written)}")
    return written
