"""The order an epoch visits the training images in: the tutorial's shuffle, or balanced sampling.

    fashion-cnn train --balanced-sampling        # every class drawn about equally often, whatever its count

Balanced sampling is ``torch.utils.data.WeightedRandomSampler`` with each image weighted by one over its
class's count, ``len(labels)`` draws with replacement: each epoch sees about as many images of every class
(the rare ones again and again, the common ones not all), and as many images in all as the shuffle does.
The draws come from the ``generator`` the caller passes (the one ``fit`` seeds with ``--seed`` and
``--resume`` restores), so the same seed gives the same epochs.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import FashionCNNError


def class_counts(labels, num_classes: int) -> np.ndarray:
    """How many images of each class ``labels`` holds, in label order (0 for a class it lacks).

    Example:
        >>> class_counts(np.array([0, 2, 2, 2]), 4).tolist()
        [1, 0, 3, 0]
    """
    labels = np.asarray(labels)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise FashionCNNError(f"labels run from {labels.min()} to {labels.max()}, outside the {num_classes} classes 0 to {num_classes - 1}")
    return np.bincount(labels.astype(np.int64), minlength=num_classes)


def balanced_sample_weights(labels) -> torch.Tensor:
    """Each image's chance of being drawn by balanced sampling: one over its class's count (float64).

    Every class present gets the same total weight, so each is drawn with probability 1 / (classes present).

    Example:
        >>> balanced_sample_weights(np.array([0, 1, 1, 1])).tolist()
        [1.0, 0.3333333333333333, 0.3333333333333333, 0.3333333333333333]
    """
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    counts = torch.bincount(labels)
    return 1.0 / counts[labels].to(torch.float64)


def balanced_order(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One epoch of balanced sampling: ``len(weights)`` image indices drawn with replacement, each with its weight.

    The same draws as ``list(WeightedRandomSampler(weights, len(weights), generator=generator))``, as one tensor.

    Args:
        weights: from ``balanced_sample_weights``.
        generator: the epoch order's random generator (seeded by the run).

    Example:
        >>> w = balanced_sample_weights(np.array([0] * 90 + [1] * 10))
        >>> order = balanced_order(w, torch.Generator().manual_seed(0))
        >>> len(order), 35 < int((order >= 90).sum()) < 65       # class 1: a tenth of the images, half the draws
        (100, True)
    """
    return torch.multinomial(weights, len(weights), replacement=True, generator=generator)
