"""``fashion-cnn plot-history``: a run's loss and accuracy per epoch (the tutorial's two plots).

fashion-cnn plot-history runs/tutorial                   # runs/tutorial/loss.png, accuracy.png
fashion-cnn plot-history runs/tutorial -o pictures/ --dpi 300
"""

from __future__ import annotations

from ..inspection.run_outputs import write_curves
from .common import add_dpi_arg, add_json_arg, report_written, use_agg


def register(sub) -> None:
    p = sub.add_parser("plot-history", help="draw a run's loss and accuracy per epoch (loss.png, accuracy.png)")
    p.add_argument("run_dir", metavar="RUN", help="a run directory written by 'fashion-cnn train'")
    p.add_argument("-o", "--out-dir", metavar="DIR", help="folder for loss.png and accuracy.png (default: the run directory)")
    add_dpi_arg(p)
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    use_agg()
    report_written(args, write_curves(args.run_dir, out_dir=args.out_dir, dpi=args.dpi))
    return 0
