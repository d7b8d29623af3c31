"""``fashion-cnn evaluate``: loss and accuracy on a split, and where the model goes wrong.

fashion-cnn evaluate runs/NAME --split test                      # loss and accuracy
fashion-cnn evaluate runs/NAME --report --top-losses 16 --lang ko  # per-class table, confusion.png, top-losses.png
fashion-cnn evaluate runs/NAME/model.int8.onnx --engine onnx       # an exported model with onnxruntime
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.ood_sets import OOD_SETS, check_ood_set, ood_set
from ..errors import FashionCNNError
from ..inference.calibration import expected_calibration_error
from ..inference.engines import ENGINES, TorchClassifier, engine_for, load_classifier
from ..inference.ood import separation
from ..inference.predict import evaluate_and_predict, metrics_of
from ..inspection.analysis import MAX_TOP_LOSSES, analyze
from ..inspection.figures import save_figure
from ..inspection.plots import plot_confusion_matrix, plot_reliability, plot_top_losses
from ..kernels.backend import use_kernels
from ..models.files import load_model
from ..models.metadata import class_names, input_side, ood_of
from ..rundir import CONFUSION_PNG, TOP_LOSSES_PNG
from .common import add_kernels_arg, add_lang_arg, add_saved_model_args, model_split, print_json, use_agg, wrote


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="loss and accuracy of a model on a split")
    add_saved_model_args(p)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="PyTorch (the safetensors model) or onnxruntime (an .onnx file, e.g. the int8 export) (default: onnx for an .onnx file, else torch)",
    )
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average each image's probabilities with its mirror image's")
    p.add_argument("--reliability", metavar="FILE", help="also draw the reliability diagram (accuracy against confidence, 15 bins) to FILE")
    p.add_argument(
        "--ood",
        nargs="+",
        metavar="SET",
        help=f"also measure the not-clothing score against these sets of other images ({', '.join(OOD_SETS)}): "
        "AUROC, FPR at 95%% TPR, the share passing as clothing and the accuracy kept",
    )
    p.add_argument("--report", action="store_true", help="print per-class precision / recall / F1 and write confusion.png")
    p.add_argument("--top-losses", type=int, default=0, metavar="N", help="write top-losses.png: the N most confidently wrong images")
    p.add_argument("-o", "--out-dir", metavar="DIR", help="folder for the pictures (default: the run directory, else the current folder)")
    add_lang_arg(p, "class names in the pictures and table,")
    add_kernels_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    for name in args.ood or ():
        check_ood_set(name)
    args.engine = args.engine or engine_for(args.model_or_run)
    if args.engine != "torch":
        if args.report or args.top_losses:
            raise FashionCNNError("--report and --top-losses run the PyTorch model; drop --engine onnx for them")
        model = load_classifier(args.model_or_run, args.engine, tta=args.tta)
        data = model_split(model, args.split, args.dataset, args.data_dir, source=args.model_or_run)
        probs = model.predict_proba(data.images)
        result = {**metrics_of(probs, data.labels), "ece": expected_calibration_error(probs, data.labels)}
        _reliability(args, probs, data)
        if not args.json:
            print(f"{args.split}: {len(data):,} images  {_line(result)}  ({args.engine})")
        ood = _ood(args, model, data, probs)
        if args.json:
            print_json({"split": args.split, "images": len(data), "engine": args.engine, **result, **ood})
        return 0
    model = load_model(args.model_or_run)
    use_kernels(model, args.kernels)
    data = model_split(model, args.split, args.dataset, args.data_dir, source=args.model_or_run)
    result, probs = evaluate_and_predict(model, data, tta=args.tta)  # the metrics to the bit of evaluate()'s
    result["ece"] = expected_calibration_error(probs, data.labels)
    _reliability(args, probs, data)
    tta = " (with test-time flips)" if args.tta else ""
    if args.json:
        extra = {**analysis_outputs(args, model, data), **_ood(args, TorchClassifier(model), data, probs)}
        print_json({"split": args.split, "images": len(data), "tta": args.tta, **result, **extra})
    else:
        print(f"{args.split}: {len(data):,} images  {_line(result)}{tta}")
        analysis_outputs(args, model, data)  # --report, --top-losses
        _ood(args, TorchClassifier(model), data, probs)
    return 0


def _ood(args, model, data, probs) -> dict:
    """``--ood SET...``: the not-clothing score on the split against each set; a table, or what --json adds."""
    if not args.ood:
        return {}
    settings = ood_of(model.meta)
    if settings is None:
        raise FashionCNNError("the model has no not-clothing detector; fit one with 'fashion-cnn calibrate RUN_OR_MODEL'")
    side = input_side(model.meta)
    sets = {name: ood_set(name, data.images, side=side) for name in dict.fromkeys(args.ood)}  # each refused before any work
    _, inside = model.predict_with_scores(data.images)
    correct = probs.argmax(1) == np.asarray(data.labels)
    rows = {name: separation(inside, model.predict_with_scores(x)[1], settings["threshold"], correct) for name, x in sets.items()}
    if args.json:
        return {"ood": {"threshold": settings["threshold"], "method": settings["method"], "sets": rows}}
    kept = next(iter(rows.values()))
    print(
        f"not clothing ({settings['method']}, threshold {settings['threshold']:.4f}): keeps {kept['kept']:.1%} of {args.split}, "
        f"accuracy on those {kept['accuracy_kept']:.4f} (all: {correct.mean():.4f})"
    )
    cells = max(len(n) for n in rows)
    print(f"  {'set':{cells}}  {'images':>6}  {'AUROC':>6}  {'FPR@95%TPR':>10}  {'passed':>7}")
    for name, r in rows.items():
        print(f"  {name:{cells}}  {r['images']:>6,}  {r['auroc']:>6.4f}  {r['fpr_at_95_tpr']:>10.1%}  {r['passed']:>7.1%}")
    return {}


def _reliability(args, probs, data) -> None:
    """``--reliability FILE``: the diagram of these probabilities."""
    if args.reliability:
        use_agg()
        wrote([save_figure(plot_reliability(probs, data.labels, title=f"{args.split} · reliability"), args.reliability)], quiet=args.json)


def _line(result: dict) -> str:
    """``loss 0.2541  accuracy 0.9105  ECE 0.0123``: the loss is the negative log-likelihood; ECE over 15 bins."""
    return f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  ECE {result['ece']:.4f}"


def analysis_outputs(args, model, data) -> dict:
    """``--report / --top-losses``: the analysis, its files, and (unless --json) its printout.

    Returns what to add to ``evaluate --json``'s output (empty when neither option is given).
    """
    if not (args.report or args.top_losses):
        return {}
    if not 0 <= args.top_losses <= MAX_TOP_LOSSES:
        raise FashionCNNError(f"--top-losses must be from 0 to {MAX_TOP_LOSSES} (a picture of more shows nothing), got {args.top_losses}")
    use_agg()
    out_dir = Path(args.out_dir) if args.out_dir else (Path(args.model_or_run) if Path(args.model_or_run).is_dir() else Path("."))
    analysis = analyze(model, data, class_names(model.meta, args.lang), split=args.split)
    written, extra = [], {}
    if args.report:
        written.append(save_figure(plot_confusion_matrix(analysis.confusion, analysis.names), out_dir / CONFUSION_PNG))
        extra.update(per_class=analysis.per_class, averages=analysis.averages, confusion=analysis.confusion.tolist())
        if not args.json:
            print(analysis.report_text())
    if args.top_losses:
        idx = analysis.top_losses(args.top_losses)
        written.append(save_figure(plot_top_losses(analysis, args.top_losses), out_dir / TOP_LOSSES_PNG))
        extra["top_losses"] = [
            {
                "index": int(i),
                "true": analysis.names[analysis.labels[i]],
                "predicted": analysis.names[analysis.predicted[i]],
                "probability": float(analysis.probs[i, analysis.predicted[i]]),
                "loss": float(analysis.losses[i]),
            }
            for i in idx
        ]
    extra["files"] = [str(p) for p in written]
    wrote(written, quiet=args.json)
    return extra
