"""The ``kernels`` fixture: the CPU kernels built, or the test fails where they must build.

On Linux x86-64 with a C compiler (CI, every developer's machine here) the kernels must build: a broken C
source fails the tests that use them, with the compiler's message and the log's path. Elsewhere (no compiler,
another OS or processor) those tests are skipped with the reason.
"""

from __future__ import annotations

import platform
import sys

import pytest

from fashion_cnn.kernels import KernelBuildError, build
from fashion_cnn.kernels.build import compiler

MUST_BUILD = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64") and compiler() is not None


@pytest.fixture
def kernels() -> str:
    """What was built (``fused kernel (AVX2, OpenMP)``)."""
    try:
        return build()
    except KernelBuildError as e:
        if MUST_BUILD:
            pytest.fail(f"the CPU kernels must build on Linux x86-64 with a C compiler, and did not: {e}")
        pytest.skip(f"the CPU kernels are not built here: {e}")
