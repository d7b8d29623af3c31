"""Reading a Keras model file without Keras: its config as JSON, its weights with h5py, each bounded first.

    fashion-cnn import best-cnn-model.keras    # Keras 3 (or 2.13+): a zip of config.json, metadata.json, model.weights.h5
    fashion-cnn import best-cnn-model.h5       # the legacy HDF5 file of model.save("best-cnn-model.h5")

Nothing in a file is run or unpickled: the config is parsed as JSON only (a layer that carries Python code,
such as ``Lambda``, is refused by the importer, never loaded), and only float arrays are read. Before anything
is decompressed or read, a file must be a regular file of at most ``MAX_FILE`` bytes; a ``.keras`` zip may
hold only its three known members (no folders, no other names, none twice, not encrypted), each within its
size and expanding at most ``MAX_EXPANSION`` times what it stores (a zip bomb is refused unread); in HDF5,
weights are read only through hard links, each step of a path checked before it is followed (no soft, external
or virtual links, no external storage: those would read other files or wait on a FIFO), at most 4-D, and at
most ``MAX_WEIGHTS`` bytes in all. The format is told by the file's first bytes, not its name.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FashionCNNError, first_line

#: Sizes a Keras file of a fashion-cnn-sized model stays far below (the tutorial's .keras is 4 MB).
MAX_FILE = MAX_WEIGHTS = 256 << 20
MAX_CONFIG = 16 << 20
MAX_EXPANSION = 100
ZIP_MEMBERS = {"config.json": MAX_CONFIG, "metadata.json": 1 << 20, "model.weights.h5": MAX_WEIGHTS}
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class KerasFile:
    """What a Keras model file holds, as plain data.

    Attributes:
        path: the file.
        format: ``"keras"`` (the zip of Keras 3 and 2.13+) or ``"h5"`` (legacy HDF5).
        config: the model's config, Keras' JSON as a dict (``{"class_name": "Sequential", "config": {...}}``).
        keras_version: the Keras version that saved it, when the file says.
        weights: each layer's arrays, in Keras' order (kernel, then bias), by the name the file keys them by:
            the layer's name in an ``.h5``; its type and position in a ``.keras`` (``conv2d``, ``conv2d_1``...).
    """

    path: Path
    format: str
    config: dict
    keras_version: str | None
    weights: dict[str, list[np.ndarray]] = field(repr=False)


def read_keras_file(path: str | os.PathLike) -> KerasFile:
    """Read a ``.keras`` or ``.h5`` Keras model file, refusing with one line anything unsafe or unreadable.

    Example:
        >>> from fashion_cnn.export.keras import export_keras
        >>> _ = export_keras(model, "cnn.keras")
        >>> keras = read_keras_file("cnn.keras")
        >>> keras.format, keras.config["class_name"], keras.weights["conv2d"][0].shape
        ('keras', 'Sequential', (3, 3, 1, 32))
    """
    path = Path(path)
    if path.is_dir():
        raise FashionCNNError(
            f"{path} is a folder (a TensorFlow SavedModel?); fashion-cnn imports .keras and .h5 files: save the model with model.save('model.keras')"
        )
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a regular file"
        raise FashionCNNError(f"{path} {what}; pass a Keras model file saved with model.save('model.keras') or model.save('model.h5')")
    size = path.stat().st_size
    if size > MAX_FILE:
        raise FashionCNNError(
            f"{path} is {size / 2**20:,.0f} MiB, more than the {MAX_FILE >> 20} MiB a Keras model fashion-cnn imports can be"
        )
    with open(path, "rb") as f:
        head = f.read(8)
    try:
        if head.startswith(b"PK\x03\x04"):
            return _read_zip(path)
        if head == HDF5_MAGIC:
            import h5py

            with h5py.File(path, "r") as h5:
                return _read_legacy_h5(path, h5)
    except FashionCNNError:
        raise
    except ImportError as e:
        raise FashionCNNError(f"reading Keras files needs {e.name}, which is not installed: pip install 'fashion-cnn[keras]'") from None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, RuntimeError, EOFError) as e:
        raise FashionCNNError(
            f"{path} is a damaged Keras file ({first_line(e, 120)}); save the model again with model.save('model.keras')"
        ) from None
    raise FashionCNNError(
        f"{path} is not a Keras model file (neither a .keras zip nor HDF5); save the model with model.save('model.keras')"
    )


def _read_zip(path: Path) -> KerasFile:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        others = sorted(set(names) - set(ZIP_MEMBERS))
        if others or len(names) != len(set(names)):
            what = f"holds {', '.join(repr(n[:60]) for n in others[:3])}" if others else "names a member twice"
            hint = " (sharded or .npz weights)" if any(n.startswith("model.weights") for n in others) else ""
            raise FashionCNNError(
                f"{path} {what}{hint}, which fashion-cnn does not read; a .keras file of a Sequential model holds only "
                f"{', '.join(ZIP_MEMBERS)}: save it again with model.save('model.keras')"
            )
        missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
        if missing:
            raise FashionCNNError(
                f"{path} has no {' or '.join(missing)}, so it is not a whole Keras model; save it with model.save('model.keras')"
            )
        data = {info.filename: _read_member(path, archive, info) for info in infos}
    config = _parse_json(path, data["config.json"], "config.json")
    metadata = _parse_json(path, data["metadata.json"], "metadata.json") if "metadata.json" in data else {}
    import h5py

    with h5py.File(io.BytesIO(data.pop("model.weights.h5")), "r") as h5:
        root = next(
            (_group(path, h5, key) for key in ("layers", "_layer_checkpoint_dependencies") if _walk(path, h5, key) is not None), None
        )
        budget = [MAX_WEIGHTS]
        weights = {}
        for name in list(root.keys()) if root is not None else []:
            layer = _group(path, root, name)
            variables = _group(path, layer, "vars") if _walk(path, layer, "vars") is not None else None
            keys = sorted(variables.keys(), key=lambda k: int(k) if k.isdigit() else -1) if variables is not None else []
            weights[name] = [_read_dataset(path, variables, key, budget) for key in keys[:16]]
    return KerasFile(path, "keras", config, _version(metadata.get("keras_version") if isinstance(metadata, dict) else None), weights)


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    limit = ZIP_MEMBERS[info.filename]
    if info.flag_bits & 0x1:
        raise FashionCNNError(f"{path}: {info.filename} is encrypted; save the model again without a password")
    if info.file_size > limit or info.file_size > MAX_EXPANSION * max(info.compress_size, 1 << 10):
        raise FashionCNNError(
            f"{path}: {info.filename} would expand to {info.file_size:,} bytes from {info.compress_size:,} (at most {limit:,}, "
            f"{MAX_EXPANSION}× what is stored); refused unread as a possible zip bomb"
        )
    with archive.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FashionCNNError(f"{path}: {info.filename} is larger than it says; refused as a possible zip bomb")
    return data


def _read_legacy_h5(path: Path, h5) -> KerasFile:
    if "model_config" not in h5.attrs:
        raise FashionCNNError(
            f"{path} holds weights only (model.save_weights), without the model's layers; save the whole model with model.save('model.keras')"
        )
    config = _parse_json(path, h5.attrs["model_config"], "model_config")
    weights: dict[str, list[np.ndarray]] = {}
    root = _group(path, h5, "model_weights") if _walk(path, h5, "model_weights") is not None else h5
    budget = [MAX_WEIGHTS]
    for name in _strings(root.attrs.get("layer_names", []))[:1000]:
        if _walk(path, root, name) is None:
            continue
        layer = _group(path, root, name)
        weights[name] = [_read_dataset(path, layer, key, budget) for key in _strings(layer.attrs.get("weight_names", []))[:16]]
    return KerasFile(path, "h5", config, _version(h5.attrs.get("keras_version")), weights)


def _group(path: Path, parent, name: str):
    import h5py

    group = _walk(path, parent, name)
    if not isinstance(group, h5py.Group):
        raise FashionCNNError(f"{path}: {name} is not an HDF5 group; the file is damaged, save the model again")
    return group


def _read_dataset(path: Path, parent, name: str, budget: list[int]) -> np.ndarray:
    """One weight array at ``parent/name`` (a path inside it), through hard links only, float, at most 4-D and within the budget."""
    import h5py

    node = _walk(path, parent, name, missing=f"names weight {name!r} but does not hold it")
    if not isinstance(node, h5py.Dataset):
        raise FashionCNNError(f"{path}: weight {name!r} is not an array; the file is damaged, save the model again")
    if node.external or node.is_virtual:
        raise FashionCNNError(f"{path}: weight {name!r} is stored in another file; fashion-cnn reads weights only from the file itself")
    if node.dtype.kind != "f" or node.ndim > 4:
        raise FashionCNNError(
            f"{path}: weight {name!r} is {node.dtype} with {node.ndim} axes, not a float array of at most 4; the file is damaged"
        )
    budget[0] -= node.size * node.dtype.itemsize
    if budget[0] < 0:
        raise FashionCNNError(f"{path} holds more than {MAX_WEIGHTS >> 20} MiB of weights, more than a model fashion-cnn imports has")
    return np.asarray(node[()])


def _walk(path: Path, parent, name: str, missing: str | None = None):
    """The group or dataset at ``parent/name``, reached one path step at a time, each a hard link of this file.

    Every step is checked with HDF5's link API before it is followed: ``name in group`` and ``group[name]``
    would resolve every step of a path first, so a soft or external link in the middle of it would read
    another file (or wait forever on a FIFO) before any check could look. Returns None for a missing step
    when ``missing`` is None, else refuses with it.
    """
    import h5py

    node = parent
    for part in name.split("/"):
        key = part.encode("utf-8", "surrogateescape")
        if part in ("", ".") or not node.id.links.exists(key):
            if missing is None:
                return None
            raise FashionCNNError(f"{path} {missing}; the file is damaged, save the model again")
        kind = node.id.links.get_info(key).type
        if kind != h5py.h5l.TYPE_HARD:
            what = {h5py.h5l.TYPE_SOFT: "SoftLink", h5py.h5l.TYPE_EXTERNAL: "ExternalLink"}.get(kind, "user-defined link")
            where = f" (a step of {name!r})" if part != name else ""
            raise FashionCNNError(
                f"{path}: {part} is an HDF5 {what}{where}, which could read another file; fashion-cnn reads only what the file itself holds"
            )
        node = node[part]
        if not isinstance(node, h5py.Group | h5py.Dataset):
            raise FashionCNNError(f"{path}: {name!r} is neither a group nor an array; the file is damaged, save the model again")
    return node


def _parse_json(path: Path, raw, what: str) -> dict:
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw.item()
    if isinstance(raw, bytes | np.bytes_):
        raw = bytes(raw).decode("utf-8", "replace")
    if not isinstance(raw, str) or len(raw) > MAX_CONFIG:
        raise FashionCNNError(
            f"{path}: its {what} is not text of at most {MAX_CONFIG >> 20} MiB; the file is damaged, save the model again"
        )
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise FashionCNNError(
            f"{path}: its {what} is not valid JSON ({first_line(e, 80)}); the file is damaged, save the model again"
        ) from None
    if not isinstance(value, dict):
        raise FashionCNNError(f"{path}: its {what} is not a JSON object; the file is damaged, save the model again")
    return value


def _strings(values) -> list[str]:
    out = []
    for v in np.asarray(values).reshape(-1).tolist() if len(values) else []:
        out.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
    return out


def _version(v) -> str | None:
    v = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return v if isinstance(v, str) and 0 < len(v) <= 40 and v.isprintable() else None
