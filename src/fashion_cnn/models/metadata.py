"""What a model file records besides its weights, written and read in one place.

    {"arch": {"name": "tutorial-cnn", "kwargs": {...}},          the architecture to rebuild
     "classes": [...], "classes_ko": [...],                      names in label order
     "dataset": {"name", "val_fraction", "split_seed"},          where it was trained (its split)
     "input": {"channels", "height", "width", "scale"},          the pixels it takes (x / 255)
     "metrics": {...}, "epoch": N, "versions": {...}}

Every writer (training, ``save_model``, exports) and every reader (predict, the service, exports) goes
through these functions, so a file saved one way reads the same everywhere.
"""

from __future__ import annotations

from ..data.transforms import input_meta
from ..data.types import DatasetSource, LabeledImages

#: The image side when a file says nothing (the tutorial's 28×28).
DEFAULT_SIDE = 28


def num_classes(meta: dict) -> int:
    """How many classes the model predicts: its class names, else its architecture's ``num_classes`` (10)."""
    classes = meta.get("classes")
    if isinstance(classes, list) and classes:
        return len(classes)
    kwargs = (meta.get("arch") or {}).get("kwargs") or {}
    return int(kwargs.get("num_classes", 10))


def class_names(meta: dict, lang: str = "en", count: int | None = None) -> list[str]:
    """The class names in label order: Korean when asked and known, else English, else ``"0"``..``"N-1"``.

    Example:
        >>> class_names({"arch": {"name": "tutorial-cnn", "kwargs": {"num_classes": 3}}})
        ['0', '1', '2']
        >>> class_names({"classes": ["Bag"], "classes_ko": ["가방"]}, "ko")
        ['가방']
    """
    names = meta.get("classes_ko") if lang == "ko" else None
    names = names or meta.get("classes")
    if names:
        return [str(n) for n in names]
    return [str(i) for i in range(count if count is not None else num_classes(meta))]


def input_side(meta: dict) -> int:
    """The side of the square uint8 images the model takes (``input.height``, else ``arch.kwargs.image_size``)."""
    described = (meta.get("input") or {}).get("height")
    if described:
        return int(described)
    kwargs = (meta.get("arch") or {}).get("kwargs") or {}
    return int(kwargs.get("image_size", DEFAULT_SIDE))


def describe_input(meta: dict) -> dict:
    """The ``input`` entry for a model with ``meta``: its own when present, else one built from its size."""
    side = input_side(meta)
    return meta.get("input") or input_meta(side, side)


def dataset_meta(
    data: DatasetSource,
    image_shape: tuple[int, int] = (DEFAULT_SIDE, DEFAULT_SIDE),
    val_fraction: float | None = None,
    split_seed: int | None = None,
) -> dict:
    """What a model trained on ``data`` records of it: class names, the dataset and its split, the input.

    Args:
        data: a loaded ``Dataset`` or a ``DatasetSource`` (anything with ``name``, ``classes``, ``class_names``).
        image_shape: (height, width) of its images.
        val_fraction, split_seed: the train/validation split, when the model was trained on one.

    Example:
        >>> from fashion_cnn.data import get_spec
        >>> meta = dataset_meta(get_spec("fashion-mnist"), (28, 28), 0.2, 42)
        >>> meta["classes_ko"][8], meta["dataset"], meta["input"]["height"]
        ('가방', {'name': 'fashion-mnist', 'val_fraction': 0.2, 'split_seed': 42}, 28)
    """
    dataset = {"name": data.name}
    if val_fraction is not None:
        dataset.update(val_fraction=val_fraction, split_seed=split_seed)
    height, width = image_shape
    return {
        "classes": list(data.classes),
        "classes_ko": list(data.class_names("ko")),
        "dataset": dataset,
        "input": input_meta(height, width),
    }


def images_meta(data: LabeledImages) -> dict:
    """What a model trained on ``data`` records of it: what ``fit`` puts in every model file it writes.

    The same entries as ``dataset_meta`` (class names, the dataset and its split, the input), as far as
    ``data`` knows them: a loaded dataset's splits know them all; bare arrays only their image size.

    Example:
        >>> from fashion_cnn.data import get_spec
        >>> train, val = train_val_split(load_dataset("fashion-mnist", data_dir=toy_data).train)
        >>> images_meta(train) == dataset_meta(get_spec("fashion-mnist"), (28, 28), 0.2, 42)
        True
    """
    meta: dict = {}
    if data.classes:
        meta.update(classes=list(data.classes), classes_ko=list(data.classes_ko or data.classes))
    if data.dataset:
        meta["dataset"] = {"name": data.dataset, **(data.split or {})}
    height, width = data.images.shape[1:]
    meta["input"] = input_meta(height, width)
    return meta
