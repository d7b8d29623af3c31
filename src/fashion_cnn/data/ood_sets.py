"""Images that are not clothing, made offline, to measure the not-clothing score against (``evaluate --ood``).

    fashion-cnn evaluate runs/NAME --ood digits uniform gaussian flipped photos photo-crops
    fashion-cnn evaluate runs/NAME --ood mnist kmnist --data-dir ...     # where their files are in the cache

Each set is uint8 (N, 28, 28), light on dark like Fashion-MNIST, and the same every time (seeded):

- ``digits``: scikit-learn's 1,797 handwritten digits (8×8, shipped with it), upscaled to the model's size.
- ``uniform``, ``gaussian``: noise, uniform over 0..255 and normal around 128 (σ 64), 2,000 each.
- ``flipped``: the given in-distribution images (the test split) upside down.
- ``photos``: crops of the photographs scikit-image ships (astronaut, cat, coffee, rocket, coins, the moon...;
  no download), 60 of each at random sizes and places, through the photo preprocessing ``predict photo.jpg``
  uses (``data.images.preprocess``: what the model sees of a photo you send it).
- ``photo-crops``: the same crops simply resized, as a dataset image would be.
- ``mnist``, ``kmnist``: those datasets' test images, where their files are in the data cache (``fashion-cnn
  train --dataset mnist`` downloads them) or in ``mnist:DIR``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import FashionCNNError
from .images import Preprocessing, preprocess
from .loading import load_dataset

OOD_SETS = ("digits", "uniform", "gaussian", "flipped", "photos", "photo-crops", "mnist", "kmnist")
#: scikit-image's photographs that need no download (its synthetic images, masks and drawings left out).
PHOTOS = (
    "astronaut", "camera", "cat", "coffee", "coins", "rocket", "moon", "clock", "brick", "grass",
    "gravel", "hubble_deep_field", "page", "text", "retina", "immunohistochemistry",
)  # fmt: skip
CROPS_PER_PHOTO = 60
NOISE_IMAGES = 2000


def check_ood_set(name: str) -> None:
    """Refuse, before any work, a set name ``ood_set`` does not know."""
    if name.partition(":")[0] not in OOD_SETS or (":" in name and not name.startswith(("mnist:", "kmnist:"))):
        raise FashionCNNError(f"unknown out-of-distribution set {name!r}; choose from: {', '.join(OOD_SETS)} (or mnist:DIR, kmnist:DIR)")


def ood_set(name: str, in_distribution: np.ndarray | None = None, *, side: int = 28, seed: int = 0) -> np.ndarray:
    """The named set (see the module's docstring) as uint8 (N, side, side).

    Args:
        name: one of ``OOD_SETS``; ``mnist`` and ``kmnist`` may name their folder: ``mnist:DIR``.
        in_distribution: the images ``flipped`` turns upside down (the test split).
        side: the model's input size.
        seed: for the noise and the crops.

    Example:
        >>> ood_set("digits").shape, ood_set("uniform", seed=1).dtype
        ((1797, 28, 28), dtype('uint8'))
    """
    base, _, folder = name.partition(":")
    rng = np.random.default_rng(seed)
    if base == "digits":
        from sklearn.datasets import load_digits

        return np.stack([_resize(np.clip(d * 16, 0, 255), side) for d in load_digits().images])
    if base == "uniform":
        return rng.integers(0, 256, (NOISE_IMAGES, side, side), dtype=np.uint8)
    if base == "gaussian":
        return np.clip(rng.normal(128, 64, (NOISE_IMAGES, side, side)), 0, 255).astype(np.uint8)
    if base == "flipped":
        if in_distribution is None:
            raise FashionCNNError("the flipped set needs the in-distribution images to turn upside down")
        return np.ascontiguousarray(np.asarray(in_distribution)[:, ::-1, :])
    if base in ("photos", "photo-crops"):
        crops = _photo_crops(rng)
        if base == "photos":
            options = Preprocessing(size=side)
            return np.stack([preprocess(Image.fromarray(c), options) for c in crops])
        return np.stack([_resize(c, side) for c in crops])
    if base in ("mnist", "kmnist"):
        images = load_dataset(base, folder or None, download=False).test.images
        return images if images.shape[1] == side else np.stack([_resize(i, side) for i in images])
    check_ood_set(name)
    raise AssertionError(name)  # check_ood_set refused it


def _resize(a: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(np.asarray(a).astype(np.uint8)).resize((side, side), Image.BILINEAR))


def _photo_crops(rng: np.random.Generator) -> list[np.ndarray]:
    """Square grayscale crops of scikit-image's photographs: 20% to all of the shorter side, anywhere."""
    try:
        import skimage.data
    except ImportError:
        raise FashionCNNError("the photo sets need scikit-image: pip install 'fashion-cnn[ood]'") from None
    crops = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        gray = np.asarray(Image.fromarray(image).convert("L")) if image.ndim == 3 else image
        h, w = gray.shape
        for _ in range(CROPS_PER_PHOTO):
            s = int(rng.uniform(0.2, 1.0) * min(h, w))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            crops.append(gray[y : y + s, x : x + s])
    return crops
