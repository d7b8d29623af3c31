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

from ..inference.calibration import calibrate
from ..inference.ood import fit_detector
from ..models.files import load_model, resolve_model_path, save_model
from .common import add_data_args, add_json_arg, model_split, print_json


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the temperature that calibrates a model's probabilities, and its not-clothing detector")
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("-o", "--output", metavar="FILE", help="write the calibrated model here (default: replace the model file)")
    p.add_argument("--no-ood", dest="ood", action="store_false", help="fit only the temperature, not the not-clothing detector")
    add_data_args(p, dataset_default=None)
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    source = resolve_model_path(args.model_or_run)
    model = load_model(source)
    val = model_split(model, "val", args.dataset, args.data_dir, source=args.model_or_run)
    test = model_split(model, "test", args.dataset, args.data_dir, source=args.model_or_run)
    figures = calibrate(model, val, test)
    ood = None
    if args.ood:
        train = model_split(model, "train", args.dataset, args.data_dir, source=args.model_or_run)
        ood = fit_detector(model, train, val)
    output = Path(args.output) if args.output else source
    save_model(output, model)
    if args.json:
        print_json({"path": str(output), **figures, **({"ood": ood} if ood else {})})
        return 0
    print(
        f"temperature {figures['temperature']:.4f} fitted on {len(val):,} validation images; ECE val {figures['val_ece_before']:.4f} → "
        f"{figures['val_ece_after']:.4f}, test {figures['test_ece_before']:.4f} → {figures['test_ece_after']:.4f} "
        "(15 bins; accuracy unchanged)"
    )
    if ood:
        print(
            f"not-clothing detector: {ood['prototypes']} prototypes of the training images; threshold {ood['threshold']:.4f} "
            f"keeps {ood['keep']:.0%} of the validation images"
        )
    print(f"Wrote {output}")
    return 0
