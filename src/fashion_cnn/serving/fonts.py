"""The page's Hangul font: NanumGothic (regular and bold) cut down to the model's Korean class names, served by the app.

The page relies on system fonts, and a machine without a Korean one (a bare Debian, a container) would show the
Korean class names as empty boxes. The app therefore serves, from this machine, a subset of the NanumGothic that
ships inside the koreanize-matplotlib package (as the HTML report embeds one, ``fashion_cnn.inspection.fonts``):

    GET /fonts/hangul.css                    the @font-face rules (family ``fashion-cnn-hangul``, Hangul only)
    GET /fonts/hangul-<digest>-400.woff      the class names' glyphs (Fashion-MNIST's: 7 KB); -700: bold

The font files' names carry a digest of the glyphs they hold, so a browser may keep them for good, and a model
with other class names gets other files. The page's Content-Security-Policy needs nothing more than
``font-src 'self'``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import FashionCNNError
from ..inspection.fonts import CSS_FAMILY, HANGUL_RANGES, hangul_of, subset_font

log = logging.getLogger("fashion_cnn.serving")

#: Where the app serves the stylesheet and the font files.
FONT_ROUTE = "/fonts"
WEIGHTS = (400, 700)


@dataclass(frozen=True)
class PageFonts:
    """The stylesheet and the font files (name → WOFF bytes) for one set of Korean names; empty without Hangul."""

    css: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


def page_fonts(texts: Iterable[str]) -> PageFonts:
    """The page's Hangul fonts for the names ``texts`` (the model's ``classes_ko``); built once per set of glyphs.

    Example:
        >>> fonts = page_fonts(["가방", "바지"])
        >>> sorted(fonts.files)[0].endswith("-400.woff"), "font-family: 'fashion-cnn-hangul'" in fonts.css
        (True, True)
        >>> page_fonts(["Bag"]).css
        ''
    """
    return _page_fonts(hangul_of(texts))


@functools.lru_cache(maxsize=8)  # subsetting reads the 2 MB fonts (~0.3 s); every app in a process shares the result
def _page_fonts(hangul: str) -> PageFonts:
    if not hangul:
        return PageFonts()
    try:
        fonts = {weight: subset_font(hangul, bold=weight >= 700, flavor="woff") for weight in WEIGHTS}
    except (FashionCNNError, OSError) as e:  # the page still works, with the system's fonts
        log.warning("the page's Korean names may show as empty boxes: %s", e)
        return PageFonts()
    digest = hashlib.sha256(hangul.encode()).hexdigest()[:12]
    files = {f"hangul-{digest}-{weight}.woff": data for weight, data in fonts.items()}
    ranges = ", ".join(f"U+{lo:04X}-{hi:04X}" for lo, hi in HANGUL_RANGES)
    # unicode-range: the family can go first in the page's font stack without changing how Latin text looks.
    css = "".join(
        f"@font-face {{ font-family: '{CSS_FAMILY}'; src: url({FONT_ROUTE}/{name}) format('woff'); "
        f"font-weight: {weight}; unicode-range: {ranges}; font-display: block; }}\n"
        for (weight, _), name in zip(fonts.items(), files)
    )
    return PageFonts(css, files)
