"""Make, save and embed matplotlib figures without touching pyplot's global state.

Every picture function returns a ``matplotlib.figure.Figure`` made here. It is not registered with pyplot,
so a long-running process (the CLI, the web service) does not pile up open figures, and a notebook shows
it once when it is a cell's value. Saving is atomic and the format follows the file extension:

    fig = fc.plot_history("runs/tutorial"); save_figure(fig, "loss.svg")
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sys
from pathlib import Path

from ..errors import FashionCNNError
from ..files import atomic_path

#: Extensions ``save_figure`` accepts (those every matplotlib install can write without extra packages).
FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "eps", "ps")
DEFAULT_DPI = 150
#: Beyond this a figure reaches matplotlib's limit of 2^16 pixels a side (and gigabytes of memory).
MAX_DPI = 1200


def new_figure(width: float, height: float, **kwargs):
    """A white, standalone ``Figure`` of ``width`` x ``height`` inches (shown inline when a notebook cell's value)."""
    from matplotlib.figure import Figure

    _inline_in_jupyter()
    return Figure(figsize=(width, height), facecolor="white", **kwargs)


def _inline_in_jupyter() -> None:
    """In a Jupyter kernel, teach IPython to display ``Figure`` objects as pictures.

    The kernel's default backend, matplotlib-inline, registers that display when its module is imported, and
    matplotlib (3.9 and later) imports a backend only when pyplot draws its first figure: ours never go through
    pyplot, so a notebook would print ``<Figure size 640x480 with 1 Axes>`` instead. Importing it does what
    pyplot's first figure would (and nothing where the user chose another backend).
    """
    if "ipykernel" in sys.modules:
        with contextlib.suppress(ImportError):
            import matplotlib_inline.backend_inline  # noqa: F401


def check_format(path: str | os.PathLike) -> str:
    """The image format ``path``'s extension names, refused (with the fix) when matplotlib cannot write it."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise FashionCNNError(
            f"cannot tell the image format of {path!s}; end the file name with one of: {', '.join('.' + f for f in FORMATS)}"
        )
    return fmt


def save_figure(fig, path: str | os.PathLike, dpi: int | float | None = None) -> Path:
    """Write ``fig`` to ``path`` atomically; PNG, SVG, PDF... by extension.

    Args:
        fig: a matplotlib figure (any of fashion-cnn's picture functions returns one).
        path: the file to write; its parent folders are created.
        dpi: dots per inch for raster formats (default 150).
    """
    fmt = check_format(path)
    if dpi is not None and not 0 < dpi <= MAX_DPI:
        raise FashionCNNError(f"--dpi must be a number from 1 to {MAX_DPI} (300 is print quality), got {dpi}")
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi or DEFAULT_DPI, facecolor=fig.get_facecolor(), bbox_inches="tight", pad_inches=0.1)
    except OSError as e:
        raise FashionCNNError(f"cannot write {path} ({e.strerror or e}); choose a writable location with -o") from None
    return path


def png_bytes(fig, dpi: int | float = DEFAULT_DPI) -> bytes:
    """``fig`` as PNG bytes (for embedding in HTML or returning from a web service)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor(), bbox_inches="tight", pad_inches=0.1)
    return buf.getvalue()


def png_data_uri(fig, dpi: int | float = DEFAULT_DPI) -> str:
    """``fig`` (a figure, or PNG bytes drawn already) as a ``data:image/png;base64,...`` URI, so a page needs
    no separate image files."""
    png = fig if isinstance(fig, bytes) else png_bytes(fig, dpi)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
