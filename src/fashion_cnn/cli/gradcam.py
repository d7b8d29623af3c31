"""``fashion-cnn gradcam``: why the model gave one image its class (Grad-CAM and a saliency map).

    fashion-cnn gradcam runs/NAME --split test --index 0                    # why 'Ankle boot'?
    fashion-cnn gradcam runs/NAME --split test --index 0 --class Sneaker    # why not 'Sneaker'?
    fashion-cnn gradcam runs/NAME --image sneaker.jpg --lang ko -o why.png

The heatmap (see ``fashion_cnn.inspection.attribution``) is laid over the 28×28 input the model saw; warm
colours are where the evidence for the class lies.
"""

from __future__ import annotations

from ..errors import FashionCNNError
from ..inspection.attribution import gradcam, saliency
from ..inspection.figures import check_format, save_figure
from ..inspection.inside import plot_gradcam
from ..models.files import load_model
from ..models.metadata import class_names
from .common import add_dpi_arg, add_json_arg, add_lang_arg, add_one_image_args, one_image, print_json, use_agg, wrote


def register(sub) -> None:
    p = sub.add_parser("gradcam", help="show where in one image the evidence for a class lies (Grad-CAM, saliency)")
    add_one_image_args(p)
    p.add_argument(
        "--class",
        dest="target",
        metavar="CLASS",
        help="the class to explain, by name (English or Korean) or number (default: the predicted one)",
    )
    p.add_argument("--layer", help="the convolution layer to take Grad-CAM at (default: the last)")
    add_lang_arg(p)
    p.add_argument("-o", "--output", default="gradcam.png", help="image file (default: gradcam.png)")
    add_dpi_arg(p)
    add_json_arg(p)
    p.set_defaults(run=run)


def target_of(text: str | None, meta: dict) -> int | None:
    """``--class`` as an index: a number, or a class name in either language (case-insensitive)."""
    if text is None:
        return None
    names = {lang: class_names(meta, lang) for lang in ("en", "ko")}
    if text.strip().isdigit():
        k = int(text)
        if k < len(names["en"]):
            return k
    for lang_names in names.values():
        for k, name in enumerate(lang_names):
            if name.casefold() == text.strip().casefold():
                return k
    raise FashionCNNError(f"--class {text!r} is not one of the model's classes: {', '.join(names['en'])} (or 0 to {len(names['en']) - 1})")


def run(args) -> int:
    check_format(args.output)
    model = load_model(args.model_or_run)
    target = target_of(args.target, model.meta)
    image, label, caption = one_image(args, model)
    cam = gradcam(model, image, target, args.layer)
    sal = saliency(model, image, cam.target)
    names = class_names(model.meta, args.lang, count=len(cam.probabilities))
    use_agg()
    path = save_figure(plot_gradcam(image, cam, names, sal), args.output, args.dpi)
    top = int(cam.probabilities.argmax())
    if args.json:
        print_json(
            {
                "written": [str(path)],
                "image": caption,
                "label": label,
                "predicted": top,
                "explained": cam.target,
                "probability": float(cam.probabilities[cam.target]),
                "layer": cam.layer,
                "heatmap": [[round(float(v), 4) for v in row] for row in cam.heatmap],
            }
        )
        return 0
    truth = f" (true: {names[label]})" if label is not None else ""
    print(f"{caption}: the model says {names[top]} {cam.probabilities[top]:.1%}{truth}")
    if cam.target != top:
        print(f"explaining {names[cam.target]} instead ({cam.probabilities[cam.target]:.1%})")
    wrote([path])
    return 0
