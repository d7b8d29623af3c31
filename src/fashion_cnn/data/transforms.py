"""The tutorial's preprocessing, done per batch: uint8 (N, H, W) → float (N, 1, H, W) in 0..1."""

from __future__ import annotations

import numpy as np
import torch

#: ``x / 255``: the tutorial's only normalisation. Stored in model files so every consumer applies the same.
SCALE = 1.0 / 255.0


def input_meta(height: int = 28, width: int = 28) -> dict:
    """How a model file describes its input: one channel of uint8 pixels, scaled by ``SCALE``."""
    return {"channels": 1, "height": height, "width": width, "scale": SCALE}


def to_model_input(images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Scale a uint8 batch to 0..1 and add the channel axis (``reshape(-1, 28, 28, 1) / 255`` in Keras)."""
    if device is not None:
        images = images.to(device, non_blocking=True)
    return images.unsqueeze(1).to(torch.float32).mul_(SCALE)


def tensor_of(array) -> torch.Tensor:
    """A tensor for a NumPy array (or anything array-like), sharing its memory when it may be written to.

    A read-only array (what ``np.frombuffer`` and Keras' ``load_data()`` return) is copied: torch can only
    share writable memory, and would otherwise warn on every call; so is a view with negative strides.
    """
    if isinstance(array, torch.Tensor):
        return array
    a = np.asarray(array)
    # torch can share neither read-only memory nor a view that runs backwards (a[:, ::-1], a mirror image).
    return torch.from_numpy(a if a.flags.writeable and min(a.strides, default=0) >= 0 else a.copy())
