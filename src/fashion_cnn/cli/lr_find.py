"""``fashion-cnn lr-find``: the learning-rate range test, a plot of loss against learning rate and the suggested rate.

    fashion-cnn lr-find --data-dir ../shared/data/fashion-mnist -o lr.png
    fashion-cnn lr-find --data-dir ../shared/data/fashion-mnist --optimizer sgd --batch-size 128 --steps 200

The data, model, optimizer, batch, loss and sampling flags are ``train``'s own (from ``TrainConfig``), so the
test runs the training you are about to start; train next with ``--lr`` set to the rate it prints. How the
rate is chosen: ``fashion_cnn.training.lr_find``.
"""

from __future__ import annotations

from ..experiment.lr_find import lr_find
from ..inspection.figures import check_format, save_figure
from ..inspection.plots import plot_lr_find
from .common import add_config_args, add_dpi_arg, add_json_arg, config_from_args, print_json, use_agg

#: ``train``'s settings that the range test uses (the others, --epochs, --lr, the schedule and early stopping, play no part).
SETTINGS = (
    "dataset",
    "data_dir",
    "model",
    "batch_size",
    "optimizer",
    "weight_decay",
    "momentum",
    "adam_epsilon",
    "label_smoothing",
    "class_weight",
    "balanced_sampling",
    "shift",
    "flip",
    "erase",
    "recipe",
    "val_fraction",
    "split_seed",
    "seed",
    "limit",
    "device",
    "precision",
    "threads",
)


def register(sub) -> None:
    p = sub.add_parser(
        "lr-find",
        help="the learning-rate range test: draw loss against learning rate and print the suggested --lr",
        description="Train for a few batches while the learning rate grows exponentially, then suggest the rate where the loss falls "
        "fastest. The model is thrown away afterwards; nothing but the picture is written.",
    )
    p.add_argument("-o", "--output", default="lr-find.png", metavar="FILE", help="the picture (PNG, SVG, PDF...; default: lr-find.png)")
    p.add_argument("--start-lr", type=float, default=1e-7, help="the first learning rate (default: 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="the last learning rate, unless the loss diverges first (default: 10)")
    p.add_argument("--steps", type=int, default=100, help="mini-batches from --start-lr to --end-lr (default: 100)")
    add_config_args(p, SETTINGS)
    add_dpi_arg(p)
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    check_format(args.output)  # before the test runs, not after
    use_agg()
    result = lr_find(config_from_args(args), start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    path = save_figure(plot_lr_find(result), args.output, args.dpi)
    if args.json:
        print_json({"written": [str(path)], **result.to_json()})
        return 0
    stop = f"stopped at {result.lrs[-1]:.1e}, where the loss diverged" if result.diverged else "the loss did not diverge"
    how = "steepest descent of the smoothed loss" if result.method == "steepest descent" else "the loss never fell: its lowest point"
    print(
        f"Suggested learning rate: {result.suggestion:.1e} ({how}; the lowest loss's rate / 10: {result.min_over_10:.1e}); "
        f"{len(result.lrs)} steps from {result.start_lr:.0e}, {stop}"
    )
    print(f"Train with: fashion-cnn train --lr {result.suggestion:.1e} ...")
    print(f"Wrote {path}")
    return 0
