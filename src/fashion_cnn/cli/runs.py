"""``fashion-cnn runs``: every run in a folder, one row each, to find the best one and what it took.

    fashion-cnn runs                               # runs/, oldest first
    fashion-cnn runs ~/experiments --sort test_accuracy
    fashion-cnn runs --sort seconds --reverse --json

A row: name, status, model, recipe, epochs (done/most), the best epoch's validation accuracy, the test accuracy,
training time, precision, CPU, date. A run still training, stopped before its final metrics or damaged is shown
as such, with a note under the table saying why; a folder that is no run is left out.
"""

from __future__ import annotations

from datetime import datetime

from ..experiment.runs import COLUMNS, RunInfo, list_runs
from ..terminal import duration, print_table
from .common import add_json_arg, print_json

STATUS_STYLE = {"finished": "green", "training": "yellow", "incomplete": "red", "damaged": "bold red"}


def register(sub) -> None:
    p = sub.add_parser("runs", help="list the runs in a folder: model, recipe, epochs, best val and test accuracy, time, date")
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="DIR", help="the folder that holds the runs (default: runs)")
    p.add_argument(
        "--sort",
        default="date",
        metavar="COLUMN",
        help=f"order by this column (default: date); accuracies highest first, the rest lowest first; one of: {', '.join(COLUMNS)}",
    )
    p.add_argument("-r", "--reverse", action="store_true", help="the other way round")
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    runs = list_runs(args.runs_dir, sort=args.sort, reverse=args.reverse)
    if args.json:
        print_json([r.as_dict() for r in runs])
        return 0
    if not runs:
        print(f"No runs in {args.runs_dir} yet; train one with: fashion-cnn train --runs-dir {args.runs_dir}")
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for header, justify in HEADERS:
        table.add_column(header, justify=justify, no_wrap=header != "name")
    best = max((r.test_accuracy for r in runs if r.test_accuracy is not None), default=None)  # in bold
    for r in runs:
        # Text, not markup: a run's name or a CPU's may hold "[...]", which rich would read as a style.
        table.add_row(
            Text(r.name),
            Text(r.status, style=STATUS_STYLE[r.status]),
            Text(r.model or "—"),
            Text(r.recipe or "—"),
            epochs(r),
            number(r.best_val_accuracy) + (f" ({r.best_epoch})" if r.best_epoch is not None else ""),
            Text(number(r.test_accuracy), style="bold" if len(runs) > 1 and r.test_accuracy == best else ""),
            duration(r.seconds),
            Text(r.precision or "—"),
            Text(r.cpu or "—"),
            date(r.date),
        )
    print_table(table, f"{len(runs)} run{'s' if len(runs) != 1 else ''} in {args.runs_dir}")
    for r in runs:
        if r.detail and r.status != "finished":
            print(f"  {r.name}: {r.status}, {r.detail}")
    return 0


HEADERS = (
    ("name", "left"),
    ("status", "left"),
    ("model", "left"),
    ("recipe", "left"),
    ("epochs", "right"),
    ("best val acc (epoch)", "right"),
    ("test acc", "right"),
    ("time", "right"),
    ("precision", "left"),
    ("CPU", "left"),
    ("date", "left"),
)


def number(x: float | None) -> str:
    """A loss or an accuracy to 4 places, as ``train`` prints them."""
    return "—" if x is None else f"{x:.4f}"


def epochs(r: RunInfo) -> str:
    """``3/20``: epochs done of the most asked for."""
    done = "—" if r.epochs is None else str(r.epochs)
    return done if r.max_epochs is None else f"{done}/{r.max_epochs}"


def date(iso: str | None) -> str:
    """``2025-01-31 14:05`` in this machine's time zone."""
    return "—" if iso is None else datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
