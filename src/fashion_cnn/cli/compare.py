"""``fashion-cnn compare``: two or more runs' curves in one picture, and the settings that differ between them.

    fashion-cnn compare runs/tutorial runs/fast                 # compare.png, and the table
    fashion-cnn compare runs/* -o curves.svg --dpi 300 --json

The picture: loss and accuracy per epoch, one colour per run, training solid and validation dashed. The table:
each config.json setting whose value is not the same in every run, then each run's epochs, best epoch, best
validation loss and accuracy, test loss and accuracy, and training time.
"""

from __future__ import annotations

import json

from ..experiment.runs import compare_runs
from ..inspection.figures import save_figure
from ..inspection.plots import plot_runs
from ..terminal import duration, print_table
from .common import add_dpi_arg, add_json_arg, print_json, use_agg, wrote
from .runs import epochs, number


def register(sub) -> None:
    p = sub.add_parser("compare", help="overlay two or more runs' curves in one picture and list the settings that differ")
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more run directories written by 'fashion-cnn train'")
    p.add_argument("-o", "--output", default="compare.png", metavar="FILE", help="the picture (.png, .svg, .pdf...; default: compare.png)")
    add_dpi_arg(p)
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    comparison = compare_runs(args.runs)
    use_agg()
    path = save_figure(plot_runs(comparison.histories), args.output, args.dpi)
    if args.json:
        print_json(
            {
                "runs": [r.as_dict() for r in comparison.runs],
                "labels": comparison.labels,
                "settings": comparison.settings,
                "written": [str(path)],
            }
        )
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("")
    for label in comparison.labels:
        table.add_column(Text(label), justify="right")
    for key, values in comparison.settings.items():
        table.add_row(Text(key), *(Text(setting(v)) for v in values))
    if comparison.settings:
        table.add_section()
    runs = comparison.runs
    for name, cells in (
        ("status", [r.status for r in runs]),
        ("epochs run", [epochs(r) for r in runs]),
        ("best epoch", ["—" if r.best_epoch is None else str(r.best_epoch) for r in runs]),
        ("best val loss", [number(r.best_val_loss) for r in runs]),
        ("best val accuracy", [number(r.best_val_accuracy) for r in runs]),
        ("test loss", [number(r.test_loss) for r in runs]),
        ("test accuracy", [number(r.test_accuracy) for r in runs]),
        ("time", [duration(r.seconds) for r in runs]),
    ):
        table.add_row(name, *cells)
    print_table(table, f"{len(comparison.runs)} runs compared" + ("" if comparison.settings else "; every setting is the same"))
    wrote([path])
    return 0


def setting(value) -> str:
    """A config.json value as its file shows it (text without quotes); ``—`` for a setting a run does not have."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value)
