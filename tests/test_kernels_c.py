"""The C harness (src/fashion_cnn/kernels/harness): the kernels against a plain-C reference, under AddressSanitizer
and UBSan, at every vector width this CPU runs, with and without OpenMP; and proof that a broken kernel fails it."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).parents[1] / "src" / "fashion_cnn" / "kernels" / "harness" / "run.sh"
CSRC = HARNESS.parents[1] / "csrc"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (sys.platform.startswith("linux") and platform.machine() == "x86_64" and shutil.which("cc")),
        reason="the harness builds with a C compiler on Linux x86-64 (vector extensions, the sanitizers)",
    ),
]


def run_harness(csrc: Path, build: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(HARNESS), str(csrc), str(build)], capture_output=True, text=True, timeout=600, env={"PATH": "/usr/bin:/bin", **env}
    )


def test_every_kernel_matches_the_reference_under_the_sanitizers(tmp_path):
    done = run_harness(CSRC, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = re.findall(r"^(\S+): (\d+) passed, (\d+) failed$", done.stdout, re.M)
    assert {name for name, _, _ in results} >= {"baseline", "baseline-openmp"}
    assert all(int(ok) >= 26 and failed == "0" for _, ok, failed in results), results


def test_a_broken_kernel_fails_the_harness(tmp_path):
    broken = tmp_path / "csrc"
    shutil.copytree(CSRC, broken)
    window = broken / "pool_window.h"
    text = window.read_text()
    assert "(a[q] > m)" in text
    window.write_text(text.replace("(a[q] > m)", "(a[q] < m)", 1))  # the window's minimum instead of its maximum
    done = run_harness(broken, tmp_path, WIDTHS="avx2" if "avx2" in Path("/proc/cpuinfo").read_text() else "baseline")
    assert done.returncode != 0
    assert re.search(r": \d+ passed, [1-9]\d* failed$", done.stdout, re.M), done.stdout[-2000:]
