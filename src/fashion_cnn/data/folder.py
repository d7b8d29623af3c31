"""Your own images as a dataset: ``--dataset folder:PATH`` with one folder per class.

    fashion-cnn train --dataset folder:my-clothes --epochs 10
    fashion-cnn evaluate runs/NAME --split test

The layout is the common one (torchvision's ImageFolder, Ultralytics' classification datasets)::

    my-clothes/
      train/<class>/*.png|jpg|jpeg|webp|bmp|gif     required
      val/<class>/...                               optional: used as the validation set when present
      test/<class>/...                              optional: see below

Class names are the folder names of ``train/``, in sorted order (label 0 is the first). ``val/`` and ``test/``
must have the same classes. Every image, whatever its size, goes through the same preprocessing as
``fashion-cnn predict`` on a photo (``fashion_cnn.data.images``): grayscale, background trimmed, centred,
28×28, inverted when the background is light. Everything is decoded once into memory, with a progress bar.

Without ``val/``, training holds out ``--val-fraction`` of ``train/`` as usual. Without ``test/``, a fixed 20%
of ``train/`` (seed 42, chosen before any validation split) is held out as the test set, so the test figures
still come from images that were never trained or validated on; the same images every time.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import FashionCNNError
from ..files import resolved
from .images import EXTENSIONS, MAX_PIXELS, Preprocessing, load_image
from .types import Dataset, LabeledImages, train_val_split

PREFIX = "folder:"
SPLIT_FOLDERS = ("train", "val", "test")
#: The share of ``train/`` held out as the test set when there is no ``test/`` folder, and its seed.
TEST_FRACTION, TEST_SEED = 0.2, 42


@dataclass(frozen=True)
class FolderSpec:
    """A folder dataset, checked but not yet loaded: what ``get_spec("folder:PATH")`` returns.

    Args:
        name: ``folder:`` and the absolute path, as recorded in model files.
        path: the dataset's root folder.
        classes: the class names: the sub-folders of ``train/``, sorted.
        splits: the split folders present (``train`` and any of ``val``, ``test``).
    """

    name: str
    path: Path
    classes: tuple[str, ...]
    splits: tuple[str, ...]

    def class_names(self, lang: str = "en") -> tuple[str, ...]:
        return self.classes

    def load(self, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
        """Decode every image into memory (``data_dir`` and ``download`` do not apply to a folder)."""
        return load_folder_dataset(self)


def is_folder_dataset(name) -> bool:
    return isinstance(name, FolderSpec) or (isinstance(name, str) and name.lower().startswith(PREFIX))


def folder_spec(name: str) -> FolderSpec:
    """Check a ``folder:PATH`` dataset's layout (folders and class names; no image is decoded)."""
    if not name[len(PREFIX) :].strip():
        raise FashionCNNError("--dataset folder: needs a path, e.g. --dataset folder:my-clothes (with my-clothes/train/<class>/*.png)")
    path = Path(name[len(PREFIX) :]).expanduser()
    if not path.is_dir():
        raise FashionCNNError(f"{path} is not a folder; --dataset folder:PATH needs PATH/train/<class>/ folders of images")
    if not (path / "train").is_dir():
        raise FashionCNNError(f"{path} has no train/ folder; put the training images in {path}/train/<class>/ (one folder per class)")
    splits = tuple(s for s in SPLIT_FOLDERS if (path / s).is_dir())
    classes = _class_folders(path / "train")
    if not classes:
        raise FashionCNNError(f"{path / 'train'} has no class folders; put each class's images in {path}/train/<class>/")
    if len(classes) < 2:
        raise FashionCNNError(
            f"{path / 'train'} has one class folder ({classes[0]}); a classifier needs at least two: add a folder per class"
        )
    for name in classes:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a byte name that is not UTF-8: it could not be recorded in a model file
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise FashionCNNError(f"{path / 'train'} has a class folder whose name is not UTF-8 text ({shown!r}); rename it") from None
    for split in splits[1:]:
        other = _class_folders(path / split)
        if other != classes:
            missing, extra = sorted(set(classes) - set(other)), sorted(set(other) - set(classes))
            parts = ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"has {', '.join(extra)} that train/ lacks"] if extra else [])
            raise FashionCNNError(f"{path / split} {' and '.join(parts)}; every split must have the same class folders as train/")
    return FolderSpec(PREFIX + str(resolved(path)), resolved(path), classes, splits)


def _class_folders(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))


def _files(folder: Path, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
    files = []
    for label, name in enumerate(classes):
        images = sorted(
            p for p in (folder / name).iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS
        )
        if not images:
            raise FashionCNNError(f"{folder / name} has no images ({', '.join(EXTENSIONS)}); add some or remove the class folder")
        files += [(p, label) for p in images]
    return files


def load_folder_dataset(
    spec: FolderSpec | str, *, options: Preprocessing = Preprocessing(), max_pixels: int = MAX_PIXELS, progress: bool = True
):
    """Decode and preprocess every image of a folder dataset into memory.

    Args:
        spec: ``folder:PATH`` or its ``FolderSpec``.
        options: the preprocessing (default: the same as ``predict`` on photos, 28×28).
        max_pixels: refuse larger images (decompression bombs).
        progress: draw a progress bar on stderr.

    Returns:
        a ``Dataset`` whose ``val`` is the ``val/`` folder's images, or None without one.

    Example:
        >>> from PIL import Image
        >>> for name in ("coat", "shirt", "sneaker"):
        ...     (tmp / "my-clothes" / "train" / name).mkdir(parents=True)
        ...     for i in range(4):
        ...         Image.new("L", (40, 30), 60 * i).save(tmp / "my-clothes" / "train" / name / f"{i}.png")
        >>> ds = load_folder_dataset("folder:my-clothes", progress=False)
        >>> ds.classes, len(ds.train), len(ds.test), ds.train.images.shape[1:]   # no test/: 20% held out
        (('coat', 'shirt', 'sneaker'), 9, 3, (28, 28))
    """
    spec = spec if isinstance(spec, FolderSpec) else folder_spec(spec)
    files = {split: _files(spec.path / split, spec.classes) for split in spec.splits}
    loaded = _decode_all(files, options, max_pixels, progress)
    train, test = loaded["train"], loaded.get("test")
    if test is None:
        if len(train) < 2:
            raise FashionCNNError(
                f"{spec.path / 'train'} has {len(train)} image and there is no test/ folder; add images or a test/ folder"
            )
        train, test = (replace(part, split=None) for part in train_val_split(train, TEST_FRACTION, TEST_SEED))  # not a validation split
    return Dataset(spec.name, train, test, spec.classes, spec.classes, val=loaded.get("val"))


def _decode_all(files: dict[str, list[tuple[Path, int]]], options: Preprocessing, max_pixels: int, progress: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    def one(item):
        return load_image(item[0], options, max_pixels=max_pixels)

    total = sum(len(f) for f in files.values())
    columns = (TextColumn("Loading images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    loaded = {}
    # Pillow decodes and resizes without holding the GIL, so a few threads load several images at once.
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        with Progress(*columns, console=Console(stderr=True), transient=True, disable=not progress) as bar:
            task = bar.add_task("images", total=total)
            for split, items in files.items():
                images = np.empty((len(items), options.size, options.size), np.uint8)
                for i, image in enumerate(pool.map(one, items)):
                    images[i] = image
                    bar.advance(task)
                loaded[split] = LabeledImages(images, np.array([label for _, label in items], dtype=np.int64))
    finally:
        # On a bad file, stop at once rather than decode the thousands still queued.
        pool.shutdown(wait=True, cancel_futures=True)
    return loaded
