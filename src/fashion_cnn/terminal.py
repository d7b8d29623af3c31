"""Text for a terminal: padded by display width (a Hangul syllable takes two cells, a Latin letter one), durations, tables.

``str.ljust`` counts characters, so columns after Korean class names wander by a cell per syllable;
these pad by the width rich measures (``rich.cells.cell_len``, East Asian Wide/Fullwidth = 2).

Example:
    >>> "|" + ljust("가방", 6) + "|", "|" + ljust("Bag", 6) + "|"
    ('|가방  |', '|Bag   |')
    >>> width(["가방", "Bag"])
    4
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from rich.cells import cell_len


def width(texts: Iterable[str]) -> int:
    """The widest of ``texts``, in terminal cells."""
    return max((cell_len(str(t)) for t in texts), default=0)


def ljust(text: str, cells: int) -> str:
    """``text`` padded on the right to ``cells`` terminal cells."""
    return str(text) + " " * max(0, cells - cell_len(str(text)))


def rjust(text: str, cells: int) -> str:
    """``text`` padded on the left to ``cells`` terminal cells."""
    return " " * max(0, cells - cell_len(str(text))) + str(text)


def duration(seconds: float | None) -> str:
    """A time for people: ``12.3 s``, ``4 min 05 s``, ``2 h 07 min``; ``—`` for None.

    Example:
        >>> duration(12.34), duration(245), duration(7650), duration(None)
        ('12.3 s', '4 min 05 s', '2 h 07 min', '—')
    """
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def print_table(table, title: str | None = None, file=None) -> None:
    """Print a ``rich.table.Table`` to ``file`` (default stdout), ``title`` on a line above it: fitted to a
    terminal's width, and at its full width into a pipe or a file, where rich would wrap every row at 80 columns."""
    from rich.console import Console

    console = Console(file=file or sys.stdout)
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update(max_width=10_000)).maximum
        console = Console(file=file or sys.stdout, width=max(80, natural))
    if title:  # a line of its own: rich pads a table's title with spaces to the table's width
        console.print(title, markup=False, highlight=False)
    console.print(table)
