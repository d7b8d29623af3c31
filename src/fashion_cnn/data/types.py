"""What every other part of fashion-cnn receives from ``data/``: images with labels, a dataset, the split.

The bottom of the data package: it imports nothing of fashion-cnn but the error type, so loaders (IDX,
folders), training, inspection and serving can all use these types without importing each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from ..errors import FashionCNNError

#: The names of the splits: the tutorial's 48,000 / 12,000 of ``train``, and the test set.
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabeledImages:
    """Images and their labels, kept as the uint8 pixels on disk.

    Scaling to 0..1 and adding the channel axis (the tutorial's ``reshape(-1, 28, 28, 1) / 255``) happens
    per batch in the training step, so the whole set stays 1 byte per pixel in memory.

    Args:
        images: uint8 array of shape (N, H, W).
        labels: int64 array of shape (N,).
        classes: the class names in label order, when known (a loaded dataset's splits know them), so a
            model trained on these images records them (``fit`` passes them on to every model file).
        classes_ko: the same in Korean (the tutorial's), or None.
        dataset: the name of the dataset they come from (``fashion-mnist``, ``folder:/path``...).
        split: how they were split off (``{"val_fraction": 0.2, "split_seed": 42}``), or None.

    Example:
        >>> data = load_dataset("fashion-mnist", data_dir=toy_data)
        >>> train, val = train_val_split(data.train)
        >>> train.classes[8], train.dataset, train.split
        ('Bag', 'fashion-mnist', {'val_fraction': 0.2, 'split_seed': 42})
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...] | None = None
    classes_ko: tuple[str, ...] | None = None
    dataset: str | None = None
    split: dict | None = None

    def __post_init__(self):
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise FashionCNNError(f"images must be a uint8 array of shape (N, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise FashionCNNError(f"{len(self.images)} images but labels of shape {self.labels.shape}; the counts must agree")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> LabeledImages:
        """The images (and labels) at ``index``: a slice, an index array or a mask; names and origin kept."""
        return replace(self, images=self.images[index], labels=self.labels[index])


@dataclass(frozen=True)
class Dataset:
    """A dataset's training and test sets with its class names.

    Example:
        >>> ds = load_dataset("fashion-mnist", data_dir=toy_data)    # the real one: 60,000 and 10,000
        >>> len(ds.train), len(ds.test), ds.classes[9], ds.class_names("ko")[9]
        (300, 100, 'Ankle boot', '앵클 부츠')
    """

    name: str
    train: LabeledImages
    test: LabeledImages
    classes: tuple[str, ...]
    classes_ko: tuple[str, ...]
    #: A validation set of the dataset's own (a folder dataset's ``val/``), used instead of splitting ``train``.
    val: LabeledImages | None = None

    def __post_init__(self):
        # Each split knows the dataset's class names, so whatever is trained on it can record them.
        for field_name in ("train", "test", "val"):
            part = getattr(self, field_name)
            if part is not None and part.classes is None:
                object.__setattr__(
                    self, field_name, replace(part, classes=tuple(self.classes), classes_ko=tuple(self.classes_ko), dataset=self.name)
                )

    def class_names(self, lang: str = "en") -> tuple[str, ...]:
        return self.classes_ko if lang == "ko" else self.classes


class DatasetSource(Protocol):
    """A dataset that can be named and loaded: an IDX dataset of the registry, or a ``folder:PATH``.

    ``fashion_cnn.data.get_spec(name)`` returns one; ``load`` reads it into memory.
    """

    name: str
    classes: tuple[str, ...]

    def class_names(self, lang: str = "en") -> tuple[str, ...]: ...

    def load(self, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset: ...


def check_val_fraction(val_fraction: float) -> None:
    """Refuse a validation fraction outside (0, 1), with the tutorial's value as the hint."""
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise FashionCNNError(f"validation fraction must be between 0 and 1 (exclusive), got {val_fraction}; the tutorial uses 0.2")


def check_limit(limit: int | None) -> None:
    """Refuse a training-set limit (``--limit N``: the first N images) that is not None or a whole number of at least 1."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise FashionCNNError(f"--limit must be a whole number of at least 1, got {limit!r}")


#: Seeds are whole numbers from 0 to 2**32 - 1, as NumPy and scikit-learn take them.
MAX_SEED = 2**32 - 1


def check_seed(seed, flag: str = "--split-seed") -> None:
    """Refuse a seed that is not a whole number from 0 to ``MAX_SEED``."""
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED):
        raise FashionCNNError(f"{flag} must be a whole number from 0 to {MAX_SEED:,}, got {seed!r}")


def train_val_split(data: LabeledImages, val_fraction: float = 0.2, seed: int = 42) -> tuple[LabeledImages, LabeledImages]:
    """Split off a validation set exactly as the tutorial does.

    Same indices as ``sklearn.model_selection.train_test_split(x, y, test_size=val_fraction,
    random_state=seed)``: on Fashion-MNIST's 60,000 training images the defaults give 48,000 / 12,000.
    """
    from sklearn.model_selection import train_test_split

    check_val_fraction(val_fraction)
    check_seed(seed)
    if round(len(data) * val_fraction) < 1 or round(len(data) * (1 - val_fraction)) < 1:
        raise FashionCNNError(
            f"a validation fraction of {val_fraction} leaves an empty split of {len(data)} images; choose a fraction that leaves both sides non-empty"
        )
    train_idx, val_idx = train_test_split(np.arange(len(data)), test_size=val_fraction, random_state=seed)
    split = {"val_fraction": val_fraction, "split_seed": seed}
    return replace(data.subset(train_idx), split=split), replace(data.subset(val_idx), split=split)
