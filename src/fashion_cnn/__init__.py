"""fashion-cnn: the Keras Fashion-MNIST CNN tutorial as one command line and one Python API.

The tutorial's flow in Python::

    import fashion_cnn as fc

    data = fc.load_dataset("fashion-mnist", data_dir="../shared/data/fashion-mnist")
    train, val = fc.train_val_split(data.train, val_fraction=0.2, seed=42)      # 48,000 / 12,000
    model = fc.build_model("tutorial-cnn")
    fc.summary(model)                                                            # 333,526 parameters
    history = fc.fit(model, train, val, epochs=20, batch_size=32, callbacks=[
        fc.ModelCheckpoint("best.safetensors", save_best_only=True),
        fc.EarlyStopping(patience=2, restore_best_weights=True),
    ])
    fc.evaluate(model, val)                                                      # {'loss': ..., 'accuracy': ...}
    probs = fc.predict_proba(model, val.images[0])                               # 10 probabilities
    data.class_names("ko")[probs.argmax()]                                       # '가방'
    fc.plot_history(history, "loss")                                             # matplotlib Figures: the curves,
    fc.plot_probabilities(probs, data.class_names("ko"))                         # the bars (in Hangul), and more

Inside the model (the book's next section)::

    kernel, bias = fc.conv_filters(model, "conv2d")                              # (32, 1, 3, 3), (32,)
    fc.plot_filters({"trained": kernel, "untrained": fc.conv_filters(fc.build_model())[0]})
    maps = fc.layer_outputs(model, train.images[0], ["conv2d", "conv2d_1"])     # {'conv2d': (1, 32, 28, 28), ...}
    fc.plot_feature_maps(maps["conv2d"][0])                                      # 4×8 grid
    fc.plot_gradcam(val.images[0], fc.gradcam(model, val.images[0]), data.class_names("ko"))

The packages, bottom to top (each imports only those below it; ``.importlinter`` checks it):
errors/version → files → rundir, devices, distributed, environment → data → models → inference →
training, inspection → serving, export → experiment → cli.
"""

from .data import DATASETS, Dataset, LabeledImages, load_dataset, load_split, train_val_split
from .errors import FashionCNNError
from .experiment import RunInfo, RunResult, TrainConfig, compare_runs, list_runs, resume, train
from .inference import (
    calibrate,
    evaluate,
    expected_calibration_error,
    fit_detector,
    load_classifier,
    predict_proba,
    predict_with_scores,
    scores_of,
)
from .inspection import (
    Analysis,
    Attribution,
    analyze,
    build_report,
    conv_filters,
    conv_layer_names,
    embeddings,
    gradcam,
    layer_names,
    layer_outputs,
    nearest_neighbours,
    plot_confusion_matrix,
    plot_embedding,
    plot_feature_maps,
    plot_filters,
    plot_gradcam,
    plot_gradcams,
    plot_history,
    plot_images,
    plot_model,
    plot_probabilities,
    plot_runs,
    plot_top_losses,
    project_2d,
    saliency,
    save_figure,
    show_image,
    weight_stats,
    write_report,
)
from .kernels import remove_kernels, use_kernels
from .models import build_model, load_model, model_names, register_model, save_model, summary
from .models.keras_import import import_keras
from .rundir import RunDir
from .training import Callback, EarlyStopping, History, ModelCheckpoint, fit
from .version import __version__

__all__ = [
    "weight_stats",
    "saliency",
    "project_2d",
    "plot_gradcam",
    "plot_gradcams",
    "plot_filters",
    "plot_feature_maps",
    "plot_embedding",
    "nearest_neighbours",
    "layer_outputs",
    "layer_names",
    "gradcam",
    "embeddings",
    "conv_layer_names",
    "conv_filters",
    "DATASETS",
    "Analysis",
    "Attribution",
    "Callback",
    "Dataset",
    "EarlyStopping",
    "FashionCNNError",
    "History",
    "LabeledImages",
    "ModelCheckpoint",
    "RunDir",
    "RunInfo",
    "RunResult",
    "TrainConfig",
    "__version__",
    "analyze",
    "build_model",
    "build_report",
    "compare_runs",
    "evaluate",
    "fit",
    "import_keras",
    "list_runs",
    "load_classifier",
    "load_dataset",
    "load_model",
    "load_split",
    "model_names",
    "plot_confusion_matrix",
    "plot_history",
    "plot_images",
    "plot_model",
    "plot_probabilities",
    "plot_runs",
    "plot_top_losses",
    "predict_proba",
    "predict_with_scores",
    "scores_of",
    "calibrate",
    "expected_calibration_error",
    "fit_detector",
    "register_model",
    "resume",
    "save_figure",
    "save_model",
    "show_image",
    "summary",
    "train",
    "train_val_split",
    "write_report",
    "use_kernels",
    "remove_kernels",
]
