"""Fonts for Hangul: the NanumGothic that ships inside the koreanize-matplotlib wheel, used explicitly.

matplotlib's default DejaVu Sans has no Hangul, so the tutorial's Korean class names would draw as empty
boxes. Rather than importing ``koreanize_matplotlib`` (which changes the global ``rcParams`` on import),
the font file is found through the package's location and handed to each Korean label as a
``FontProperties(fname=...)``, so nothing else in the user's plots changes.

    python -c "from fashion_cnn.inspection.fonts import hangul_font_path; print(hangul_font_path())"
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import io
from pathlib import Path

from ..errors import FashionCNNError

FONT_PACKAGE = "koreanize_matplotlib"
FONT_FILE, BOLD_FONT_FILE = "fonts/NanumGothic.ttf", "fonts/NanumGothicBold.ttf"
#: The CSS family name the HTML report gives the embedded subset.
CSS_FAMILY = "fashion-cnn-hangul"


#: Hangul syllables, jamo and compatibility jamo.
HANGUL_RANGES = ((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F))


def _is_hangul(ch: str) -> bool:
    return any(lo <= ord(ch) <= hi for lo, hi in HANGUL_RANGES)


def has_hangul(*texts: str) -> bool:
    """True when any text holds a Hangul syllable or jamo."""
    return any(_is_hangul(ch) for text in texts for ch in str(text))


@functools.cache
def hangul_font_path(bold: bool = False) -> Path:
    """NanumGothic(Bold).ttf inside the installed koreanize-matplotlib, found without importing the package."""
    name = BOLD_FONT_FILE if bold else FONT_FILE
    spec = importlib.util.find_spec(FONT_PACKAGE)
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / name
        if path.is_file():
            return path
    raise FashionCNNError(
        f"the Hangul font {name} of the koreanize-matplotlib package was not found; "
        "reinstall it with: pip install -c constraints.txt koreanize-matplotlib"
    )


def font_for(*texts: str, bold: bool = False, size: float | None = None):
    """A ``FontProperties`` with NanumGothic when ``texts`` hold Hangul, else None (matplotlib's default).

    A font given by file ignores ``weight``, so bold text asks for the bold file with ``bold=True``.

    Example:
        >>> font_for("가방").get_file().endswith("NanumGothic.ttf")
        True
        >>> font_for("Bag") is None
        True
    """
    if not has_hangul(*texts):
        return None
    from matplotlib.font_manager import FontProperties

    return FontProperties(fname=str(hangul_font_path(bold)), size=size)


def hangul_of(texts) -> str:
    """The distinct Hangul characters of ``texts``, sorted: what a font subset must hold."""
    return "".join(sorted({ch for text in texts for ch in str(text) if _is_hangul(ch)}))


def subset_font(hangul: str, *, bold: bool = False, flavor: str | None = None) -> bytes:
    """NanumGothic(Bold) cut down to the glyphs of ``hangul``: TrueType, or ``flavor="woff"`` (zlib, half the size)."""
    import logging

    from fontTools import subset

    # fontTools logs each table it cannot subset (NanumGothic's hinting sources); they are dropped, harmlessly.
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    options = subset.Options()
    options.flavor = flavor
    options.desubroutinize = True
    buf = io.BytesIO()
    with subset.load_font(str(hangul_font_path(bold)), options) as font:  # closes the 2 MB font file
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=hangul)
        subsetter.subset(font)
        subset.save_font(font, buf, options)
    return buf.getvalue()


@functools.lru_cache(maxsize=16)  # subsetting reads the whole 2 MB font (~1 s); a process reuses its class names
def hangul_css(text: str) -> str:
    """An ``@font-face`` rule embedding only the Hangul glyphs of ``text`` (a few KB), or "" without Hangul.

    Browsers without a Korean system font (a bare Debian, a CI container) then still show the Korean
    class names in the HTML report instead of empty boxes, with no network access. The rule's
    ``unicode-range`` limits it to Hangul, so the family can go first in a font stack without changing
    how Latin text looks.
    """
    hangul = hangul_of([text])
    if not hangul:
        return ""
    data = base64.b64encode(subset_font(hangul)).decode("ascii")
    ranges = ", ".join(f"U+{lo:04X}-{hi:04X}" for lo, hi in HANGUL_RANGES)
    return (
        f"@font-face {{ font-family: '{CSS_FAMILY}'; src: url(data:font/ttf;base64,{data}) format('truetype'); "
        f"unicode-range: {ranges}; font-display: block; }}\n"
    )
