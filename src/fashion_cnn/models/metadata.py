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

import math

from ..data.transforms import input_meta
from ..data.types import DatasetSource, LabeledImages
from ..errors import FashionCNNError

#: The image side when a file says nothing (the tutorial's 28×28).
DEFAULT_SIDE = 28
#: Bounds a model file's metadata must keep before anything is built from it (a hostile file could name a
#: 30,000-pixel input or a 10^100-unit layer): generous for any model this tool trains.
MAX_SIDE, MAX_CHANNELS, MAX_CLASSES, MAX_ARGUMENT, MAX_NAME = 4096, 4, 10_000, 1 << 24, 200
#: An argument may also be a list of at most MAX_LAYERS flat objects of at most MAX_ENTRIES entries each (a
#: "keras-sequential" model's layers), whose values are bounded like any argument's.
MAX_LAYERS, MAX_ENTRIES = 64, 16


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


def check_meta(meta: dict, where: str) -> None:
    """Refuse, naming ``where`` and the entry, metadata whose types or sizes no fashion-cnn model has.

    Checked before anything is allocated from it: the architecture's arguments are JSON scalars (or short
    lists of them) of bounded size, or a short list of flat objects holding such values (a layer list);
    ``input`` describes a bounded image, class names are short strings, and ``dataset`` is an object with a name.

    Example:
        >>> check_meta({"arch": {"name": "tutorial-cnn", "kwargs": {"hidden": 10**100}}}, "m.safetensors")
        Traceback (most recent call last):
        ...
        fashion_cnn.errors.FashionCNNError: m.safetensors names architecture 'tutorial-cnn' with arguments it cannot be built with (arch.kwargs.hidden is 1e+100, beyond 16,777,216); the file is damaged or was edited
    """

    def bad(entry: str, what: str):
        raise FashionCNNError(f"{where}: {entry} {what}; the file is damaged or was edited")

    arch = meta.get("arch")
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str) or not isinstance(arch.get("kwargs", {}), dict):
        raise FashionCNNError(
            f"{where} has fashion-cnn metadata without a valid 'arch' (name and kwargs); the file is damaged, use another copy"
        )

    def unbuildable(key: str, what: str):
        raise FashionCNNError(
            f"{where} names architecture {arch['name']!r} with arguments it cannot be built with (arch.kwargs.{key} {what}); "
            "the file is damaged or was edited"
        )

    def argument(key: str, value) -> None:
        for v in value if isinstance(value, list) and len(value) <= 16 else [value]:
            if isinstance(v, bool) or v is None or isinstance(v, str) and len(v) <= MAX_NAME:
                continue
            if not isinstance(v, (int, float)):
                unbuildable(key, f"is a {type(v).__name__}, not a number, text or short list")
            if not math.isfinite(v) or abs(v) > MAX_ARGUMENT:
                unbuildable(key, f"is {float(v):.3g}, beyond {MAX_ARGUMENT:,}")

    for key, value in arch.get("kwargs", {}).items():
        if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            argument(key, value)
            continue
        if len(value) > MAX_LAYERS:
            unbuildable(key, f"is a list of {len(value):,} objects, more than {MAX_LAYERS}")
        for i, entries in enumerate(value):
            if len(entries) > MAX_ENTRIES or any(len(k) > MAX_NAME for k in entries):
                unbuildable(f"{key}[{i}]", f"has more than {MAX_ENTRIES} entries or a name over {MAX_NAME} characters")
            for k, v in entries.items():
                argument(f"{key}[{i}].{k}", v)
    described = meta.get("input")
    if described is not None:
        if not isinstance(described, dict):
            bad("input", f"is a {type(described).__name__}, not an object")
        for key, most in (("height", MAX_SIDE), ("width", MAX_SIDE), ("channels", MAX_CHANNELS)):
            v = described.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= most):
                bad(f"input.{key}", f"is {v!r}, not a whole number from 1 to {most:,}")
        size = arch.get("kwargs", {}).get("image_size")
        if size is not None and described.get("height") not in (None, size):
            bad("input.height", f"is {described.get('height')!r} but the architecture takes {size}×{size} images")
        if "scale" in described and not (
            isinstance(described["scale"], (int, float)) and math.isfinite(described["scale"]) and described["scale"] > 0
        ):
            bad("input.scale", f"is {described['scale']!r}, not a positive number")
    for key in ("classes", "classes_ko"):
        names = meta.get(key)
        if names is not None and not (
            isinstance(names, list) and len(names) <= MAX_CLASSES and all(isinstance(n, str) and len(n) <= MAX_NAME for n in names)
        ):
            bad(key, f"is not a list of at most {MAX_CLASSES:,} names of at most {MAX_NAME} characters")
    dataset = meta.get("dataset")
    if dataset is not None and not (isinstance(dataset, dict) and isinstance(dataset.get("name", ""), str)):
        bad("dataset", "is not an object with a name")
    if dataset is not None:
        fraction, seed = dataset.get("val_fraction"), dataset.get("split_seed")
        if fraction is not None and not (isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 < fraction < 1):
            bad("dataset.val_fraction", f"is {fraction!r}, not a number between 0 and 1")
        if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32):
            bad("dataset.split_seed", f"is {seed!r}, not a whole number from 0 to 2**32 - 1")
    calibration = meta.get("calibration")
    if calibration is not None:
        t = calibration.get("temperature") if isinstance(calibration, dict) else None
        if not (isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and MIN_TEMPERATURE <= t <= MAX_TEMPERATURE):
            bad("calibration.temperature", f"is {t!r}, not a number from {MIN_TEMPERATURE} to {MAX_TEMPERATURE}")
    ood = meta.get("ood")
    if ood is not None:
        if not isinstance(ood, dict) or ood.get("method") not in OOD_METHODS:
            bad("ood.method", f"is not one of {', '.join(OOD_METHODS)}")
        threshold = ood.get("threshold")
        if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0 <= threshold <= 2):
            bad("ood.threshold", f"is {threshold!r}, not a number from 0 to 2 (a cosine distance)")


#: How a model file's not-clothing score is computed (``fashion_cnn.inference.ood``): the cosine distance of an
#: image's features to the nearest of its training images' prototypes.
OOD_METHODS = ("knn-prototypes",)
#: The name of the prototypes' tensor in a model file (beside the architecture's own tensors).
OOD_TENSOR = "ood.prototypes"


def ood_of(meta: dict | None) -> dict | None:
    """The model's not-clothing detector settings (method, threshold, ...), or None when it has none.

    Example:
        >>> ood_of({"ood": {"method": "knn-prototypes", "threshold": 0.1}})["threshold"], ood_of({})
        (0.1, None)
    """
    return (meta or {}).get("ood") or None


#: The temperatures a calibrated model may carry: far outside what temperature scaling ever fits (Guo et al.
#: report 1.1 to 3 for CNNs), close enough to 1 that the logits divided by it stay finite.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0


def temperature_of(meta: dict | None) -> float:
    """The temperature a model's probabilities are computed at: ``softmax(logits / T)``; 1.0 when the model was
    not calibrated (``fashion-cnn calibrate`` fits T on the validation split and records it in the model file).

    Example:
        >>> temperature_of({"calibration": {"temperature": 1.5, "fitted_on": "val"}}), temperature_of({})
        (1.5, 1.0)
    """
    calibration = (meta or {}).get("calibration") or {}
    return float(calibration.get("temperature", 1.0))


def check_classes(meta: dict, outputs: int, where: str) -> None:
    """Refuse class names that do not match the model's ``outputs`` (one name per output, in each language)."""
    for key in ("classes", "classes_ko"):
        names = meta.get(key)
        if names and len(names) != outputs:
            raise FashionCNNError(
                f"{where}: {key} names {len(names)} classes but the model has {outputs} outputs; the file is damaged or was edited"
            )
