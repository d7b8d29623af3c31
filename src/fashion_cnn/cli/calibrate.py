"""``fashion-cnn calibrate``: fit the temperature that makes a model's confidence mean what it says.

    fashion-cnn calibrate runs/tutorial --data-dir ../shared/data/fashion-mnist    # rewrites runs/tutorial/best.safetensors
    fashion-cnn calibrate imported.safetensors -o calibrated.safetensors          # a model file (an imported Keras model)

Temperature scaling (Guo et al. 2017): one number T, fitted on the validation split the model was trained with
(never the test split), divides the logits before the softmax. Every prediction keeps its class (the test
accuracy does not move); the probabilities become as sure as the model is right. T is recorded in the model
file's metadata; every engine applies it (PyTorch, and the ONNX, TorchScript and Keras files exported from it
afterwards). Prints the expected calibration error (15 bins) and the loss before and after, on validation and
test. Running it again refits from the model's own logits.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..inference.calibration import expected_calibration_error, fit_temperature
from ..inference.predict import logits_of
from ..models.files import load_model, resolve_model_path, save_model
from .common import add_data_args, add_json_arg, model_split, print_json


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the temperature that calibrates a model's probabilities, on its validation split")
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("-o", "--output", metavar="FILE", help="write the calibrated model here (default: replace the model file)")
    add_data_args(p, dataset_default=None)
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    source = resolve_model_path(args.model_or_run)
    model = load_model(source)
    model.meta.pop("calibration", None)  # refit from the model's own logits
    val = model_split(model, "val", args.dataset, args.data_dir, source=args.model_or_run)
    test = model_split(model, "test", args.dataset, args.data_dir, source=args.model_or_run)
    val_logits, test_logits = logits_of(model, val.images), logits_of(model, test.images)
    temperature = fit_temperature(val_logits, val.labels)
    figures = {"temperature": temperature}
    for name, logits, data in (("val", val_logits, val), ("test", test_logits, test)):
        for label, t in (("before", 1.0), ("after", temperature)):
            probs = (logits / t).softmax(1).numpy()
            figures[f"{name}_ece_{label}"] = expected_calibration_error(probs, data.labels)
            figures[f"{name}_loss_{label}"] = float(F.cross_entropy(logits / t, torch.as_tensor(data.labels, dtype=torch.long)))
    output = Path(args.output) if args.output else source
    model.meta["calibration"] = {"temperature": temperature, "fitted_on": "val", "images": len(val), **_rounded(figures)}
    save_model(output, model)
    if args.json:
        print_json({"path": str(output), **figures})
    else:
        print(
            f"temperature {temperature:.4f} fitted on {len(val):,} validation images; ECE val {figures['val_ece_before']:.4f} → "
            f"{figures['val_ece_after']:.4f}, test {figures['test_ece_before']:.4f} → {figures['test_ece_after']:.4f} "
            f"(15 bins; accuracy unchanged); wrote {output}"
        )
    return 0


def _rounded(figures: dict) -> dict:
    return {k: round(v, 6) for k, v in figures.items() if k != "temperature"}
