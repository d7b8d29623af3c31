"""A test module may skip for a missing optional package, never for one the ``test`` extra installs.

``pytest.importorskip`` is wrapped (from tests/conftest.py): a module that pyproject.toml's ``test`` extra (with the
extras it names, ``fashion-cnn[serve,export,keras,tensorboard,mlflow]``) should have brought fails its collection with the command
to install it, instead of skipping. tests/test_openapi.py was skipped everywhere, CI included, for a validator
that the extra did not list.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: Import names that differ from their distribution's name.
IMPORT_NAMES = {
    "pillow": "PIL",
    "scikit-learn": "sklearn",
    "opencv-python-headless": "cv2",
    "pyyaml": "yaml",
    "mlflow-skinny": "mlflow",
    "scikit-image": "skimage",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def extra_modules(pyproject: Path = PYPROJECT, extra: str = "test") -> set[str]:
    """The top-level import names of every package ``pip install -e '.[extra]'`` brings (the project's own dependencies too).

    Example:
        >>> {"fastapi", "h5py", "openapi_spec_validator", "PIL"} <= extra_modules()
        True
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    extras, seen, names = project["optional-dependencies"], set(), set()
    todo = [extra]
    requirements = list(project["dependencies"])
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in extras[name]:
            own = re.match(rf"{project['name']}\[(.*)\]", req)
            if own:
                todo += [e.strip() for e in own.group(1).split(",")]
            else:
                requirements.append(req)
    for req in requirements:
        dist = re.match(r"[A-Za-z0-9_.\-]+", req).group(0)
        names.add(IMPORT_NAMES.get(dist.lower(), re.sub(r"[-.]+", "_", dist)))
    return names


_REQUIRED = extra_modules()
_importorskip = pytest.importorskip


def importorskip(modname: str, *args, **kwargs):
    """``pytest.importorskip``, except for a package the ``test`` extra installs: that one must import."""
    try:
        return _importorskip(modname, *args, **kwargs)
    except pytest.skip.Exception:
        if _normal(modname.split(".")[0]) in {_normal(n) for n in _REQUIRED}:
            pytest.fail(
                f"{modname} is not installed, but the test extra brings it: pip install -c constraints.txt -e '.[test]'", pytrace=False
            )
        raise


def install() -> None:
    pytest.importorskip = importorskip
