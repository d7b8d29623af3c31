"""Datasets in memory: uint8 images and integer labels, the tutorial's validation split."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import FashionCNNError
from .fetch import locate
from .idx import read_idx
from .registry import DatasetSpec, get_spec


@dataclass(frozen=True)
class LabeledImages:
    """Images and their labels, kept as the uint8 pixels on disk.

    Scaling to 0..1 and adding the channel axis (the tutorial's ``reshape(-1, 28, 28, 1) / 255``) happens
    per batch in the training step, so the whole set stays 1 byte per pixel in memory.

    Args:
        images: uint8 array of shape (N, H, W).
        labels: int64 array of shape (N,).
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise FashionCNNError(f"images must be a uint8 array of shape (N, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise FashionCNNError(f"{len(self.images)} images but labels of shape {self.labels.shape}; the counts must agree")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "LabeledImages":
        return LabeledImages(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Dataset:
    """A dataset's training and test sets with its class names.

    Example:
        >>> ds = load_dataset("fashion-mnist", data_dir="../shared/data/fashion-mnist")  # doctest: +SKIP
        >>> len(ds.train), len(ds.test), ds.classes[9]
        (60000, 10000, 'Ankle boot')
    """

    name: str
    train: LabeledImages
    test: LabeledImages
    classes: tuple[str, ...]
    classes_ko: tuple[str, ...]
    #: A validation set of the dataset's own (a folder dataset's ``val/``), used instead of splitting ``train``.
    val: LabeledImages | None = None

    def class_names(self, lang: str = "en") -> tuple[str, ...]:
        return self.classes_ko if lang == "ko" else self.classes


def load_dataset(name: str | DatasetSpec = "fashion-mnist", data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    """Load a dataset by name (see ``fashion_cnn.data.registry.DATASETS``) into memory.

    Args:
        name: ``fashion-mnist`` (default), ``mnist`` or ``kmnist``, or a ``DatasetSpec``; or ``folder:PATH``
            for your own images in PATH/train/<class>/ (see ``fashion_cnn.data.folder``; ``data_dir`` is unused).
        data_dir: a local folder with the four IDX files; default ``$FASHION_CNN_DATA``, then the cache,
            then a checked download.
        download: allow reaching the network when the files are in neither place.
    """
    from .folder import is_folder_dataset, load_folder_dataset

    if is_folder_dataset(name):  # folder:PATH, one sub-folder per class (see fashion_cnn.data.folder)
        return load_folder_dataset(name)
    spec = name if isinstance(name, DatasetSpec) else get_spec(name)
    paths = locate(spec, data_dir, download=download)
    train = _load_pair(paths["train_images"], paths["train_labels"], len(spec.classes))
    test = _load_pair(paths["test_images"], paths["test_labels"], len(spec.classes))
    if train.images.shape[1:] != test.images.shape[1:]:
        raise FashionCNNError(f"train images are {train.images.shape[1:]} but test images are {test.images.shape[1:]}; the files come from different datasets")
    return Dataset(spec.name, train, test, spec.classes, spec.class_names("ko"))


def _load_pair(images_path, labels_path, num_classes: int) -> LabeledImages:
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise FashionCNNError(f"{images_path} holds {len(images):,} images but {labels_path} holds {len(labels):,} labels; the pair must come from the same split")
    if len(labels) and labels.max() >= num_classes:
        raise FashionCNNError(f"{labels_path} has label {int(labels.max())} but the dataset has {num_classes} classes; check that it is the right file")
    return LabeledImages(images, labels.astype(np.int64))


def train_val_split(data: LabeledImages, val_fraction: float = 0.2, seed: int = 42) -> tuple[LabeledImages, LabeledImages]:
    """Split off a validation set exactly as the tutorial does.

    Same indices as ``sklearn.model_selection.train_test_split(x, y, test_size=val_fraction,
    random_state=seed)``: on Fashion-MNIST's 60,000 training images the defaults give 48,000 / 12,000.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction < 1:
        raise FashionCNNError(f"validation fraction must be between 0 and 1 (exclusive), got {val_fraction}; the tutorial uses 0.2")
    if round(len(data) * val_fraction) < 1 or round(len(data) * (1 - val_fraction)) < 1:
        raise FashionCNNError(f"a validation fraction of {val_fraction} leaves an empty split of {len(data)} images; choose a fraction that leaves both sides non-empty")
    train_idx, val_idx = train_test_split(np.arange(len(data)), test_size=val_fraction, random_state=seed)
    return data.subset(train_idx), data.subset(val_idx)


SPLITS = ("train", "val", "test")


def load_split(which: str, dataset: str = "fashion-mnist", data_dir=None, val_fraction: float = 0.2, split_seed: int = 42) -> LabeledImages:
    """One split by name: ``train`` / ``val`` (the tutorial's 48,000 / 12,000) or ``test``.

    Example:
        >>> val = load_split("val", data_dir="../shared/data/fashion-mnist")  # doctest: +SKIP
        >>> len(val), int(val.labels[0])   # the tutorial's handbag
        (12000, 8)
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
