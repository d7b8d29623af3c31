"""The C harness (src/fashion_cnn/kernels/harness): every kernel entry point against a plain-C reference, under
AddressSanitizer and UBSan, at every vector width this CPU runs, with and without OpenMP; and proof that a
broken kernel fails it, by a wrong result or by a write out of bounds.

    sh src/fashion_cnn/kernels/harness/run.sh check      # what the first test runs
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).parents[1] / "src" / "fashion_cnn" / "kernels" / "harness" / "run.sh"
CSRC = HARNESS.parents[1] / "csrc"
CC = os.environ.get("CC", "gcc")

pytestmark = [
    pytest.mark.slow,  # a build per vector width and threading under the sanitizers: ~30 s on 2 cores
    pytest.mark.skipif(
        not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
        reason=f"the C harness runs on Linux x86-64 only (here: {sys.platform} {platform.machine()})",
    ),
    pytest.mark.skipif(not shutil.which(CC), reason=f"no C compiler {CC!r} for the C harness (install gcc or set CC)"),
]


def run_harness(build: Path, **settings: str) -> subprocess.CompletedProcess:
    """``run.sh check`` with its output in ``build``; ``settings`` (CSRC, WIDTHS, THREADS) go to its environment."""
    env = {**os.environ, "BUILD": str(build), "CC": CC, **settings}
    return subprocess.run(["sh", str(HARNESS), "check"], capture_output=True, text=True, timeout=900, env=env)


def last_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """The kernels' sources in tmp_path, ``old`` replaced by ``new`` once in the file ``name``."""
    copy = tmp_path / "csrc"
    shutil.copytree(CSRC, copy)
    source = copy / name
    text = source.read_text()
    assert text.count(old) == 1, f"{name} no longer holds {old!r}: point this test at another line of it"
    source.write_text(text.replace(old, new))
    return copy


def test_every_kernel_matches_the_reference_under_the_sanitizers(tmp_path):
    done = run_harness(tmp_path)
    output = done.stdout[-6000:] + done.stderr[-6000:]
    assert done.returncode == 0, output
    total = re.fullmatch(r"(\d+) passed, 0 failed", last_line(done))
    assert total and int(total[1]) > 0, output
    builds = re.findall(r"^(\S+): (\d+) passed, (\d+) failed", done.stdout, re.M)
    assert {"baseline-openmp", "baseline-one-thread"} <= {name for name, _, _ in builds}, output
    assert all(int(passed) > 0 and failed == "0" for _, passed, failed in builds), builds


def test_a_wrong_result_fails_the_harness(tmp_path):
    # One constant of the Winograd filter transform, 0.2 % off: the exact (integer) cases see it.
    csrc = broken_copy(
        tmp_path,
        "winograd_conv_pool.c",
        "t[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);",
        "t[1][s] = 0.501f * (g[s] + g[3 + s] + g[6 + s]);",
    )
    done = run_harness(tmp_path / "build", CSRC=str(csrc), WIDTHS="baseline", THREADS="openmp")
    assert done.returncode != 0, done.stdout[-3000:]
    assert re.fullmatch(r"\d+ passed, [1-9]\d* failed", last_line(done)), done.stdout[-3000:]
    assert "FAIL winograd forward" in done.stdout, done.stdout[-3000:]


def test_a_write_out_of_bounds_fails_the_harness(tmp_path):
    # Each pooled vector stored one float further on: the last one ends past its array.
    csrc = broken_copy(tmp_path, "pool_window.h", "store(out, pick(", "store(out + 1, pick(")
    done = run_harness(tmp_path / "build", CSRC=str(csrc), WIDTHS="baseline", THREADS="one-thread")
    assert done.returncode != 0, done.stdout[-3000:]
    # ASan names it "unknown-crash": a 32-byte store that ends past the array's end.
    assert "ERROR: AddressSanitizer" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
