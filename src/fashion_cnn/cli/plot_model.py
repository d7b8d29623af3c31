"""``fashion-cnn plot-model``: the architecture diagram, like Keras' ``plot_model``.

fashion-cnn plot-model --show-shapes --dpi 300 -o cnn-architecture.png       # a fresh tutorial-cnn
fashion-cnn plot-model runs/tutorial --show-shapes -o cnn-architecture.svg   # a trained model
"""

from __future__ import annotations

from ..inspection.architecture import plot_model
from ..inspection.figures import check_format, save_figure
from .common import add_dpi_arg, add_json_arg, add_model_args, model_from_args, report_written, use_agg


def register(sub) -> None:
    p = sub.add_parser("plot-model", help="draw the architecture: one box per layer (Keras' plot_model)")
    add_model_args(p)
    p.add_argument("--show-shapes", action="store_true", help="show each layer's input and output shape")
    add_dpi_arg(p)
    p.add_argument("-o", "--output", default="model.png", help="image file; .png, .svg or .pdf (default: model.png)")
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    check_format(args.output)  # before any work
    use_agg()
    model = model_from_args(args)
    path = save_figure(plot_model(model, show_shapes=args.show_shapes), args.output, args.dpi)
    report_written(args, [path], model=model.arch["name"], parameters=sum(p.numel() for p in model.parameters()))
    return 0
