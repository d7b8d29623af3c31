"""Data augmentation for 28×28 garments, done on a whole batch at once on the device (no per-image Python).

    fashion-cnn train --shift 2 --flip --erase 0.5            # what the stronger recipes use (see experiment/recipes.py)

* ``shift``: pad the picture by ``shift`` pixels of background (black) on every side, then crop a random
  window of the original size: the garment moves by up to ``shift`` pixels each way (torchvision's
  ``RandomCrop(28, padding=shift)``).
* ``flip``: mirror left-right with probability 1/2 (garments are symmetric enough; text on a T-shirt is rare).
* ``erase``: with this probability, blank a random rectangle (2–33 % of the picture, aspect 0.3–3.3) to black,
  as random erasing (Zhong et al., 2017) does; the model learns to use the whole garment.

Every random number comes from the ``generator`` that also shuffles the epochs, so a seed gives the same
augmented batches, and ``--resume`` continues them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import FashionCNNError

#: The area of an erased rectangle, as a share of the picture, and its aspect ratio (h / w): Zhong et al.'s.
ERASE_AREA, ERASE_ASPECT = (0.02, 0.33), (0.3, 1 / 0.3)


@dataclass(frozen=True)
class Augment:
    """Which augmentations a batch gets.

    Args:
        shift: the most pixels a picture moves each way (0: none).
        flip: mirror half the pictures left-right.
        erase: the probability that a picture gets a random black rectangle (0: never).

    Example:
        >>> aug = Augment(shift=2, flip=True, erase=0.5)
        >>> x = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
        >>> aug(x, torch.Generator().manual_seed(0)).shape, Augment()(x, torch.Generator()) is x
        (torch.Size([8, 28, 28]), True)
    """

    shift: int = 0
    flip: bool = False
    erase: float = 0.0

    def __post_init__(self):
        check_augment(self.shift, self.erase)

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.erase)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a uint8 batch (N, H, W); the labels are unchanged (every augmentation keeps the class)."""
        if not self.active or len(images) == 0:
            return images
        x = images
        if self.shift:
            x = random_shift(x, self.shift, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.erase:
            x = random_erase(x, self.erase, generator)
        return x


def check_augment(shift: int, erase: float) -> None:
    if not isinstance(shift, int) or isinstance(shift, bool) or not 0 <= shift <= 8:
        raise FashionCNNError(f"--shift must be a whole number of pixels from 0 to 8 (2 or 3 suits 28×28), got {shift!r}")
    if not isinstance(erase, (int, float)) or isinstance(erase, bool) or not 0 <= erase <= 1:
        raise FashionCNNError(f"--erase must be a probability from 0 to 1 (0.5 is usual), got {erase!r}")


def _uniform(n: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator).to(device)


def random_shift(images: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each picture moved by its own random offset of up to ``shift`` pixels each way, background filling in."""
    n, h, w = images.shape
    padded = torch.nn.functional.pad(images, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator).to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, :]  # (n, 1, w)
    return padded[torch.arange(n, device=images.device)[:, None, None], rows, cols]


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Half the pictures (chosen at random) mirrored left-right."""
    flip = _uniform(len(images), generator, images.device) < 0.5
    return torch.where(flip[:, None, None], images.flip(-1), images)


def random_erase(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """With probability ``p`` each, a random rectangle of the picture set to black (the background)."""
    n, h, w = images.shape
    device = images.device
    area = h * w * (ERASE_AREA[0] + (ERASE_AREA[1] - ERASE_AREA[0]) * _uniform(n, generator, device))
    log_lo, log_hi = math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * _uniform(n, generator, device))
    eh = torch.sqrt(area * aspect).round().clamp(1, h)
    ew = torch.sqrt(area / aspect).round().clamp(1, w)
    top = ((h - eh + 1) * _uniform(n, generator, device)).floor()
    left = ((w - ew + 1) * _uniform(n, generator, device)).floor()
    chosen = _uniform(n, generator, device) < p
    r = torch.arange(h, device=device)[None, :, None]
    c = torch.arange(w, device=device)[None, None, :]
    box = (r >= top[:, None, None]) & (r < (top + eh)[:, None, None]) & (c >= left[:, None, None]) & (c < (left + ew)[:, None, None])
    return images.masked_fill(box & chosen[:, None, None], 0)
