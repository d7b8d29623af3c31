"""``fashion-cnn evaluate`` and ``fashion-cnn predict``: the tutorial's last two steps."""

from __future__ import annotations

from ..data.dataset import SPLITS
from ..errors import FashionCNNError
from ..inference.predict import evaluate, predict_proba
from ..models.files import load_model
from .common import add_data_args, add_json_arg, class_names, model_split, print_json


def _common(p) -> None:
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("--split", choices=SPLITS, default="test", help="which split (default: test)")
    add_data_args(p, dataset_default=None)
    add_json_arg(p)


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="loss and accuracy of a model on a split")
    _common(p)
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("predict", help="class probabilities of one image of a split")
    _common(p)
    p.add_argument("--index", type=int, required=True, help="image number within the split (val 0 is the tutorial's handbag)")
    p.add_argument("--lang", choices=("en", "ko"), default="en", help="class names in English or the tutorial's Korean")
    p.set_defaults(run=run_predict)


def run_evaluate(args) -> int:
    model = load_model(args.model_or_run)
    data = model_split(model, args.split, args.dataset, args.data_dir)
    result = evaluate(model, data)
    if args.json:
        print_json({"split": args.split, "images": len(data), **result})
    else:
        print(f"{args.split}: {len(data):,} images  loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}")
    return 0


def run_predict(args) -> int:
    model = load_model(args.model_or_run)
    data = model_split(model, args.split, args.dataset, args.data_dir)
    if not 0 <= args.index < len(data):
        raise FashionCNNError(f"--index {args.index} is out of range: the {args.split} split has {len(data):,} images (0 to {len(data) - 1})")
    probs = predict_proba(model, data.images[args.index])
    names = class_names(model, args.lang)
    top, true = int(probs.argmax()), int(data.labels[args.index])
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
