"""Resume after SIGKILL or Ctrl-C gives the uninterrupted run's history; a non-finite loss stops cleanly."""

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import all_cores, copy_run, write_dataset
from fashion_cnn import EarlyStopping, FashionCNNError, ModelCheckpoint, build_model, fit, load_dataset, load_model, train_val_split
from fashion_cnn.cli import main
from fashion_cnn.experiment.resume import sigterm_as_interrupt
from fashion_cnn.rundir import STATE
from fashion_cnn.training.checkpoint import ResumeState, completed_epochs, load_state, save_state
from fashion_cnn.training.guards import NonFiniteLoss
from fashion_cnn.training.loop import adam

EPOCHS = 3


@pytest.fixture(scope="module")
def big_toy(tmp_path_factory):
    # 800 training images in steps of 8: an epoch of 100 steps (about half a second), long enough to be stopped inside.
    return write_dataset(tmp_path_factory.mktemp("data") / "toy", n_train=1000, n_test=100)


def command(data, runs, name, *extra):
    return [
        sys.executable,
        "-m",
        "fashion_cnn",
        "train",
        "--data-dir",
        str(data),
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--seed",
        "7",
        "--runs-dir",
        str(runs),
        "--name",
        name,
        "--quiet",
        *extra,
    ]


def env(tmp):
    return {**os.environ, "FASHION_CNN_CACHE": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}


def history(run):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads((run / "history.json").read_text())]


def start(data, runs, name):
    """``fashion-cnn train`` in a process of its own, with Ctrl-C handled as in a terminal.

    A shell that starts pytest in the background makes it ignore SIGINT, and a child would inherit that;
    a signal caught here is reset to the default in the child, which then turns Ctrl-C into KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with all_cores():  # the runs started together spread over the cores
            return subprocess.Popen(command(data, runs, name), env=env(runs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Stopped:
    run: Path
    returncode: int
    stderr: str


@pytest.fixture(scope="module")
def runs(big_toy, tmp_path_factory):
    """The same training three times, started together, one thread each: "ref" trains to the end, "killed"
    gets SIGKILL and "interrupted" Ctrl-C (SIGINT) once epoch 1's state is saved, so inside epoch 2.

    Returns the stopped runs and ``reference()``, which waits for the uninterrupted run and returns it.
    """
    folder = tmp_path_factory.mktemp("runs")
    signals = {"killed": signal.SIGKILL, "interrupted": signal.SIGINT}
    procs = {name: start(big_toy, folder, name) for name in ("ref", *signals)}
    ref = procs["ref"]

    @functools.cache
    def reference():
        _, err = ref.communicate(timeout=600)
        assert ref.returncode == 0, err
        return folder / "ref"

    try:
        stop_inside_epoch_2({name: procs[name] for name in signals}, folder, signals)
        stopped = {}
        for name in signals:
            err = procs[name].communicate(timeout=120)[1]
            stopped[name] = Stopped(folder / name, procs[name].returncode, err)
        yield stopped, reference
    finally:  # whatever failed: no training left running, no pipe left open
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            if not proc.stderr.closed:
                proc.communicate()


def stop_inside_epoch_2(procs, folder, signals):
    """Send each process its signal 0.2 s after it saved epoch 1's state (so inside epoch 2)."""
    waiting, due, deadline = dict(procs), {}, time.monotonic() + 300
    while waiting:
        now = time.monotonic()
        assert now < deadline, "no epoch finished in 300 s"
        for name, proc in list(waiting.items()):
            if name not in due:
                assert proc.poll() is None, proc.stderr.read()  # it must not end before it is stopped
                if (folder / name / STATE).is_file():
                    due[name] = now + 0.2
            elif now >= due[name]:
                proc.send_signal(signals[name])
                del waiting[name]
        time.sleep(0.02)


def resume_and_compare(run, reference, capsys):
    """Resume the stopped run (in this process: the command line's code, without another start-up) and
    compare it with the uninterrupted run, which another process trained."""
    done = completed_epochs(run)
    assert 1 <= done < EPOCHS, "the run was not stopped inside training"
    assert len(history(run)) < EPOCHS
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"Resuming {run} after epoch {done} of {EPOCHS}" in out
    reference = reference()
    assert history(run) == history(reference)  # every metric of every epoch, exactly
    got, want = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    for key in ("val", "test", "epochs_run", "best_epoch", "stopped_early"):
        assert got[key] == want[key]
    best, ref_best = load_file(run / "best.safetensors"), load_file(reference / "best.safetensors")
    assert all(torch.equal(best[k], ref_best[k]) for k in ref_best)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(runs, capsys):
    stopped, reference = runs
    killed = stopped["killed"]
    assert killed.returncode == -signal.SIGKILL
    resume_and_compare(killed.run, reference, capsys)


@pytest.mark.slow
def test_ctrl_c_exits_with_a_resume_hint_then_resume_equals_uninterrupted_run(runs, capsys):
    stopped, reference = runs
    run, code, err = stopped["interrupted"].run, stopped["interrupted"].returncode, stopped["interrupted"].stderr
    assert code == 130
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    done = completed_epochs(run)
    assert f"fashion-cnn train --resume {run}" in err
    assert (f"epoch 1 of {EPOCHS} is saved" if done == 1 else f"epochs 1-{done} of {EPOCHS} are saved") in err
    resume_and_compare(run, reference, capsys)


@pytest.fixture
def finished(toy_run, tmp_path):
    """A copy of the session's toy run: `fashion-cnn train --epochs 2 --batch-size 16`, finished."""
    return copy_run(toy_run.path, tmp_path / "r")


@pytest.mark.parametrize(
    "flag, message",
    [
        (["--lr", "0.01"], "--lr 0.01 would change the run being resumed (it used 0.001)"),
        (["--batch-size", "32"], "--batch-size 32 would change the run being resumed (it used 16)"),
        (["--epochs", "1"], "already completed 2 epochs, more than --epochs 1"),
        ([], "already finished its 2 epochs; pass a larger --epochs"),
    ],
)
def test_resume_refuses_changes_and_finished_runs(finished, flag, message, capsys):
    before = (finished / "history.json").read_text()
    assert main(["train", "--resume", str(finished), *flag]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert (finished / "history.json").read_text() == before


def test_raising_epochs_appends_to_the_same_history(finished, capsys):
    first = history(finished)
    assert main(["train", "--resume", str(finished), "--epochs", "3", "--quiet"]) == 0
    rows = history(finished)
    assert rows[:2] == first and [r["epoch"] for r in rows] == [1, 2, 3]
    assert json.loads((finished / "config.json").read_text())["epochs"] == 3
    assert completed_epochs(finished) == 3


def test_resume_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "has no config.json; --resume takes a run directory" in capsys.readouterr().err


def test_state_round_trip_keeps_everything(toy_dir, tmp_path):
    train, val = train_val_split(load_dataset("fashion-mnist", toy_dir).train)
    model = build_model()
    early, check = EarlyStopping(patience=3, restore_best_weights=True), ModelCheckpoint(tmp_path / "best.safetensors")
    fit(model, train, val, epochs=2, batch_size=32, seed=1, verbose=False, callbacks=[check, early, ResumeState(tmp_path, [check, early])])
    state = load_state(tmp_path / STATE)
    assert state["epoch"] == 2 and [r["epoch"] for r in state["history"]] == [1, 2]
    assert state["callbacks"][1]["state"]["wait"] == early.wait and state["callbacks"][1]["state"]["best"] == early.best
    assert state["callbacks"][0]["state"]["best"] == check.best
    assert all(torch.equal(state["callbacks"][1]["state"]["best_weights"][k], v) for k, v in early.best_weights.items())
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)  # tuples survive the JSON
    assert set(state["optimizer"]["state"]) == set(range(8))  # parameter indices stay integers
    assert isinstance(state["rng"]["numpy"][1], type(__import__("numpy").zeros(1))) and state["rng"]["torch"].dtype == torch.uint8
    save_state(tmp_path / "again.safetensors", state)
    again = load_state(tmp_path / "again.safetensors")
    assert again["history"] == state["history"] and torch.equal(again["rng"]["shuffle"], state["rng"]["shuffle"])


def test_damaged_state_is_refused_by_name(finished, capsys):
    (finished / STATE).write_bytes((finished / STATE).read_bytes()[:1000])
    assert main(["train", "--resume", str(finished), "--epochs", "3"]) == 2
    assert "state.safetensors is not a fashion-cnn training state" in capsys.readouterr().err


def test_sigterm_becomes_keyboard_interrupt_only_inside():
    with pytest.raises(KeyboardInterrupt, match="^$"):  # a bare KeyboardInterrupt, as Ctrl-C raises
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


class NanAtCall:
    """A forward hook that makes the ``at``-th training forward pass return NaN."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, module, inputs, output):
        if module.training:
            self.calls += 1
            if self.calls == self.at:
                return output * float("nan")
        return output


def test_non_finite_loss_names_epoch_and_step_and_keeps_the_best_model(toy_dir, tmp_path):
    train, val = train_val_split(load_dataset("fashion-mnist", toy_dir).train)  # 240 images: 8 steps of 32
    model = build_model()
    model.register_forward_hook(NanAtCall(8 + 5))  # epoch 2, step 5
    best = tmp_path / "best.safetensors"
    with pytest.raises(NonFiniteLoss, match=r"the training loss became nan in epoch 2 at step 5 of 8") as e:
        fit(model, train, val, epochs=3, batch_size=32, seed=0, verbose=False, callbacks=[ModelCheckpoint(best, save_best_only=True)])
    assert (e.value.epoch, e.value.step) == (2, 5)
    kept = load_model(best)
    assert kept.meta["epoch"] == 1 and all(torch.isfinite(p).all() for p in kept.parameters())


def test_huge_learning_rate_stops_with_one_line(toy_dir, tmp_path, capsys):
    assert (
        main(
            ["train", "--data-dir", str(toy_dir), "--lr", "1e10", "--epochs", "3", "--runs-dir", str(tmp_path), "--name", "nan", "--quiet"]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    found = re.search(
        r"the training loss became (nan|inf) in epoch (\d) at step (\d) of 8, so training stopped; .*try a smaller --lr; (.*)$", err
    )
    assert found, err
    if found.group(2) == "1":
        assert found.group(4) == "no epoch had finished, so no model was kept"
    else:
        assert found.group(4).startswith("the best model so far is kept in") and load_model(tmp_path / "nan")
    assert not (tmp_path / "nan" / "metrics.json").exists()


def test_interrupt_message_counts_saved_epochs(finished):
    from fashion_cnn.experiment.resume import interrupted_message

    assert (
        interrupted_message(finished, 5)
        == f"interrupted; epochs 1-2 of 5 are saved in {finished}: continue with 'fashion-cnn train --resume {finished}'"
    )
    with pytest.raises(FashionCNNError, match=r"history.json is not a fashion-cnn training state \(.*\); it cannot be resumed"):
        load_state(finished / "history.json")


def test_resume_in_process_with_a_one_cycle_schedule_equals_the_uninterrupted_fit(toy_dir, tmp_path):
    train, val = train_val_split(load_dataset("fashion-mnist", toy_dir).train)
    train = train.subset(slice(0, 128))  # 4 steps of 32: a schedule over 12 steps

    def run(folder, epochs, resume):
        torch.manual_seed(0)
        model = build_model()
        optimizer = adam(model, 1e-3)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=3 * 4)
        early, check = EarlyStopping(patience=5), ModelCheckpoint(folder / "best.safetensors", save_best_only=True)
        history = fit(
            model,
            train,
            val,
            epochs=epochs,
            batch_size=32,
            optimizer=optimizer,
            scheduler=schedule,
            seed=0,
            verbose=False,
            callbacks=[check, early, ResumeState(folder, [check, early], resume=resume)],
        )
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs], schedule

    full, full_schedule = run(tmp_path / "full", 3, False)
    run(tmp_path / "cut", 1, False)  # as if the process died after epoch 1
    resumed, resumed_schedule = run(tmp_path / "cut", 3, True)
    assert resumed == full and len(full) == 3
    assert resumed_schedule.last_epoch == full_schedule.last_epoch == 12


def test_one_cycle_runs_cannot_change_epochs_on_resume(toy_dir, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(toy_dir),
                "--epochs",
                "1",
                "--schedule",
                "onecycle",
                "--runs-dir",
                str(tmp_path),
                "--name",
                "oc",
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["train", "--resume", str(tmp_path / "oc"), "--epochs", "2"]) == 2
    assert "--epochs cannot change when resuming" in capsys.readouterr().err
