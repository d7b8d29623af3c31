"""Text for a terminal, padded by display width: a Hangul syllable takes two cells, a Latin letter one.

``str.ljust`` counts characters, so columns after Korean class names wander by a cell per syllable;
these pad by the width rich measures (``rich.cells.cell_len``, East Asian Wide/Fullwidth = 2).

Example:
    >>> "|" + ljust("가방", 6) + "|", "|" + ljust("Bag", 6) + "|"
    ('|가방  |', '|Bag   |')
    >>> width(["가방", "Bag"])
    4
"""

from __future__ import annotations

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
