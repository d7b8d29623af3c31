"""tests/extras_guard.py: a skip for a missing package that the test extra brings fails instead."""

from __future__ import annotations

import subprocess
import sys

import pytest

from extras_guard import extra_modules

MODULE = """
import sys, pytest
sys.modules["{name}"] = None  # as if it were not installed
pytest.importorskip("{name}", reason="not installed")
def test_nothing():
    pass
"""


def session(tmp_path, name: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(MODULE.format(name=name))
    (tmp_path / "conftest.py").write_text(
        f"import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\nimport extras_guard\nextras_guard.install()\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n0", "-p", "no:cacheprovider", "-c", "/dev/null", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def test_the_extras_are_read_from_pyproject():
    names = extra_modules()
    assert {"openapi_spec_validator", "fastapi", "onnxruntime", "h5py", "keras", "torch", "PIL"} <= names
    assert "cv2" not in names  # an optional check's package, not in the extra: it may skip


@pytest.mark.parametrize(("name", "fails"), [("h5py", True), ("openapi_spec_validator", True), ("cv2", False)])
def test_a_missing_extra_package_fails_the_run_and_an_optional_one_skips(tmp_path, name, fails):
    done = session(tmp_path, name)
    if fails:
        assert done.returncode != 0 and "the test extra brings it" in done.stdout, done.stdout[-1500:]
    else:
        assert done.returncode in (0, 5) and "1 skipped" in done.stdout, done.stdout[-1500:]  # 5: no test ran (all skipped)
