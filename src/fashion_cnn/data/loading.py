"""Step 1 of the tutorial: load a dataset by name, and one split of it.

data = load_dataset("fashion-mnist", data_dir="../shared/data/fashion-mnist")
val = load_split("val", data_dir="../shared/data/fashion-mnist")      # the tutorial's 12,000
"""

from __future__ import annotations

import os

from ..errors import FashionCNNError
from .registry import get_spec
from .types import SPLITS, Dataset, DatasetSource, LabeledImages, train_val_split


def load_dataset(
    name: str | DatasetSource = "fashion-mnist", data_dir: str | os.PathLike | None = None, *, download: bool = True
) -> Dataset:
    """Load a dataset by name (see ``fashion_cnn.data.registry.DATASETS``) into memory.

    Args:
        name: ``fashion-mnist`` (default), ``mnist`` or ``kmnist``, or a ``DatasetSpec``; or ``folder:PATH``
            for your own images in PATH/train/<class>/ (see ``fashion_cnn.data.folder``; ``data_dir`` is unused).
        data_dir: a local folder with the four IDX files; default ``$FASHION_CNN_DATA``, then the cache,
            then a checked download.
        download: allow reaching the network when the files are in neither place.

    Example:
        >>> ds = load_dataset("fashion-mnist", data_dir=toy_data)
        >>> len(ds.train), len(ds.test), ds.classes[9]
        (300, 100, 'Ankle boot')
    """
    return get_spec(name).load(data_dir, download=download)


def load_split(
    which: str, dataset: str | DatasetSource = "fashion-mnist", data_dir=None, val_fraction: float = 0.2, split_seed: int = 42
) -> LabeledImages:
    """One split by name: ``train`` / ``val`` (the tutorial's 48,000 / 12,000) or ``test``.

    A folder dataset with its own ``val/`` folder gives that as ``val`` (and all of ``train/`` as ``train``).

    Example:
        >>> val = load_split("val", data_dir=toy_data)
        >>> len(val)       # 20% of the 300 training images
        60
    """
    if which not in SPLITS:
        raise FashionCNNError(f"unknown split {which!r}; choose one of: {', '.join(SPLITS)}")
    data = load_dataset(dataset, data_dir)
    if which == "test":
        return data.test
    if data.val is not None:
        return data.train if which == "train" else data.val
    train, val = train_val_split(data.train, val_fraction, split_seed)
    return train if which == "train" else val
