"""Importing fashion_cnn changes nothing in the process: umask, glibc's malloc behaviour, the garbage collector,
PyTorch's thread count. Only ``fashion_cnn.runtime``'s calls change the process, and only when called."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, gc, json, os, pkgutil, sys, importlib
import numpy, torch  # what fashion_cnn imports anyway: the baseline imports them too
what = sys.argv[1]
if what != "baseline":
    import fashion_cnn
    for m in pkgutil.walk_packages(fashion_cnn.__path__, "fashion_cnn."):
        if m.name.endswith("__main__"):
            continue  # runs the command
        try:
            importlib.import_module(m.name)  # every module, the optional extras' too where installed
        except ImportError:
            pass
if what == "held":
    from fashion_cnn import runtime
    runtime.hold_freed_memory()

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2

def mmapped(size):
    before = libc.mallinfo2().hblks
    p = libc.malloc(size)
    after = libc.mallinfo2().hblks
    libc.free(p)
    return after - before

umask = os.umask(0o022); os.umask(umask)
print(json.dumps({
    "umask": umask,
    "gc": [gc.isenabled(), gc.get_threshold(), gc.get_freeze_count() > 0],
    "threads": torch.get_num_threads(),
    "mmapped_24MiB": mmapped(24 << 20),  # glibc maps a block this large by itself unless mallopt raised the threshold
}))
"""


def probe(what: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, what], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallinfo2 and mallopt are glibc's: Linux only")
def test_importing_every_module_changes_no_process_state():
    baseline, imported, held = probe("baseline"), probe("imported"), probe("held")
    assert imported == baseline
    # The probe can see a mallopt change: runtime.hold_freed_memory() (what `fashion-cnn train` calls) moves it.
    assert baseline["mmapped_24MiB"] == 1 and held["mmapped_24MiB"] == 0
    assert {k: v for k, v in held.items() if k != "mmapped_24MiB"} == {k: v for k, v in baseline.items() if k != "mmapped_24MiB"}
