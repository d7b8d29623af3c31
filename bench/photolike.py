"""Dataset images dressed up as photos: to check that preprocessing undoes what a camera does.

    python bench/robustness.py /tmp/runs/full1 --data-dir ../shared/data/fashion-mnist

``photo_like`` turns a 28×28 Fashion-MNIST image (light object on black) back into something like the
product photo it came from: a dark object on an off-white, slightly uneven, noisy background, enlarged,
placed off-centre with margins, and saved as JPEG. ``table_photo`` goes further (a larger textured table
and a soft shadow) for demos such as the README's sneaker. Both are deterministic given ``rng``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def photo_like(image: np.ndarray, rng: np.random.Generator, *, quality: tuple[int, int] = (70, 92)) -> bytes:
    """A JPEG "photo" of one uint8 (H, W) dataset image.

    Args:
        image: a light object on black, as in Fashion-MNIST.
        rng: the source of every random choice (scale, margins, background shade, noise, JPEG quality).
        quality: the range of JPEG qualities to draw from.
    """
    h, w = image.shape
    scale = rng.uniform(4, 10)
    obj = _enlarge(image, round(w * scale), round(h * scale))
    oh, ow = obj.shape
    top, bottom, left, right = (int(rng.uniform(0.1, 0.6) * max(oh, ow)) for _ in range(4))
    H, W = oh + top + bottom, ow + left + right
    shade = rng.uniform(215, 250)
    tilt = rng.uniform(-6, 6, size=2)  # uneven light: a few levels across the picture
    yy, xx = np.mgrid[0:H, 0:W]
    background = shade + tilt[0] * (yy / H - 0.5) + tilt[1] * (xx / W - 0.5)
    photo = background.copy()
    region = photo[top : top + oh, left : left + ow]
    # A dark object on a light ground: the light the object reflects falls with its Fashion-MNIST brightness.
    photo[top : top + oh, left : left + ow] = region * (1 - obj / 255.0)
    photo += rng.normal(0, 2.5, photo.shape)
    return _jpeg(photo, int(rng.integers(quality[0], quality[1] + 1)))


def table_photo(image: np.ndarray, rng: np.random.Generator, *, size: tuple[int, int] = (640, 480), quality: int = 85) -> bytes:
    """A JPEG of one dataset image as if photographed on a white table: grain, soft light, a faint shadow.

    Args:
        image: a light object on black, as in Fashion-MNIST.
        rng: the source of the texture and noise.
        size: the photo's width and height in pixels.
        quality: JPEG quality.
    """
    W, H = size
    h, w = image.shape
    scale = 0.62 * min(W / w, H / h)
    obj = _enlarge(image, round(w * scale), round(h * scale))
    oh, ow = obj.shape
    top, left = (H - oh) // 2 + int(rng.integers(-H // 20, H // 20 + 1)), (W - ow) // 2 + int(rng.integers(-W // 20, W // 20 + 1))
    yy, xx = np.mgrid[0:H, 0:W]
    # The table: off-white, lit from the top left, with a faint wood-like grain along x.
    table = 238 - 10 * (yy / H) - 6 * (xx / W)
    grain = np.asarray(
        Image.fromarray(rng.normal(128, 40, (H // 8, W)).clip(0, 255).astype(np.uint8)).resize((W, H), Image.Resampling.BICUBIC),
        dtype=np.float32,
    )
    table += (grain - 128) / 40 * 2.0
    silhouette = np.zeros((H, W), np.float32)
    silhouette[top : top + oh, left : left + ow] = (obj > 20) * 255.0
    shadow = Image.fromarray(silhouette.astype(np.uint8)).filter(ImageFilter.GaussianBlur(W / 60))
    shadow = np.roll(np.asarray(shadow, dtype=np.float32), (H // 60, W // 80), axis=(0, 1)) / 255.0
    photo = table * (1 - 0.12 * shadow)
    region = photo[top : top + oh, left : left + ow]
    photo[top : top + oh, left : left + ow] = region * (1 - 0.92 * obj / 255.0)
    photo += rng.normal(0, 2.0, photo.shape)
    return _jpeg(photo, quality)


def _enlarge(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image, "L").resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32).clip(0, 255)


def _jpeg(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
