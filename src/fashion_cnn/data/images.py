"""Your own pictures as Fashion-MNIST images: decode any common file, then make it look like the training data.

    fashion-cnn predict runs/NAME photo.jpg --show-input      # writes the 28×28 the model saw

Zalando built Fashion-MNIST from product photos (a garment on white) by trimming the background, resizing the
longest side to 28, centring on a 28×28 canvas and negating, so every image is a light object on black.
``load_image`` does the same to any photo, in this order:

1. **decode** (Pillow): PNG, JPEG, WebP, BMP or GIF (first frame), recognised by content, never by file name;
   EXIF orientation applied; transparency composited on white; converted to 8-bit grayscale.
2. **invert** when the background (the most common shade along the border) is light: a dark garment on a
   white table becomes a light garment on black, as in Fashion-MNIST. ``invert="never"`` / ``"always"``.
3. **trim** the background: crop to the box of pixels that differ from the background. ``trim=False``.
4. **level**: the remaining background becomes pure black (an off-white, noisy table is not Fashion-MNIST's
   clean 0) by stretching ``background..255`` to ``0..255``. ``level=False``.
5. **pad to a square and resize**: the longest side becomes 28 pixels and the object is centred, keeping its
   aspect ratio. ``keep_aspect=False`` stretches to 28×28 instead.

An image that is already 28×28 is never resampled, and is moved only when its object is clearly off-centre
(margins that differ by more than 3 pixels): every Fashion-MNIST image goes through exactly unchanged, so a
dataset image gets the same answer as a file, an upload or ``predict --index``. The same function serves
images from the dataset, photos, a folder dataset and the web service.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from ..errors import FashionCNNError
from ..files import open_regular

#: The formats accepted, by Pillow's name for them; a file is recognised by its first bytes.
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
#: File name endings treated as images when a folder is listed.
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
#: Refuse images with more pixels than this (decompression bombs); a 12-megapixel phone photo is well inside.
MAX_PIXELS = 40_000_000
#: Photos are reduced to at most this many pixels a side before trimming: plenty for a 28×28 result.
WORK_SIDE = 1024
INVERT_CHOICES = ("auto", "always", "never")
#: An object whose left and right (top and bottom) margins differ by at most this many pixels counts as
#: centred and is not moved: Fashion-MNIST's own images differ by up to 3 (its centring rounds).
CENTRED_WITHIN = 3
#: A model-sized image whose background is darker than this is taken as black already and not levelled.
NEAR_BLACK = 16


class ImageError(FashionCNNError):
    """A file or upload that cannot be used as an image."""


class UnsupportedImage(ImageError):
    """Not an image, or a format other than PNG, JPEG, WebP, BMP or GIF."""


class DamagedImage(ImageError):
    """A recognised format that does not decode (truncated, corrupt)."""


class ImageTooLarge(ImageError):
    """More pixels than allowed: refused before decoding."""


@dataclass(frozen=True)
class Preprocessing:
    """How a picture is turned into the model's input; every step but decoding can be turned off.

    Args:
        size: the side of the square result (the model's input, 28).
        invert: ``auto`` (invert when the background is light), ``always`` or ``never``.
        trim: crop to the object, dropping the background around it.
        level: make a dark background pure black by stretching ``background..255`` to ``0..255``.
        keep_aspect: pad to a square so the object keeps its shape; False stretches it to the square.
    """

    size: int = 28
    invert: str = "auto"
    trim: bool = True
    level: bool = True
    keep_aspect: bool = True

    def __post_init__(self):
        if self.invert not in INVERT_CHOICES:
            raise FashionCNNError(f"invert must be one of {', '.join(INVERT_CHOICES)}, got {self.invert!r}")
        if self.size < 1:
            raise FashionCNNError(f"the image size must be at least 1 pixel, got {self.size}")

    def to_dict(self) -> dict:
        return asdict(self)


def open_image(source: bytes | str | os.PathLike, *, max_pixels: int = MAX_PIXELS, name: str | None = None) -> Image.Image:
    """Decode a picture to 8-bit grayscale ("L"), upright, transparency on white.

    Args:
        source: the file's bytes, or its path.
        max_pixels: refuse (``ImageTooLarge``) anything larger, before its pixels are decoded.
        name: how to call the source in error messages (default: the path, or "the upload").

    Raises:
        UnsupportedImage, DamagedImage, ImageTooLarge: each with a one-line message naming ``name``.
    """
    return _guarded(source, name, max_pixels, _decode)


def decode_cost(source: bytes | str | os.PathLike, *, max_pixels: int = MAX_PIXELS, name: str | None = None) -> int:
    """The pixels decoding ``source`` would produce, read from its header without decoding any: a JPEG counts
    at the reduced scale it is decoded at (see ``open_image``). The web service sums it over a request to
    refuse work over its budget before doing any (decoding costs about 55 ns per pixel on one core).

    Raises:
        UnsupportedImage, DamagedImage, ImageTooLarge: as ``open_image`` would, for what the header shows.
    """

    def cost(fp, name, max_pixels) -> int:
        im = _open_checked(fp, name, max_pixels)
        return im.size[0] * im.size[1]

    return _guarded(source, name, max_pixels, cost)


def _guarded(source, name: str | None, max_pixels: int, fn):
    """``fn(fp, name, max_pixels)`` on the source opened as a file, every failure turned into an ``ImageError``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "the upload"
        if not len(source):
            raise UnsupportedImage(f"{name} is empty; send the bytes of a PNG, JPEG, WebP, BMP or GIF image")
        fp = io.BytesIO(source)
    else:
        name = name or str(source)
        try:
            fp = open_regular(source)
        except OSError as e:
            raise UnsupportedImage(f"cannot open {name} ({e.strerror or e}); check the path") from None
    try:
        with fp:
            return fn(fp, name, max_pixels)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) fired first, inside Image.open: same answer as ours.
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageTooLarge(f"{name} has {size}, more than the {max_pixels:,} allowed; send a smaller picture") from None
    except Exception as e:  # Pillow reports damaged data with many types (OSError, SyntaxError, ValueError, struct.error...)
        raise DamagedImage(f"{name} could not be decoded ({type(e).__name__}: {str(e)[:120]}); the file is damaged or truncated") from None


def _decode(fp, name: str, max_pixels: int) -> Image.Image:
    im = _open_checked(fp, name, max_pixels)
    im.load()  # decode the first frame now, so truncation surfaces here
    im = ImageOps.exif_transpose(im)
    return _to_gray(im)


def _open_checked(fp, name: str, max_pixels: int) -> Image.Image:
    """The picture opened and size-checked from its header, its pixels not yet decoded (a JPEG set to decode
    at the smallest scale that keeps ``WORK_SIDE``)."""
    try:
        im = Image.open(fp, formats=FORMATS)
    except Image.UnidentifiedImageError:
        raise UnsupportedImage(
            f"{name} is not a PNG, JPEG, WebP, BMP or GIF image (judged by its content); convert it to one of these"
        ) from None
    width, height = im.size
    # The header is read, the pixels are not: refuse a bomb before allocating anything.
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{name} is {width}×{height} = {width * height:,} pixels, more than the {max_pixels:,} allowed; send a smaller picture"
        )
    if width < 1 or height < 1:
        raise DamagedImage(f"{name} has no pixels ({width}×{height}); send a real picture")
    if im.format == "JPEG":
        # JPEG can decode at 1/2, 1/4 or 1/8 scale: far faster for phone photos, and enough for 28×28.
        # draft() keeps both sides at least as large as asked, so ask for the work size's box of this shape.
        scale = WORK_SIDE / max(width, height)
        if scale < 1:
            im.draft(im.mode, (max(1, round(width * scale)), max(1, round(height * scale))))
    return im


def _to_gray(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: Pillow's convert("L") clips instead of scaling, so scale by hand.
        a = np.asarray(im, dtype=np.int64)
        peak = 65535 if a.max(initial=0) > 255 else 255
        return Image.fromarray((a * 255 // peak).clip(0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return im.convert("L")


def preprocess(image: Image.Image | np.ndarray, options: Preprocessing = Preprocessing()) -> np.ndarray:
    """Turn a grayscale picture into a Fashion-MNIST-like uint8 image of ``options.size`` pixels a side.

    Args:
        image: a Pillow image (any mode; converted to grayscale) or a uint8 array (H, W).
        options: which steps to do (see ``Preprocessing``).

    Example:
        >>> x = preprocess(open_image("sneaker.jpg"))
        >>> x.shape, x.dtype, x[0, 0]      # a light garment on a black background
        ((28, 28), dtype('uint8'), np.uint8(0))
    """
    if isinstance(image, Image.Image):
        if image.mode != "L":
            image = _to_gray(image)
        if max(image.size) > WORK_SIDE:
            image = image.copy()
            image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
        a = np.asarray(image, dtype=np.uint8)
    else:
        a = np.asarray(image)
        if a.ndim != 2 or a.dtype != np.uint8:
            raise FashionCNNError(f"preprocess needs a grayscale uint8 array (H, W), got {a.dtype} {a.shape}")
    background, noise = background_level(a)
    if options.invert == "always" or (options.invert == "auto" and background > 127):
        a = 255 - a
        background = 255 - background
    native = a.shape == (options.size, options.size)
    # A light background left uninverted (invert="never") is kept; so is a model-sized image's near-black one
    # (a garment touching a Fashion-MNIST image's border makes its border read a few levels above 0).
    if options.level and background <= 127 and not (native and background < NEAR_BLACK):
        a, background = _level(a, background, noise), 0
    if not options.trim:
        return _fit(a, options.size, options.keep_aspect, fill=background)
    box = trim_box(a, background, noise)
    if native and options.keep_aspect:
        # Already the model's size (a Fashion-MNIST image, a 28×28 drawing): never resampled, and moved
        # only when clearly off-centre, so a dataset image reaches the model exactly as it is.
        return _recentre(a, box, fill=background)
    return _fit(a[box], options.size, options.keep_aspect, fill=background)


def background_level(a: np.ndarray) -> tuple[int, float]:
    """The background's shade and noise, read from the image's border.

    The shade is the most common one along the border (not the median: a garment that touches the edges of
    a Fashion-MNIST image can cover more than half of the border), refined to the median of the border
    pixels near it; the noise is their median absolute deviation.
    """
    if min(a.shape) < 3:
        border = a.ravel()
    else:
        border = np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])
    counts = np.bincount(border // 16, minlength=16)
    # Smooth over neighbouring bins: a gradient of light across a table spreads the background over two.
    smoothed = counts + np.concatenate([[0], counts[:-1]]) + np.concatenate([counts[1:], [0]])
    mode = int(smoothed.argmax()) * 16 + 8
    near = border[np.abs(border.astype(np.int16) - mode) <= 24]
    level = int(np.median(near)) if len(near) else mode
    noise = float(np.median(np.abs(near.astype(np.float32) - level))) if len(near) else 0.0
    return level, noise


def trim_box(a: np.ndarray, background: int, noise: float = 0.0) -> tuple[slice, slice]:
    """The rows and columns that hold the object: pixels clearly different from ``background``.

    A 3×3 box blur first dilutes sensor noise and JPEG ringing. Then, along each axis, bands of rows (columns)
    separated by a clear gap are weighed: a band with under 2% of the object's pixels (a speck of dust, a
    stray mark) is left out, so it does not widen the box, while two shoes of a pair both stay. An image with
    no object keeps its full extent.
    """
    threshold = max(8.0, 6 * noise)
    smooth = np.asarray(Image.fromarray(a).filter(ImageFilter.BoxBlur(1))) if min(a.shape) >= 3 else a
    mask = np.abs(smooth.astype(np.int16) - background) > threshold
    if not mask.any():
        return slice(0, a.shape[0]), slice(0, a.shape[1])
    return _span(mask.sum(1)), _span(mask.sum(0))


def _span(counts: np.ndarray) -> slice:
    """From the first to the last band of non-zero ``counts`` that holds at least 2% of their total."""
    filled = np.flatnonzero(counts)
    gap = max(2, round(0.04 * len(counts)))
    bands = np.split(filled, np.flatnonzero(np.diff(filled) > gap) + 1)
    total = counts.sum()
    kept = [b for b in bands if counts[b].sum() >= 0.02 * total] or bands
    return slice(int(kept[0][0]), int(kept[-1][-1]) + 1)


def _level(a: np.ndarray, background: int, noise: float) -> np.ndarray:
    # Just above the background's noise becomes 0, so a textured table leaves no speckle behind.
    black = min(background + 3 * noise, 254.0)
    if black <= 0:
        return a
    out = (a.astype(np.float32) - black) * (255.0 / (255.0 - black))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _fit(a: np.ndarray, size: int, keep_aspect: bool, fill: int = 0) -> np.ndarray:
    h, w = a.shape
    im = Image.fromarray(a, "L")
    if not keep_aspect:
        return np.array(im.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8) if (h, w) != (size, size) else a.copy()
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (size, size), int(fill))  # the padding continues the background
    canvas.paste(im, (_centred(size - nw), _centred(size - nh)))
    return np.array(canvas, dtype=np.uint8)  # a writable copy: torch.from_numpy refuses read-only arrays


def _centred(margin: int) -> int:
    """The leading margin that centres an object: Fashion-MNIST puts the odd pixel first (left, top)."""
    return (margin + 1) // 2


def _recentre(a: np.ndarray, box: tuple[slice, slice], fill: int) -> np.ndarray:
    """``a`` with the object in ``box`` moved to the centre, unless its margins already differ by at most
    ``CENTRED_WITHIN`` pixels (as every Fashion-MNIST image's do): then ``a`` itself, unchanged."""
    shifts = []
    for span, n in zip(box, a.shape):
        lead, trail = span.start, n - span.stop
        shifts.append(0 if abs(lead - trail) <= CENTRED_WITHIN else _centred(lead + trail) - lead)
    if not any(shifts):
        return a.copy()
    rows, cols = box
    out = np.full_like(a, fill)
    out[rows.start + shifts[0] : rows.stop + shifts[0], cols.start + shifts[1] : cols.stop + shifts[1]] = a[box]
    return out


def load_image(
    source: bytes | str | os.PathLike, options: Preprocessing = Preprocessing(), *, max_pixels: int = MAX_PIXELS, name: str | None = None
) -> np.ndarray:
    """Decode and preprocess one picture: a file path or its bytes → uint8 (size, size), light object on black.

    Example:
        >>> x = load_image("photo.jpg")
        >>> x.shape, predict_proba(model, x).shape
        ((28, 28), (10,))
    """
    return preprocess(open_image(source, max_pixels=max_pixels, name=name), options)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder``, by name ending, sorted; hidden files are skipped."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS)


def to_png(image: np.ndarray) -> bytes:
    """A uint8 array as PNG bytes: grayscale (H, W), as ``--show-input`` writes and the web page shows, or RGB
    (H, W, 3), as the service's Grad-CAM overlay."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
