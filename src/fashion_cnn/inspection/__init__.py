"""Looking at the model and its results: the tutorial's pictures and the HTML report.

    architecture.py  plot_model: one box per layer (Keras' plot_model)
    plots.py         curves, images, galleries, probability bars, confusion matrix, top losses
    analysis.py      predictions on a split: per-class precision / recall / F1, confusion, top losses
    report.py        the self-contained HTML report of a run
    run_outputs.py   what train writes for people to look at (loss.png, accuracy.png, report.html)
    figures.py       new / save (atomic, format by extension) / embed a figure
    fonts.py         NanumGothic for Korean labels, from the koreanize-matplotlib package
    environment.py   versions, CPU and GPU for the report

Every picture function returns a matplotlib ``Figure`` (shown inline in a notebook); ``save_figure``
writes it. The command line: ``fashion-cnn plot-model | plot-history | show | report``, ``predict --plot``,
``evaluate --report --top-losses N``.
"""

from .analysis import Analysis, analyze
from .architecture import plot_model
from .figures import save_figure
from .plots import plot_confusion_matrix, plot_history, plot_images, plot_probabilities, plot_top_losses, show_image
from .report import build_report, write_report

__all__ = [
    "Analysis",
    "analyze",
    "build_report",
    "plot_confusion_matrix",
    "plot_history",
    "plot_images",
    "plot_model",
    "plot_probabilities",
    "plot_top_losses",
    "save_figure",
    "show_image",
    "write_report",
]
