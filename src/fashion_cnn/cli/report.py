"""``fashion-cnn report``: a run's self-contained HTML report (curves, confusion matrix, top losses...).

fashion-cnn report runs/tutorial --data-dir ../shared/data/fashion-mnist     # runs/tutorial/report.html
fashion-cnn report runs/tutorial --split val --top-losses 32 -o val-report.html
"""

from __future__ import annotations

from ..data.types import SPLITS
from ..errors import FashionCNNError
from ..inspection.analysis import MAX_TOP_LOSSES, analyze
from ..inspection.report import write_report
from ..kernels.backend import use_kernels
from ..models.files import load_model
from ..rundir import RunDir
from .common import add_data_args, add_json_arg, add_kernels_arg, model_split, report_written, use_agg


def register(sub) -> None:
    p = sub.add_parser("report", help="write a run's self-contained HTML report (curves, confusion matrix, top losses...)")
    p.add_argument("run_dir", metavar="RUN", help="a run directory written by 'fashion-cnn train'")
    p.add_argument(
        "--split", choices=SPLITS, default="test", help="split for the confusion matrix, per-class table and top losses (default: test)"
    )
    p.add_argument(
        "--top-losses", type=int, default=16, metavar="N", help="how many most-confidently-wrong images to show (default 16; 0: none)"
    )
    add_data_args(p, dataset_default=None)
    p.add_argument("-o", "--output", help="HTML file (default: RUN/report.html)")
    add_json_arg(p)
    add_kernels_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    run_dir = RunDir.existing(args.run_dir)
    if not 0 <= args.top_losses <= MAX_TOP_LOSSES:
        raise FashionCNNError(f"--top-losses must be from 0 to {MAX_TOP_LOSSES} (a picture of more shows nothing), got {args.top_losses}")
    use_agg()
    model = load_model(run_dir.path)
    use_kernels(model, args.kernels)
    data = model_split(model, args.split, args.dataset, args.data_dir, source=run_dir.path)
    analysis = analyze(model, data, split=args.split)
    path = write_report(run_dir.path, args.output, analysis, model=model, top_losses=args.top_losses)
    report_written(args, [path], split=args.split, images=len(data), accuracy=analysis.accuracy)
    return 0
