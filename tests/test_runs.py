"""``fashion-cnn runs`` and ``fashion-cnn compare``, read back against run folders that ``fashion-cnn train`` wrote.

Two real toy runs: the session's ``toy_run`` (2 epochs, lr 1e-3) copied in, and one trained here with two other
settings (3 epochs, lr 3e-3). Every value a row shows is checked against the run's own files, read here with
``json``; the comparison's picture is read back from the figure's lines and from the PNG's pixels.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import copy_run, isolated, one_line_error
from fashion_cnn.cli import main
from fashion_cnn.experiment.runs import COLUMNS, compare_runs, list_runs
from fashion_cnn.inspection.plots import plot_runs

#: The second run's settings that differ from the toy run's (``--epochs 2``, ``--lr`` left at 1e-3).
OTHER = ("--epochs", "3", "--lr", "3e-3")


@pytest.fixture(scope="module")
def runs_dir(toy_run, tmp_path_factory) -> Path:
    """A runs folder as a user has one: two finished runs, a folder that is no run and a stray file."""
    root = tmp_path_factory.mktemp("runs")
    copy_run(toy_run.path, root / "toy")
    argv = ["train", *toy_run.argv[1:]]
    argv[argv.index("--runs-dir") + 1], argv[argv.index("--name") + 1] = str(root), "faster"
    argv[argv.index("--epochs") + 1] = OTHER[1]
    argv += OTHER[2:]
    with isolated(root), contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("try a larger batch\n")
    (root / "README.txt").write_text("my runs\n")
    return root


def read(run: Path, name: str):
    return json.loads((run / name).read_text())


def cli_json(capsys, *argv) -> object:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_each_row_is_what_the_run_recorded(runs_dir, capsys):
    rows = cli_json(capsys, "runs", str(runs_dir), "--json")
    assert sorted(r["name"] for r in rows) == ["faster", "toy"]  # notes/ and README.txt are not runs
    for row in rows:
        run = runs_dir / row["name"]
        config, history, metrics = read(run, "config.json"), read(run, "history.json"), read(run, "metrics.json")
        best = int(np.argmin([e["val_loss"] for e in history])) + 1  # the tutorial's monitor: the lowest val_loss
        assert set(row) == {"name", "path", "detail", *COLUMNS}
        assert (row["status"], row["detail"], row["path"]) == ("finished", None, str(run))
        assert (row["model"], row["recipe"], row["precision"]) == (config["model"], config["recipe"], config["precision_used"])
        assert (row["epochs"], row["max_epochs"], row["best_epoch"]) == (len(history), config["epochs"], metrics["best_epoch"])
        assert row["best_epoch"] == best
        assert (row["best_val_loss"], row["best_val_accuracy"]) == (history[best - 1]["val_loss"], history[best - 1]["val_accuracy"])
        assert (row["test_loss"], row["test_accuracy"]) == (metrics["test"]["loss"], metrics["test"]["accuracy"])
        assert row["seconds"] == pytest.approx(sum(e["seconds"] for e in history))
        assert row["cpu"] == read(run, "environment.json")["cpu"]
        assert datetime.fromisoformat(row["date"]) == datetime.fromisoformat(metrics["finished_at"])
    faster = next(r for r in rows if r["name"] == "faster")
    assert (faster["epochs"], faster["max_epochs"]) == (3, 3)


def test_the_table_shows_every_run(runs_dir, capsys):
    capsys.readouterr()
    assert main(["runs", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"2 runs in {runs_dir}"
    for name in ("toy", "faster"):
        metrics, history = read(runs_dir / name, "metrics.json"), read(runs_dir / name, "history.json")
        line = next(line for line in out.splitlines() if f" {name} " in line)
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        assert cells[:2] == [name, "finished"] and cells[4] == f"{len(history)}/{len(history)}"
        assert cells[6] == f"{metrics['test']['accuracy']:.4f}"
        assert cells[10] == datetime.fromisoformat(metrics["finished_at"]).astimezone().strftime("%Y-%m-%d %H:%M")
    assert "notes" not in out and "README" not in out
    assert "\x1b[" not in out  # no colour codes into a pipe


def test_the_recorded_date_outlives_a_copy(runs_dir, tmp_path, capsys):
    run = copy_run(runs_dir / "toy", tmp_path / "runs" / "toy")
    os.utime(run / "metrics.json", (0, 0))  # a copy made without keeping times (1970)
    (row,) = cli_json(capsys, "runs", str(tmp_path / "runs"), "--json")
    assert datetime.fromisoformat(row["date"]) == datetime.fromisoformat(read(run, "metrics.json")["finished_at"])


@pytest.mark.parametrize("column", COLUMNS)
def test_sorting_by_each_column(runs_dir, tmp_path, capsys, column):
    folder = tmp_path / "runs"
    for name in ("toy", "faster"):
        copy_run(runs_dir / name, folder / name)
    shutil.copytree(runs_dir / "toy", folder / "stopped", ignore=shutil.ignore_patterns("metrics.json"))
    for reverse in ((), ("--reverse",)):
        rows = cli_json(capsys, "runs", str(folder), "--sort", column, *reverse, "--json")
        known = [r[column] for r in rows if r[column] is not None]
        assert [r[column] for r in rows] == known + [None] * (len(rows) - len(known))  # the unknown last, either way
        if column == "date":
            known = [datetime.fromisoformat(d) for d in known]
        highest_first = column in ("best_val_accuracy", "test_accuracy")
        assert known == sorted(known, reverse=highest_first != bool(reverse))
    assert len(rows) == 3


def test_sorting_orders_the_two_runs(runs_dir, capsys):
    by_epochs = cli_json(capsys, "runs", str(runs_dir), "--sort", "max_epochs", "--json")
    assert [r["name"] for r in by_epochs] == ["toy", "faster"]  # 2 epochs, then 3
    assert [r["name"] for r in cli_json(capsys, "runs", str(runs_dir), "--sort", "name", "-r", "--json")] == ["toy", "faster"]


def test_an_unknown_sort_column_is_one_line_with_the_choices(runs_dir, capsys):
    one_line_error(capsys, main(["runs", str(runs_dir), "--sort", "accuracy"]), "cannot sort by 'accuracy'", "test_accuracy", "date")


def test_runs_still_training_stopped_or_damaged_get_a_row_that_says_so(runs_dir, tmp_path, capsys):
    folder = tmp_path / "runs"
    live = copy_run(runs_dir / "faster", folder / "live")
    (live / "metrics.json").unlink()
    (live / "train.lock").write_text(f"{os.getppid()}\n")  # held by a process that runs (pytest's parent)
    stale = copy_run(runs_dir / "faster", folder / "killed")
    (stale / "metrics.json").unlink()
    (stale / "train.lock").write_text(f"{_a_gone_pid()}\n")
    (folder / "starting").mkdir()
    (folder / "starting" / "train.lock").write_text(f"{os.getppid()}\n")  # the lock is all a run has at first
    broken = copy_run(runs_dir / "toy", folder / "broken")
    (broken / "config.json").write_text('{"model": "tutorial-cnn", ')  # cut short
    rows = {r["name"]: r for r in cli_json(capsys, "runs", str(folder), "--json")}
    history = read(live, "history.json")
    assert (rows["live"]["status"], rows["live"]["detail"]) == ("training", f"PID {os.getppid()}")
    assert rows["live"]["best_epoch"] == int(np.argmin([e["val_loss"] for e in history])) + 1 and rows["live"]["test_accuracy"] is None
    assert rows["killed"]["status"] == "incomplete" and f"fashion-cnn train --resume {stale}" in rows["killed"]["detail"]
    assert rows["killed"]["epochs"] == len(history)
    assert rows["starting"]["status"] == "training" and rows["starting"]["epochs"] is None
    assert rows["broken"]["status"] == "damaged" and "config.json is not readable JSON" in rows["broken"]["detail"]
    capsys.readouterr()
    assert main(["runs", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    assert f"  broken: damaged, {broken / 'config.json'} is not readable JSON" in out
    assert f"  killed: incomplete, no metrics.json (stopped after epoch {len(history)})" in out


@pytest.mark.parametrize(
    "name, text",
    [("history.json", '{"loss": 1}'), ("history.json", "[1, 2]"), ("metrics.json", "[]"), ("history.json", "\xff")],
)
def test_files_of_the_wrong_shape_make_a_damaged_row(runs_dir, tmp_path, capsys, name, text):
    run = copy_run(runs_dir / "toy", tmp_path / "runs" / "toy")
    (run / name).write_text(text, encoding="latin-1")
    (row,) = cli_json(capsys, "runs", str(tmp_path / "runs"), "--json")
    assert row["status"] == "damaged" and name in row["detail"]


def test_a_folder_without_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli_json(capsys, "runs", str(tmp_path / "empty"), "--json") == []
    assert main(["runs", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.startswith(f"No runs in {tmp_path / 'empty'} yet")
    one_line_error(capsys, main(["runs", str(tmp_path / "nowhere")]), "is not a folder", "--runs-dir")


def test_a_run_directory_given_as_the_folder_says_to_pass_its_parent(runs_dir, capsys):
    one_line_error(capsys, main(["runs", str(runs_dir / "toy")]), "is a run directory itself", f"fashion-cnn runs {runs_dir}")


def test_compare_lists_exactly_the_settings_that_differ(runs_dir, capsys):
    a, b = (read(runs_dir / n, "config.json") for n in ("toy", "faster"))
    differ = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)} - {"name"}
    assert {"epochs", "lr"} <= differ and not differ & {"batch_size", "seed", "model", "data_dir"}
    got = cli_json(capsys, "compare", str(runs_dir / "toy"), str(runs_dir / "faster"), "-o", str(runs_dir / "c.png"), "--json")
    assert set(got["settings"]) == differ
    assert all(got["settings"][k] == [a.get(k), b.get(k)] for k in differ)
    assert got["labels"] == ["toy", "faster"] and [r["test_accuracy"] for r in got["runs"]] == [
        read(runs_dir / n, "metrics.json")["test"]["accuracy"] for n in ("toy", "faster")
    ]
    assert main(["compare", str(runs_dir / "toy"), str(runs_dir / "faster"), "-o", str(runs_dir / "c.png")]) == 0
    out = capsys.readouterr().out
    shown = {line.strip("│ ").split(" ")[0] for line in out.splitlines() if line.startswith("│")}
    assert differ <= shown and not shown & {"batch_size", "seed", "name"}
    assert "│ lr " in out and " 0.001 " in out and " 0.003 " in out
    assert f"Wrote {runs_dir / 'c.png'}" in out


def test_the_picture_has_one_line_per_run_per_curve(runs_dir):
    comparison = compare_runs([runs_dir / "toy", runs_dir / "faster"])
    fig = plot_runs(comparison.histories)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    colours = {}
    for ax, metric in zip(fig.axes, ("loss", "accuracy")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert len(lines) == len(ax.get_lines()) == 4  # two runs, training and validation each
        for name in ("toy", "faster"):
            history = read(runs_dir / name, "history.json")
            train, val = lines[f"{name}: training {metric}"], lines[f"{name}: validation {metric}"]
            assert list(train.get_xdata()) == list(val.get_xdata()) == [e["epoch"] for e in history]
            assert list(train.get_ydata()) == [e[metric] for e in history]
            assert list(val.get_ydata()) == [e[f"val_{metric}"] for e in history]
            assert (train.get_linestyle(), val.get_linestyle()) == ("-", "--")
            assert train.get_color() == val.get_color() == colours.setdefault(name, train.get_color())
    assert len(set(colours.values())) == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["toy", "faster", "training", "validation"]


def test_compare_writes_the_picture_atomically_with_each_run_in_its_colour(runs_dir, tmp_path, capsys):
    out = tmp_path / "pictures" / "compare.png"
    assert main(["compare", str(runs_dir / "toy"), str(runs_dir / "faster"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["compare.png"]  # no temporary file left beside it
    pixels = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert pixels.shape[1] > 1000  # two panels side by side at 150 dpi
    fig = plot_runs(compare_runs([runs_dir / "toy", runs_dir / "faster"]).histories)
    for line in fig.axes[0].get_lines()[::2]:  # each run's colour, as drawn
        rgb = np.array([int(line.get_color()[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=2) < 30).sum() > 200, line.get_label()


def test_compare_runs_sharing_a_name_are_labelled_by_path(runs_dir, tmp_path, capsys):
    twin = copy_run(runs_dir / "toy", tmp_path / "elsewhere" / "toy")
    got = cli_json(capsys, "compare", str(runs_dir / "toy"), str(twin), "-o", str(tmp_path / "c.png"), "--json")
    assert got["labels"] == [str(runs_dir / "toy"), str(twin)] and got["settings"] == {}
    assert main(["compare", str(runs_dir / "toy"), str(twin), "-o", str(tmp_path / "c.png")]) == 0
    assert capsys.readouterr().out.startswith("2 runs compared; every setting is the same")


def test_compare_refuses_what_it_cannot_compare(runs_dir, tmp_path, capsys):
    toy = str(runs_dir / "toy")
    one_line_error(capsys, main(["compare", toy]), "at least two run directories, got 1")
    one_line_error(capsys, main(["compare", toy, str(runs_dir / "notes")]), "is not a run directory")
    one_line_error(capsys, main(["compare", toy, str(runs_dir / "toy" / ".." / "toy")]), "is given twice")
    broken = copy_run(runs_dir / "toy", tmp_path / "broken")
    (broken / "history.json").write_text("[{")
    one_line_error(capsys, main(["compare", toy, str(broken)]), f"{broken} cannot be compared", "history.json")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "train.lock").write_text(f"{os.getppid()}\n")
    one_line_error(capsys, main(["compare", toy, str(tmp_path / "new")]), "has no completed epoch yet")
    one_line_error(capsys, main(["compare", toy, str(runs_dir / "faster"), "-o", str(tmp_path / "c.bmp")]), "cannot tell the image format")


def test_many_runs_get_distinct_colours():
    histories = {f"run{i}": [{"epoch": 1, "loss": 1.0 + i, "accuracy": 0.5}] for i in range(25)}
    for n in (3, 12, 25):
        fig = plot_runs(dict(list(histories.items())[:n]))
        assert len({line.get_color() for line in fig.axes[0].get_lines()}) == n
        assert len(fig.axes[0].get_lines()) == n  # no validation in these histories: training lines only


def test_the_python_api_lists_the_same_rows(runs_dir, capsys):
    assert [r.as_dict() for r in list_runs(runs_dir, sort="name")] == cli_json(capsys, "runs", str(runs_dir), "--sort", "name", "--json")


def _a_gone_pid() -> int:
    """The id of a process that has ended (and been reaped), as a killed trainer's lock would hold."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
