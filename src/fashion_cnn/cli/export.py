"""``fashion-cnn export``: a trained model as ONNX, TorchScript or Keras, or foreign PyTorch weights as safetensors.

fashion-cnn export runs/NAME --format onnx                 # → runs/NAME/model.onnx
fashion-cnn export runs/NAME --format keras -o model.keras # Keras 3: keras.saving.load_model("model.keras")
fashion-cnn export runs/NAME --format onnx --batch 1 -o model.b1.onnx   # a static batch axis (OpenCV's dnn)
fashion-cnn export runs/NAME --format torchscript -o m.pt
fashion-cnn export weights.pt --allow-torch-weights --format safetensors   # → weights.safetensors
"""

from __future__ import annotations

from pathlib import Path

from ..data.registry import get_spec
from ..errors import FashionCNNError
from ..export.graph import check_batch
from ..export.keras import export_keras
from ..export.onnx import check_opset, export_onnx, to_onnx
from ..export.quantize import quantize_onnx
from ..export.torchscript import export_torchscript
from ..files import resolved
from ..inference.onnx import OnnxClassifier
from ..models.files import load_model, load_torch_weights, resolve_model_path, save_model, sniff
from ..models.metadata import dataset_meta
from ..rundir import BEST, CONFIG, KERAS, LAST, ONNX, ONNX_INT8, STATE, TORCHSCRIPT
from .common import add_json_arg, model_split, print_json

FORMATS = {
    "onnx": (ONNX, ".onnx"),
    "torchscript": (TORCHSCRIPT, ".torchscript.pt"),
    "keras": (KERAS, ".keras"),
    "safetensors": (None, ".safetensors"),
}


def register(sub) -> None:
    p = sub.add_parser("export", help="write a model as ONNX, TorchScript or Keras (or convert PyTorch weights to safetensors)")
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a model file")
    p.add_argument(
        "--format",
        choices=tuple(FORMATS),
        required=True,
        help="onnx (onnxruntime), torchscript (libtorch), keras (Keras 3 .keras) or safetensors",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write (default: RUN/model.onnx, RUN/model.torchscript.pt, RUN/model.keras, or beside the input file)",
    )
    p.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's recommended one)")
    p.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="ONNX: a static batch axis of N images, for runtimes that cannot take a dynamic one such as OpenCV's dnn (default: dynamic)",
    )
    q = p.add_argument_group("int8 (with --format onnx)")
    q.add_argument("--int8", action="store_true", help="write an int8 model (static quantisation calibrated on training images) instead")
    q.add_argument("--calibration", type=int, default=1000, metavar="N", help="training images used to calibrate (default: 1000)")
    q.add_argument(
        "--data-dir", metavar="DIR", help="the training data for calibration (default $FASHION_CNN_DATA, the cache, or download)"
    )
    g = p.add_argument_group("PyTorch weights (torch.save files)")
    g.add_argument(
        "--allow-torch-weights",
        action="store_true",
        help="accept a torch.save state_dict, read with torch.load(weights_only=True): tensors only, never code",
    )
    g.add_argument("--model", default="tutorial-cnn", help="the architecture of those weights")
    g.add_argument("--dataset", default="fashion-mnist", help="the dataset they were trained on (for the class names)")
    add_json_arg(p)
    p.set_defaults(run=run)


#: A run's own model files, which an export must never replace.
RUN_MODELS = (BEST, LAST, STATE)


def run(args) -> int:
    source = resolve_model_path(args.model_or_run)
    model = _load(source, args)
    output = Path(args.output) if args.output else default_output(Path(args.model_or_run), source, args.format, args.int8)
    if resolved(output) == resolved(source):
        raise FashionCNNError(f"the export would overwrite its input {source}; pass another -o FILE")
    if output.name in RUN_MODELS and (resolved(output).parent / CONFIG).is_file():
        raise FashionCNNError(
            f"the export would overwrite {output.name} of the run {output.parent}, which training and --resume use; pass another -o FILE"
        )
    check_opset(args.opset)
    if args.int8 and args.format != "onnx":
        raise FashionCNNError(f"--int8 applies to --format onnx, not {args.format}")
    if args.batch is not None and args.format != "onnx":
        raise FashionCNNError(f"--batch applies to --format onnx, not {args.format}")
    check_batch(args.batch)
    batch = "" if args.batch is None else f"; static batch {args.batch}"
    if args.format == "onnx" and args.int8:
        result = _export_int8(model, output, args)
        note = f"int8 with 7-bit weights (reduce_range), calibrated on {result['calibration_images']} training images; labels agree with fp32 on {result['agreement']:.2%} of {result['checked_images']} validation images{batch}"
    elif args.format == "onnx":
        result = export_onnx(model, output, opset=args.opset, batch=args.batch)
        note = f"onnx opset {result['opset']}, largest difference from PyTorch {result['max_abs_diff']:.1e}{batch}"
    elif args.format == "torchscript":
        result = export_torchscript(model, output)
        note = f"torchscript, largest difference from PyTorch {result['max_abs_diff']:.1e}"
    elif args.format == "keras":
        result = export_keras(model, output)
        note = f"Keras 3; load it with keras.saving.load_model; largest difference from PyTorch {result['max_abs_diff']:.1e}"
    else:
        save_model(output, model)
        result, note = {"path": str(output)}, "safetensors with fashion-cnn metadata"
    if args.json:
        print_json({"format": args.format, **result})
    else:
        print(f"Wrote {output} ({note})")
    return 0


def _load(source: Path, args):
    if not (args.allow_torch_weights and sniff(source) == "pickle"):
        return load_model(source)
    spec = get_spec(args.dataset)
    return load_torch_weights(source, args.model, **dataset_meta(spec), source=f"converted from PyTorch weights {source.name}")


def _export_int8(model, output: Path, args) -> dict:
    """Quantise with calibration images from the model's training split; compare labels with fp32 on validation."""
    if args.calibration < 1:
        raise FashionCNNError(f"--calibration must be at least 1, got {args.calibration}")
    train = model_split(model, "train", None, args.data_dir)
    val = model_split(model, "val", None, args.data_dir).images[:2000]
    fp32 = to_onnx(model, args.opset, batch=args.batch).SerializeToString()
    result = quantize_onnx(fp32, output, train.images[: args.calibration])
    agree = (OnnxClassifier(output).predict_proba(val).argmax(1) == OnnxClassifier(fp32).predict_proba(val).argmax(1)).mean()
    return {**result, "agreement": float(agree), "checked_images": len(val)}


def default_output(given: Path, source: Path, fmt: str, int8: bool = False) -> Path:
    """RUN/model.onnx for a run directory; the input file's name with the format's suffix otherwise."""
    in_run, suffix = FORMATS[fmt]
    if int8:
        in_run, suffix = ONNX_INT8, ".int8.onnx"
    if given.is_dir() and in_run:
        return given / in_run
    return source.with_name(source.name.split(".")[0] + suffix)
