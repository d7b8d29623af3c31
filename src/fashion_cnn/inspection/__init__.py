"""Looking at the model and its results: the tutorial's pictures and the HTML report.

    architecture.py  plot_model: one box per layer (Keras' plot_model)
    plots.py         curves (one run's, several runs' overlaid), images, galleries, probability bars, confusion matrix, top losses, the lr range test
    analysis.py      predictions on a split: per-class precision / recall / F1, confusion, top losses
    internals.py     inside the model: layer names, layer outputs (feature maps), convolution filters, their statistics
    attribution.py   why this class: Grad-CAM and gradient saliency for one image
    embedding.py     penultimate features, their 2-D map (t-SNE / PCA), nearest neighbours
    inside.py        the pictures of those: filters, histograms, feature maps, Grad-CAM, the embedding map
    report.py        the self-contained HTML report of a run
    run_outputs.py   what train writes for people to look at (loss.png, accuracy.png, report.html)
    figures.py       new / save (atomic, format by extension) / embed a figure
    fonts.py         NanumGothic for Korean labels, from the koreanize-matplotlib package
    environment.py   versions, CPU and GPU for the report

Every picture function returns a matplotlib ``Figure`` (shown inline in a notebook); ``save_figure``
writes it. The command line: ``fashion-cnn plot-model | plot-history | show | report``, ``predict --plot``,
``evaluate --report --top-losses N``, and inside the model ``filters | feature-maps | gradcam | embedding``.
"""

from .analysis import Analysis, analyze
from .architecture import plot_model
from .attribution import Attribution, gradcam, saliency
from .embedding import embeddings, nearest_neighbours, project_2d
from .figures import save_figure
from .inside import plot_embedding, plot_feature_maps, plot_filters, plot_gradcam, plot_gradcams
from .internals import conv_filters, conv_layer_names, layer_names, layer_outputs, weight_stats
from .plots import (
    plot_confusion_matrix,
    plot_history,
    plot_images,
    plot_lr_find,
    plot_probabilities,
    plot_runs,
    plot_top_losses,
    show_image,
)
from .report import build_report, write_report

__all__ = [
    "Analysis",
    "Attribution",
    "analyze",
    "build_report",
    "conv_filters",
    "conv_layer_names",
    "embeddings",
    "gradcam",
    "layer_names",
    "layer_outputs",
    "nearest_neighbours",
    "plot_embedding",
    "plot_feature_maps",
    "plot_filters",
    "plot_gradcam",
    "plot_gradcams",
    "project_2d",
    "saliency",
    "weight_stats",
    "plot_confusion_matrix",
    "plot_history",
    "plot_lr_find",
    "plot_images",
    "plot_model",
    "plot_probabilities",
    "plot_runs",
    "plot_top_losses",
    "save_figure",
    "show_image",
    "write_report",
]
