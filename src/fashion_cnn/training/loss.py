"""The training loss: sparse categorical cross-entropy, optionally class-weighted and label-smoothed.

``fit`` and ``lr-find`` both compute their loss here, so what ``--class-weight`` and ``--label-smoothing``
mean is written once: PyTorch's ``CrossEntropyLoss(weight=w, label_smoothing=e)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def training_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    weight_total: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean loss of a batch: ``sum_i w[y_i] * nll_i / sum_i w[y_i]`` (``nll_i = -log softmax(logits_i)[y_i]``).

    Without ``weight`` every ``w`` is 1: the plain mean, the tutorial's loss.

    Args:
        logits: (N, classes), computed in fp32 here whatever the autocast.
        labels: (N,) class indices.
        weight: (classes,) the weight of each class (``class_weights.resolve_class_weights``), or None.
        label_smoothing: the share of each target spread over all classes (PyTorch's definition, weighted
            by ``weight`` over the same denominator).
        weight_total: under DDP, ``sum w[y]`` over the whole global batch divided by the number of ranks, so
            that the ranks' losses, averaged by DDP, are the single-process loss of the global batch (each
            rank's own ``sum w[y]`` differs when the classes fall unevenly between them). None: this batch's own.

    Example:
        >>> logits, labels, w = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]), torch.tensor([3.0, 1.0])
        >>> nll = -logits.log_softmax(1)[:, 0]
        >>> bool(torch.isclose(training_loss(logits, labels, weight=w), (3 * nll).sum() / 6))
        True
    """
    logits = logits.float()
    if weight is not None:
        weight = weight.to(logits.dtype)
    if weight is None:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    if weight_total is None:
        return F.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing)
    return F.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing, reduction="sum") / weight_total
