"""``fashion-cnn evaluate`` and ``fashion-cnn predict``: the tutorial's last two steps."""

from __future__ import annotations

from ..data.dataset import SPLITS
from ..errors import FashionCNNError
from ..inference.engines import ENGINES, load_classifier
from ..inference.predict import evaluate, metrics_of
from ..models.files import load_model
from .common import add_data_args, add_json_arg, class_names, model_split, print_json
from .predict_images import add_image_args, run_predict_images
from .inspect import add_evaluate_args, add_predict_args, evaluate_outputs, plot_prediction


def _common(p) -> None:
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("--split", choices=SPLITS, default="test", help="which split (default: test)")
    add_data_args(p, dataset_default=None)
    add_json_arg(p)


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="loss and accuracy of a model on a split")
    _common(p)
    p.add_argument("--engine", choices=ENGINES, default="torch", help="PyTorch (the safetensors model) or onnxruntime (an .onnx file, e.g. the int8 export)")
    add_evaluate_args(p)
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("predict", help="class probabilities of one image of a split, or of your own image files")
    _common(p)
    p.add_argument("--index", type=int, help="image number within the split (val 0 is the tutorial's handbag); or pass image files")
    p.add_argument("--lang", choices=("en", "ko"), default="en", help="class names in English or the tutorial's Korean")
    p.add_argument("--engine", choices=ENGINES, default="torch", help="run the safetensors model with PyTorch, or RUN/model.onnx (or an .onnx file) with onnxruntime")
    add_image_args(p)
    add_predict_args(p)
    p.set_defaults(run=run_predict)


def run_evaluate(args) -> int:
    if args.engine != "torch":
        if args.report or args.top_losses:
            raise FashionCNNError("--report and --top-losses run the PyTorch model; drop --engine onnx for them")
        model = load_classifier(args.model_or_run, args.engine)
        data = model_split(model, args.split, args.dataset, args.data_dir)
        result = metrics_of(model.predict_proba(data.images), data.labels)
        print_json({"split": args.split, "images": len(data), "engine": args.engine, **result}) if args.json else \
            print(f"{args.split}: {len(data):,} images  loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  ({args.engine})")
        return 0
    model = load_model(args.model_or_run)
    data = model_split(model, args.split, args.dataset, args.data_dir)
    result = evaluate(model, data)
    if args.json:
        print_json({"split": args.split, "images": len(data), **result, **evaluate_outputs(args, model, data)})
    else:
        print(f"{args.split}: {len(data):,} images  loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}")
        evaluate_outputs(args, model, data)  # --report, --top-losses
    return 0


def run_predict(args) -> int:
    if (args.index is None) == (not args.images):
        raise FashionCNNError("pass either --index N (an image of a split) or image files, not both and not neither")
    if args.images:
        return run_predict_images(args, load_classifier(args.model_or_run, args.engine))
    model = load_classifier(args.model_or_run, args.engine)
    data = model_split(model, args.split, args.dataset, args.data_dir)
    if not 0 <= args.index < len(data):
        raise FashionCNNError(f"--index {args.index} is out of range: the {args.split} split has {len(data):,} images (0 to {len(data) - 1})")
    probs = model.predict_proba(data.images[args.index])
    names = class_names(model, args.lang)
    top, true = int(probs.argmax()), int(data.labels[args.index])
    plot_prediction(args, probs, names, true, source=f"{args.split}[{args.index}]")  # --plot FILE
    if args.json:
        print_json({
            "split": args.split, "index": args.index,
            "probabilities": {name: float(p) for name, p in zip(names, probs)},
            "predicted": {"index": top, "name": names[top], "probability": float(probs[top])},
            "true": {"index": true, "name": names[true]},
        })
        return 0
    width = max(len(n) for n in names)
    print(f"{args.split}[{args.index}] (true class: {names[true]})")
    for i, (name, p) in enumerate(zip(names, probs)):
        print(f"  {i}  {name:<{width}}  {p:.4f}  {'█' * round(p * 30)}")
    print(f"Predicted: {names[top]} ({probs[top]:.2%})")
    return 0
