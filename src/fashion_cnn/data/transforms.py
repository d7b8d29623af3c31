"""The tutorial's preprocessing, done per batch: uint8 (N, H, W) → float (N, 1, H, W) in 0..1."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import FashionCNNError

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


def as_pixels(images, side: tuple[int, int] | None = None) -> tuple[torch.Tensor, bool]:
    """Images as the model's engines take them, uint8 pixels (N, H, W), from what Keras and the tutorial pass;
    and whether one image was given (the caller then answers with one row).

    Accepted: uint8 (or any integer) pixels 0..255, or float pixels in 0..1 (the tutorial's ``train_scaled =
    train_input / 255.0``: rounded to the nearest of the 256 levels, which gives back the uint8 pixels exactly);
    shaped (N, H, W), (N, H, W, 1) as Keras holds them, (N, 1, H, W) as PyTorch does, or one (H, W) or
    (H, W, 1) image. Anything else is refused in one line saying what to pass: floats beyond 1 (0..255 floats:
    divide by 255, or pass uint8), negative or NaN values, other shapes, another size than ``side`` (H, W).

    Example:
        >>> x, single = as_pixels(np.full((2, 28, 28, 1), 128 / 255.0))
        >>> x.dtype, tuple(x.shape), int(x[0, 0, 0]), single
        (torch.uint8, (2, 28, 28), 128, False)
    """
    t = tensor_of(images)
    shape = tuple(t.shape)
    channel_last = t.ndim >= 3 and shape[-1] == 1 and (side is None or shape[-3:-1] == tuple(side))
    if t.ndim in (3, 4) and channel_last:
        t = t[..., 0]
    elif t.ndim == 4 and shape[1] == 1:
        t = t[:, 0]
    single = t.ndim == 2
    if single:
        t = t[None]
    if t.ndim != 3:
        raise FashionCNNError(f"images of shape {shape}: pass (N, H, W), (N, H, W, 1) or (N, 1, H, W) images, or one (H, W) image")
    if side is not None and tuple(t.shape[1:]) != tuple(side):
        raise FashionCNNError(
            f"images of {tuple(t.shape[1:])} pixels given to a model that takes {tuple(side)}; resize them first "
            "(fashion_cnn.load_image does, for a picture file)"
        )
    if t.dtype == torch.uint8:
        return t, single
    if t.dtype == torch.bool or t.is_complex():
        raise FashionCNNError(f"images of type {t.dtype}: pass uint8 pixels 0..255 or float pixels in 0..1")
    if not t.is_floating_point():
        low, high = (int(t.min()), int(t.max())) if t.numel() else (0, 0)
        if low < 0 or high > 255:
            raise FashionCNNError(f"integer images must be pixels 0..255; these run from {low} to {high}")
        return t.to(torch.uint8), single
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise FashionCNNError("images hold NaN or infinite values; pass uint8 pixels 0..255 or float pixels in 0..1")
    low, high = (float(t.min()), float(t.max())) if t.numel() else (0.0, 0.0)
    if low < 0 or high > 1:
        hint = (
            ": divide them by 255 (as the tutorial's train_input / 255.0) or pass them as uint8"
            if 0 <= low and high <= 255
            else ": pass pixels in 0..1 (for normalised images, undo the mean and standard deviation first)"
        )
        raise FashionCNNError(f"float images are taken as pixels in 0..1, and these run from {low:g} to {high:g}{hint}")
    return torch.round(t.double() * 255).to(torch.uint8), single
