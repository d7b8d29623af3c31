"""Hostile input, round three (issue 26): the wider cases past the four defects.

- every subcommand with a missing, empty, binary, folder, FIFO or looping argument in each of its path
  arguments: a one-line error (or a normal answer), never a traceback, never a wait on a FIFO;
- ``kill -9`` in the middle of ``export``, ``import`` and ``report``: the previous file intact, no temporary file;
- a full disk (a small tmpfs) under every writer: one line, the previous file intact, nothing half-written;
- the kernels' cache: a damaged, truncated or swapped library is rebuilt, never loaded; two processes building
  at once both load one library;
- ``/predict?include=gradcam&include=feature_maps`` from many clients at once: every answer is the one that
  client's picture gets alone, and the server's memory stays flat over a bounded load run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import copy_run, wait_until_serving
from fashion_cnn.cli import build_parser, main
from kernel_support import MUST_BUILD

TEMPORARY = (".*.tmp", ".*.tmp.*")


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for pattern in TEMPORARY for p in folder.rglob(pattern))


def png(path: Path, seed: int = 0) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
    return path


# -- every subcommand, every path argument, every kind of bad path ------------------------------------------


def hostile_paths(root: Path) -> dict[str, Path]:
    """One of each kind of path a user (or a script gone wrong) passes by mistake."""
    root.mkdir()
    (root / "empty").write_bytes(b"")
    (root / "binary").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "folder").mkdir()
    os.mkfifo(root / "fifo")
    (root / "loop").symlink_to("loop")
    return {
        "missing": root / "missing",
        "empty": root / "empty",
        "binary": root / "binary",
        "folder": root / "folder",
        "fifo": root / "fifo",
        "loop": root / "loop",
        "in-a-loop": root / "loop" / "x.png",
    }


KINDS = ("missing", "empty", "binary", "folder", "fifo", "loop", "in-a-loop")


def path_arguments() -> dict[str, list[str]]:
    """Each subcommand's arguments that name a file or folder, read from the parser itself (a new one is swept
    without editing this test): positionals, and options whose metavar says FILE, DIR, RUN or IMAGE, or -o."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    found = {}
    for name, command in sub.choices.items():
        slots = []
        for action in command._actions:
            if action.nargs == 0 or action.dest in ("help", "json"):
                continue
            metavar = str(action.metavar or "")
            if not action.option_strings:
                slots.append(action.dest)
            elif any(word in metavar for word in ("FILE", "DIR", "RUN", "IMAGE")) or "--output" in action.option_strings:
                slots.append(action.option_strings[-1])
        found[name] = slots
    return found


def test_the_sweep_finds_every_path_argument():
    found = path_arguments()
    assert set(found["predict"]) == {"model_or_run", "images", "--data-dir", "--csv", "--show-input-dir", "--plot"}
    assert set(found["export"]) == {"model_or_run", "--output", "--data-dir"} and found["build-kernels"] == []
    assert set(found) >= {"train", "evaluate", "report", "serve", "import", "gradcam", "embedding"}


def base_argv(command: str, run: Path, toy: Path, image: Path, out: Path) -> dict[str, list[str]]:
    """A valid value for each path argument of ``command`` (the others at cheap settings)."""
    values = {
        "model_or_run": [str(run)],
        "run_dir": [str(run)],
        "runs_dir": [str(run.parent)],
        "runs": [str(run), str(out / "second-run")],  # compare: two runs (the test copies the second)
        "images": [str(image)],
        "keras_file": [str(out / "m.keras")],
        "--data-dir": ["--data-dir", str(toy)],
        "--resume": ["--resume", str(run)],
        "--out-dir": ["--out-dir", str(out / "dir")],
        "--csv": ["--csv", str(out / "p.csv")],
        "--show-input-dir": ["--show-input-dir", str(out / "inputs")],
        "--plot": ["--plot", str(out / "p.png")],
        "--output": ["--output", str(out / {"export": "m.onnx", "import": "m.safetensors", "report": "r.html"}.get(command, "x.png"))],
        "--image": ["--image", str(image)],
        "--run": ["--run", str(out / "imported")],
    }
    extra = {
        "train": ["--epochs", "1", "--limit", "100", "--runs-dir", str(out / "runs")],
        "embedding": ["--limit", "60"],
        "export": ["--format", "onnx"],
    }
    return values, extra.get(command, [])


SWEEP = [(command, slot) for command, slots in path_arguments().items() for slot in slots if command != "serve"]


@pytest.mark.slow
@pytest.mark.parametrize("command, slot", SWEEP, ids=[f"{c}-{s}" for c, s in SWEEP])
def test_no_bad_path_ends_in_a_traceback_or_a_wait(toy_run, tmp_path, capsys, command, slot):
    """Each kind of bad path in one argument, the others valid: exit 0 (the path was fine for it: a new output
    file, say) or one line on stderr; never an exception out of ``main``, never a wait (a FIFO is never opened)."""
    run = copy_run(toy_run.path, tmp_path / "run")
    out = tmp_path / "out"
    out.mkdir()
    image = png(tmp_path / "x.png")
    if command == "import":
        assert main(["export", str(run), "--format", "keras", "-o", str(out / "m.keras")]) == 0
    if command == "compare":
        copy_run(toy_run.path, out / "second-run")
    values, extra = base_argv(command, run, toy_run.data, image, out)
    capsys.readouterr()
    for kind in KINDS:
        bad = hostile_paths(tmp_path / "bad")[kind]
        argv = [command]
        for other in path_arguments()[command]:
            if other == slot:
                argv += [str(bad)] if not other.startswith("-") else [other, str(bad)]
            elif not other.startswith("-") or other in ("--data-dir",):
                argv += values[other]
        if command in ("train", "show") and "--data-dir" not in argv:
            argv += values["--data-dir"]
        signal.alarm(60)  # a read that waits on the FIFO would hang here: fail instead
        try:
            code = main(argv + extra)
        finally:
            signal.alarm(0)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (kind, argv, err)
        assert code == 0 or (code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("fashion-cnn: error: ")), (
            kind,
            argv,
            code,
            err,
        )
        assert (tmp_path / "bad" / "fifo").is_fifo(), (kind, argv)  # an output path that is a FIFO is refused, not replaced
        assert not temporaries(tmp_path / "out") and not temporaries(tmp_path / "bad"), (kind, argv)
        shutil.rmtree(tmp_path / "bad")


class Waited(BaseException):
    """Not an OSError (as TimeoutError is): no ``except OSError`` of the code under test can turn it into an answer."""


@pytest.fixture(autouse=True)
def _alarm_fails_the_test():
    def fail(signum, frame):
        raise Waited("a command waited for more than 60 s (a FIFO opened?)")

    previous = signal.signal(signal.SIGALRM, fail)
    yield
    signal.signal(signal.SIGALRM, previous)


# -- kill -9 in the middle of a write -------------------------------------------------------------------------

#: Runs ``fashion-cnn ARGS`` and kills itself with SIGKILL at the first ``os.fsync``: the new file is written in
#: full and about to be named, the last moment before the previous file would be replaced. ``UNNAMED=0`` makes
#: files.py name its files from the start (as where O_TMPFILE is missing), for the control case.
KILLED_AT_FSYNC = """
import os, signal, sys
from fashion_cnn import files
if os.environ.get("UNNAMED") == "0":
    files._open_unnamed = lambda folder: None
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
from fashion_cnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def killed(argv: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", KILLED_AT_FSYNC, *argv], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


@pytest.fixture(scope="module")
def kill_setup(toy_run, tmp_path_factory):
    """A run, a Keras file and the previous outputs each killed command would replace."""
    root = tmp_path_factory.mktemp("killed")
    run = copy_run(toy_run.path, root / "run")
    assert main(["export", str(run), "--format", "keras", "-o", str(root / "m.keras")]) == 0
    return root, run


@pytest.mark.parametrize(
    "argv, output",
    [
        (["export", "{run}", "--format", "onnx", "-o", "{out}/m.onnx"], "m.onnx"),
        (["export", "{run}", "--format", "keras", "-o", "{out}/m.keras"], "m.keras"),
        (["export", "{run}", "--format", "torchscript", "-o", "{out}/m.pt"], "m.pt"),
        (["import", "{root}/m.keras", "-o", "{out}/m.safetensors"], "m.safetensors"),
        (["report", "{run}", "--data-dir", "{data}", "--output", "{out}/report.html"], "report.html"),
    ],
    ids=["export-onnx", "export-keras", "export-torchscript", "import", "report"],
)
def test_kill_9_in_the_middle_of_a_write_keeps_the_previous_file_and_leaves_nothing(kill_setup, toy_run, tmp_path, argv, output):
    root, run = kill_setup
    values = {"run": run, "root": root, "out": tmp_path, "data": toy_run.data}
    argv = [a.format(**values) for a in argv]
    previous = (tmp_path / output).write_bytes(b"the previous file") and b"the previous file"
    done = killed(argv)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (tmp_path / output).read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == [output]  # not even a temporary file
    # The control: where files are named from the start, the same kill leaves one, as this test would see.
    done = killed(argv, UNNAMED="0")
    assert done.returncode == -signal.SIGKILL and (tmp_path / output).read_bytes() == previous
    assert len(temporaries(tmp_path)) == 1


# -- a full disk under every writer ---------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs filled to its last byte. Needs the right to mount (root, as in CI's container); skipped, saying so, elsewhere."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or done.returncode}); the full-disk cases need root")
    try:
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        for size in (64 << 10, 4 << 10, 1):  # to the last byte: a write of any size then fails
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, bytes(size))
        os.close(fd)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


WRITERS = [
    ["export", "{run}", "--format", "onnx", "-o", "{disk}/out/m.onnx"],
    ["export", "{run}", "--format", "keras", "-o", "{disk}/out/m.keras"],
    ["export", "{run}", "--format", "torchscript", "-o", "{disk}/out/m.pt"],
    ["export", "{run}", "--format", "safetensors", "-o", "{disk}/out/m.safetensors"],
    ["import", "{keras}", "-o", "{disk}/out/m.safetensors"],
    ["import", "{keras}", "--run", "{disk}/out/imported"],
    ["report", "{run}", "--data-dir", "{data}", "--output", "{disk}/out/report.html"],
    ["plot-model", "-o", "{disk}/out/model.png"],
    ["plot-history", "{run}", "--out-dir", "{disk}/out"],
    ["show", "--data-dir", "{data}", "-o", "{disk}/out/show.png"],
    ["filters", "{run}", "-o", "{disk}/out/filters.png"],
    ["gradcam", "{run}", "--data-dir", "{data}", "-o", "{disk}/out/gradcam.png"],
    ["feature-maps", "{run}", "--data-dir", "{data}", "-o", "{disk}/out/maps.png"],
    ["embedding", "{run}", "--data-dir", "{data}", "--limit", "60", "-o", "{disk}/out/embedding.png"],
    ["predict", "{run}", "{image}", "--csv", "{disk}/out/p.csv"],
    ["predict", "{run}", "{image}", "--plot", "{disk}/out/p.png"],
    ["predict", "{run}", "{image}", "--show-input-dir", "{disk}/out"],
    ["evaluate", "{run}", "--data-dir", "{data}", "--top-losses", "4", "--out-dir", "{disk}/out"],
    ["train", "--data-dir", "{data}", "--epochs", "1", "--limit", "100", "--runs-dir", "{disk}/out", "--name", "full"],
]


@pytest.mark.slow
def test_a_full_disk_under_every_writer_is_one_line_and_keeps_what_was_there(toy_run, full_disk, tmp_path, capsys):
    run = copy_run(toy_run.path, tmp_path / "run")
    keras = tmp_path / "m.keras"
    assert main(["export", str(run), "--format", "keras", "-o", str(keras)]) == 0
    values = {"run": run, "keras": keras, "data": toy_run.data, "disk": full_disk, "image": png(tmp_path / "x.png")}
    (full_disk / "out").mkdir()
    capsys.readouterr()
    for template in WRITERS:
        argv = [a.format(**values) for a in template]
        before = {p.relative_to(full_disk): p.read_bytes() for p in full_disk.rglob("*") if p.is_file() and p.name != "filler"}
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left on device" in err, (argv, code, err)
        after = {p.relative_to(full_disk): p.read_bytes() for p in full_disk.rglob("*") if p.is_file() and p.name != "filler"}
        assert after == before, (argv, sorted(set(after) - set(before)))
        leftovers = sorted(str(p.relative_to(full_disk)) for p in full_disk.rglob("*") if p.is_dir())
        assert leftovers in (["out"], []), (argv, leftovers)  # no half-made run or output folder either


# -- the kernels' cache -----------------------------------------------------------------------------------------

needs_compiler = pytest.mark.skipif(not MUST_BUILD, reason="the CPU kernels are built only on Linux x86-64 with a C compiler")


def build_kernels(cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fashion_cnn", "build-kernels"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FASHION_CNN_CACHE": str(cache)},
    )


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a bit flip in the code: it would still load, and run garbage
    path.write_bytes(bytes(data))


DAMAGE = {
    "bit-flip": _flip,
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:1000]),
    "empty": lambda path: path.write_bytes(b""),
    "another-library": lambda path: path.write_bytes(Path(np.__file__).parent.joinpath("_core", "_multiarray_umath" + _ext()).read_bytes()),
    "digest-gone": lambda path: path.with_name(path.name + ".sha256").unlink(),
}


def _ext() -> str:
    import sysconfig

    return sysconfig.get_config_var("EXT_SUFFIX")


@needs_compiler
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_cached_library_is_rebuilt_never_loaded(tmp_path, damage):
    first = build_kernels(tmp_path)
    assert first.returncode == 0 and "rebuilt" not in first.stdout, first.stderr
    (library,) = (tmp_path / "kernels").glob("*.so")
    DAMAGE[damage](library)
    second = build_kernels(tmp_path)
    assert second.returncode == 0 and "Traceback" not in second.stderr, second.stderr
    assert f"rebuilt {library.name}: the cached file was" in second.stdout, second.stdout
    recorded = library.with_name(library.name + ".sha256").read_text().strip()
    assert hashlib.sha256(library.read_bytes()).hexdigest() == recorded
    assert "rebuilt" not in build_kernels(tmp_path).stdout  # and loaded from then on


@needs_compiler
def test_two_processes_building_at_once_both_load_one_library(tmp_path):
    env = {**os.environ, "FASHION_CNN_CACHE": str(tmp_path)}
    command = [sys.executable, "-m", "fashion_cnn", "build-kernels", "--json"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    answers = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], answers
    assert len({json.loads(out)["kernels"] for out, _ in answers}) == 1
    names = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert [n for n in names if n.endswith(".so")] and not [n for n in names if n.endswith(".tmp")], names
    assert len([n for n in names if n.endswith(".so")]) == len([n for n in names if n.endswith(".so.sha256")]) == 1


# -- many clients asking for explanations at once -------------------------------------------------------------


@pytest.fixture(scope="module")
def explaining_server(toy_run):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fashion_cnn", "serve", str(toy_run.path), "--port", str(port), "--workers", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(proc, port)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def _ask(port: int, picture: bytes) -> dict:
    import httpx

    url = f"http://127.0.0.1:{port}/predict?include=gradcam&include=feature_maps"
    r = httpx.post(url, files={"file": ("x.png", picture, "image/png")}, timeout=120)
    assert r.status_code == 200, r.text
    answer = r.json()
    answer.pop("time_ms")  # the one part that differs from call to call
    return answer


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_explanations_for_many_clients_at_once_are_never_mixed_and_memory_stays_flat(explaining_server):
    port, pid = explaining_server
    pictures = []
    for seed in range(8):
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, format="PNG")
        pictures.append(buffer.getvalue())
    alone = [_ask(port, p) for p in pictures]  # each picture's answer with nobody else asking
    assert len({json.dumps(a["gradcam"]["heatmap"]) for a in alone}) == len(pictures)  # they do differ
    errors: list[str] = []

    def client(k: int, rounds: int) -> None:
        for r in range(rounds):
            i = (k + r) % len(pictures)
            answer = _ask(port, pictures[i])
            if answer != alone[i]:
                keys = sorted(key for key in answer.keys() | alone[i].keys() if answer.get(key) != alone[i].get(key))
                errors.append(f"client {k}, round {r}: picture {i} got another answer (in {', '.join(keys)})")

    def load(rounds: int) -> None:
        threads = [threading.Thread(target=client, args=(k, rounds)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    load(4)  # the allocator's pools and every worker's buffers reach their size
    settled = _rss_kib(pid)
    started = time.monotonic()
    load(25)  # 200 more requests
    grown = _rss_kib(pid) - settled
    print(
        f"server RSS {settled / 1024:.1f} MiB after 32 requests, {grown / 1024:+.1f} MiB after 200 more ({time.monotonic() - started:.1f} s)"
    )
    assert not errors, errors[:3]
    assert grown < 20 << 10, f"the server grew by {grown / 1024:.1f} MiB over 200 explained requests ({time.monotonic() - started:.0f} s)"
