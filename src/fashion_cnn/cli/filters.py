"""``fashion-cnn filters``: a convolution layer's filters, their weights' histogram, mean and standard deviation.

    fashion-cnn filters runs/NAME                        # filters.png: conv2d's 32 filters as 2×16, + histogram
    fashion-cnn filters runs/NAME --untrained            # beside the same architecture freshly initialised (same seed)
    fashion-cnn filters runs/NAME --layer conv2d_1 -o filters-2.png

The book's first look inside the trained CNN: trained filters have structure (edges, blobs) and a wider spread
of weights than the small, uniform Glorot initialisation they started from.
"""

from __future__ import annotations

from ..errors import FashionCNNError
from ..inspection.figures import check_format, save_figure
from ..inspection.inside import FILTER_RANGE, plot_filters
from ..inspection.internals import conv_filters, conv_layer_names, untrained_like, weight_stats
from ..models.files import load_model
from .common import add_dpi_arg, add_json_arg, print_json, run_of, use_agg, wrote


def register(sub) -> None:
    p = sub.add_parser("filters", help="draw a convolution layer's filters and the histogram of their weights")
    p.add_argument("model_or_run", metavar="RUN_OR_MODEL", help="a run directory (its best.safetensors) or a .safetensors model file")
    p.add_argument("--layer", help="a convolution layer's name (default: the first; see 'fashion-cnn summary RUN')")
    p.add_argument("--untrained", action="store_true", help="also draw the same architecture freshly initialised, with the run's seed")
    p.add_argument("--input-channel", type=int, default=0, help="which input channel of each filter to draw (default: 0)")
    p.add_argument("--range", type=float, default=FILTER_RANGE, help=f"colour range ±R (default: {FILTER_RANGE}, the book's)")
    p.add_argument("-o", "--output", default="filters.png", help="image file (default: filters.png)")
    add_dpi_arg(p)
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    check_format(args.output)
    if not 0 < args.range < 1e6:
        raise FashionCNNError(f"--range must be a positive number of weight units (the book's is 0.5), got {args.range:g}")
    model = load_model(args.model_or_run)
    name = args.layer
    kernel, bias = conv_filters(model, name)
    kernels = {"trained": kernel}
    if args.untrained:
        run = run_of(args.model_or_run)
        seed = int((run.config() or {}).get("seed", 0)) if run else 0
        kernels["untrained"] = conv_filters(untrained_like(model, seed), name)[0]
    use_agg()
    layer = name or conv_layer_names(model)[0]
    fig = plot_filters(kernels, input_channel=args.input_channel, limit=args.range, title=layer)
    path = save_figure(fig, args.output, args.dpi)
    stats = {label: weight_stats(k) for label, k in kernels.items()}
    if args.json:
        print_json(
            {
                "written": [str(path)],
                "layer": layer,
                "shape": list(kernel.shape),
                "bias": weight_stats(bias) if bias is not None else None,
                **stats,
            }
        )
        return 0
    out, inp, h, w = kernel.shape
    print(f"{layer}: {out} filters of {h}×{w} on {inp} input channel{'s' if inp != 1 else ''} (Keras' kernel shape: {h}×{w}×{inp}×{out})")
    for label, s in stats.items():
        print(f"  {label:<9} mean {s['mean']:+.4f}  std {s['std']:.4f}  min {s['min']:+.4f}  max {s['max']:+.4f}")
    if bias is not None:
        print(f"  {'bias':<9} mean {float(bias.mean()):+.4f}  std {float(bias.std()):.4f}")
    wrote([path])
    return 0
