"""Root of the test run: loads ``tests/doctest_env.py``, which gives the docstring examples in ``src/`` their
toy data (``--doctest-modules`` in pyproject.toml). The tests' own fixtures are in ``tests/conftest.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests"))

pytest_plugins = ["doctest_env"]
