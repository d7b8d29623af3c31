"""The datasets fashion-cnn knows by name: their files, SHA-256 sums, mirrors and class names.

``get_spec(name)`` turns what a user types (``--dataset fashion-mnist``, ``folder:my-clothes``) into a
``DatasetSource``; its ``load()`` reads it into memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import FashionCNNError
from .fetch import locate
from .folder import FolderSpec, folder_spec, is_folder_dataset
from .idx import FILES, ROLES, read_idx
from .types import Dataset, DatasetSource, LabeledImages


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's four IDX files come from and how to check them.

    Args:
        name: the name users type (``--dataset fashion-mnist``).
        sha256: the SHA-256 of each ``.gz`` file, by role (see ``ROLES``).
        mirrors: base URLs tried in order; each file is ``mirror + file name``.
        classes: the class names in English, in label order.
        classes_ko: the same names in Korean (the tutorial's), or None to fall back to English.
    """

    name: str
    sha256: dict[str, str]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    classes_ko: tuple[str, ...] | None = None
    files: tuple[str, ...] = FILES

    def filename(self, role: str) -> str:
        return self.files[ROLES.index(role)]

    def class_names(self, lang: str = "en") -> tuple[str, ...]:
        if lang == "ko" and self.classes_ko:
            return self.classes_ko
        return self.classes

    def load(self, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
        """Find the four files (``data_dir``, ``$FASHION_CNN_DATA``, the cache, a checked download) and read them."""
        paths = locate(self, data_dir, download=download, others=[s for s in DATASETS.values() if s.name != self.name])
        train = _load_pair(paths["train_images"], paths["train_labels"], len(self.classes))
        test = _load_pair(paths["test_images"], paths["test_labels"], len(self.classes))
        if train.images.shape[1:] != test.images.shape[1:]:
            raise FashionCNNError(
                f"train images are {train.images.shape[1:]} but test images are {test.images.shape[1:]}; the files come from different datasets"
            )
        return Dataset(self.name, train, test, self.classes, self.class_names("ko"))


def _load_pair(images_path, labels_path, num_classes: int) -> LabeledImages:
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise FashionCNNError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds {len(labels):,} labels; the pair must come from the same split"
        )
    if len(labels) and labels.max() >= num_classes:
        raise FashionCNNError(
            f"{labels_path} has label {int(labels.max())} but the dataset has {num_classes} classes; check that it is the right file"
        )
    return LabeledImages(images, labels.astype(np.int64))


FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    sha256={
        "train_images": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train_labels": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "test_images": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "test_labels": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/fashion-mnist/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    classes_ko=("티셔츠", "바지", "스웨터", "드레스", "코트", "샌달", "셔츠", "스니커즈", "가방", "앵클 부츠"),
)

MNIST = DatasetSpec(
    name="mnist",
    sha256={
        "train_images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train_labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "test_images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "test_labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    classes=tuple(str(d) for d in range(10)),
)

KMNIST = DatasetSpec(
    name="kmnist",
    sha256={
        "train_images": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        "train_labels": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        "test_images": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        "test_labels": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
    },
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
)

DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (FASHION_MNIST, MNIST, KMNIST)}
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "kuzushiji-mnist": "kmnist"}


def get_spec(name: str | DatasetSource) -> DatasetSource:
    """Look a dataset up by name (case-insensitive, a few aliases); ``folder:PATH`` checks a folder dataset.

    Example:
        >>> get_spec("Fashion_MNIST").classes[8], get_spec("fashion-mnist").class_names("ko")[8]
        ('Bag', '가방')
    """
    if isinstance(name, (DatasetSpec, FolderSpec)):
        return name
    if is_folder_dataset(name):
        return folder_spec(name)
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise FashionCNNError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[key]
