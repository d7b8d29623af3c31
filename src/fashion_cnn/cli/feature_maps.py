"""``fashion-cnn feature-maps``: what a layer outputs for one image, one small picture per channel.

    fashion-cnn feature-maps runs/NAME --split train --index 10148             # the book's ankle boot through conv2d (4×8)
    fashion-cnn feature-maps runs/NAME --split train --index 0 --layer conv2d_1   # 64 maps as 8×8
    fashion-cnn feature-maps runs/NAME --image sneaker.jpg                       # your own picture

Keras' ``Model(model.input, model.layers[0].output).predict(image)``: the first layer's maps still look like the
garment (edges, fills, backgrounds); the second's are coarser and more abstract. The book's image is the first of
the unsplit training file (an ankle boot); after the tutorial's 48,000 / 12,000 split it is ``train`` 10148.
"""

from __future__ import annotations

from ..errors import FashionCNNError
from ..inspection.figures import check_format, save_figure
from ..inspection.inside import plot_feature_maps
from ..inspection.internals import conv_layer_names, layer_outputs
from ..models.files import load_model
from .common import add_dpi_arg, add_json_arg, add_one_image_args, one_image, report_written, use_agg


def register(sub) -> None:
    p = sub.add_parser("feature-maps", help="draw what a layer outputs for one image (its feature maps)")
    add_one_image_args(p, default_split="train")
    p.add_argument("--layer", help="a convolution or pooling layer's name (default: the first convolution; see 'fashion-cnn summary RUN')")
    p.add_argument("--cols", type=int, default=8, help="maps per row (default: 8, the book's)")
    p.add_argument("-o", "--output", help="image file (default: feature-maps-LAYER.png)")
    add_dpi_arg(p)
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if not 1 <= args.cols <= 64:
        raise FashionCNNError(f"--cols must be from 1 to 64, got {args.cols}")
    model = load_model(args.model_or_run)
    layer = args.layer or (conv_layer_names(model) or [None])[0]
    if layer is None:
        raise FashionCNNError("the model has no convolution layer; name a layer with --layer (see 'fashion-cnn summary RUN')")
    output = args.output or f"feature-maps-{layer}.png"
    check_format(output)
    image, label, caption = one_image(args, model)
    maps = layer_outputs(model, image, [layer])[layer][0]
    use_agg()
    fig = plot_feature_maps(maps, cols=args.cols, title=f"{layer}: {caption}", image=image)
    report_written(args, [save_figure(fig, output, args.dpi)], layer=layer, shape=list(maps.shape), label=label)
    return 0
