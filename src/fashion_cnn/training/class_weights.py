"""Class weights for imbalanced data: how much each class's images count in the training loss.

    fashion-cnn train --class-weight balanced           # scikit-learn's n_samples / (n_classes * count)
    fashion-cnn train --class-weight weights.json       # your own: {"Shirt": 4, "Coat": 4, "Pullover": 4, ...}

The loss is PyTorch's ``CrossEntropyLoss(weight=w)``: on a batch, ``sum_i w[y_i] * nll_i / sum_i w[y_i]``
(with label smoothing, PyTorch's weighted smoothing term over the same denominator). ``balanced`` weights
come from ``sklearn.utils.class_weight.compute_class_weight("balanced", ...)`` on the training split's
labels (after ``--limit``), never the validation or test split. A FILE is a JSON object mapping every class,
by name (``"Shirt"``) or by index (``"6"``), to a positive number. As in Keras' ``class_weight``, only the
training loss is weighted: ``val_loss`` (early stopping's monitor) stays the plain cross-entropy.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import FashionCNNError, first_line

BALANCED = "balanced"
#: The most bytes a weights file may have (ten classes take a few hundred).
MAX_FILE_BYTES = 1 << 20


def check_class_weight(value, balanced_sampling: bool = False) -> None:
    """Refuse a ``--class-weight`` that is neither None, ``balanced`` nor a readable JSON file of positive numbers,
    and ``balanced`` together with ``--balanced-sampling`` (each corrects the imbalance; both over-correct it).

    Which classes the file names is checked against the dataset in ``resolve_class_weights``.
    """
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise FashionCNNError(f"--class-weight must be 'balanced' or the path of a JSON file of weights, got {value!r}")
    if value == BALANCED:
        if balanced_sampling:
            raise FashionCNNError(
                "--class-weight balanced and --balanced-sampling each make up for the rare classes; together they over-correct: choose one"
            )
        return
    read_weights_file(value)


def read_weights_file(path: str | os.PathLike) -> dict[str, float]:
    """The ``{class: weight}`` object of a weights file, every weight a positive finite number.

    Example:
        >>> _ = Path("w.json").write_text('{"Shirt": 4, "0": 1.5}')
        >>> read_weights_file("w.json")
        {'Shirt': 4.0, '0': 1.5}
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise FashionCNNError(
            f'--class-weight {path} {what}; pass \'balanced\' or a JSON file such as {{"Shirt": 4, "T-shirt/top": 1, ...}}'
        )
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FashionCNNError(
                f"--class-weight {path} is larger than {MAX_FILE_BYTES:,} bytes; a weights file maps each class to one number"
            )
        # NaN and Infinity (which Python's JSON reads) become numbers that the check below refuses by name.
        pairs = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=list, parse_constant=float)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise FashionCNNError(
            f'--class-weight {path} is not a JSON file ({first_line(e, 100)}); write an object such as {{"Shirt": 4}}'
        ) from None
    if not isinstance(pairs, list) or any(not isinstance(p, tuple) for p in pairs):
        raise FashionCNNError(
            f'--class-weight {path} must hold one JSON object mapping class names or indices to weights, such as {{"Shirt": 4}}'
        )
    weights: dict[str, float] = {}
    for key, weight in pairs:
        if key in weights:
            raise FashionCNNError(f"--class-weight {path} names the class {key!r} twice; give each class one weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise FashionCNNError(
                f"--class-weight {path} gives {key!r} the weight {weight!r}; every weight must be a positive finite number (1 is the default)"
            )
        weights[key] = float(weight)
    return weights


def resolve_class_weights(value: str | None, labels, classes) -> np.ndarray | None:
    """The weight of each class in label order, as ``--class-weight value`` asks (None: no weights).

    Args:
        value: None, ``balanced`` or the path of a weights file.
        labels: the training split's labels (what ``balanced`` counts).
        classes: the dataset's class names in label order (what a file's names are matched against).

    Example:
        >>> resolve_class_weights("balanced", np.array([0, 0, 0, 1]), ("a", "b")).tolist()   # 4 / (2 * count)
        [0.6666666666666666, 2.0]
    """
    if value is None:
        return None
    classes = list(classes)
    if value == BALANCED:
        return balanced_weights(labels, classes)
    given = read_weights_file(value)
    weights: list[float | None] = [None] * len(classes)
    for key, weight in given.items():
        index = _class_index(key, classes, value)
        if weights[index] is not None:
            raise FashionCNNError(
                f"--class-weight {value} gives {classes[index]!r} two weights (by name and by index); give each class one"
            )
        weights[index] = weight
    missing = [name for name, w in zip(classes, weights) if w is None]
    if missing:
        raise FashionCNNError(
            f"--class-weight {value} has no weight for {', '.join(repr(m) for m in missing)}; give every class one (1 leaves it as it is)"
        )
    return np.asarray(weights, dtype=np.float64)


def balanced_weights(labels, classes) -> np.ndarray:
    """scikit-learn's ``balanced`` weights, ``len(labels) / (len(classes) * count)``, refusing a class with no image."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels)
    counts = np.bincount(labels.astype(np.int64), minlength=len(classes))
    empty = [name for name, n in zip(classes, counts) if n == 0]
    if empty:  # scikit-learn's own error names no class; a zero count has no balanced weight
        raise FashionCNNError(
            f"--class-weight balanced cannot weight {', '.join(repr(e) for e in empty)}: the training split has no image of it; "
            "give weights in a JSON file instead"
        )
    return compute_class_weight("balanced", classes=np.arange(len(classes)), y=labels).astype(np.float64)


def _class_index(key: str, classes: list[str], source: str) -> int:
    if key in classes:
        return classes.index(key)
    if key.isdigit() and int(key) < len(classes):
        return int(key)
    raise FashionCNNError(
        f"--class-weight {source} names the class {key!r}, which this dataset does not have; use a name of: "
        f"{', '.join(classes)} (or an index from 0 to {len(classes) - 1})"
    )


def weights_by_name(weights: np.ndarray | None, classes) -> dict[str, float] | None:
    """``{class name: weight}`` for config.json (None stays None)."""
    return None if weights is None else {name: round(float(w), 6) for name, w in zip(classes, weights)}


def weight_tensor(weights, num_classes: int | None, device) -> torch.Tensor | None:
    """``weights`` (a sequence, array or tensor; None: no weights) as the loss's fp32 tensor on ``device``,
    refusing a wrong length or a weight that is not a positive finite number."""
    if weights is None:
        return None
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64)).float()
    if w.ndim != 1 or (num_classes is not None and len(w) != num_classes):
        raise FashionCNNError(f"class weights must be one number per class ({num_classes or 'one per class'}), got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all() and (w > 0).all()):
        raise FashionCNNError(f"class weights must be positive finite numbers, got {w.tolist()}")
    return w.to(device)
