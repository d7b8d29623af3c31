"""Data-parallel training: 2 CPU processes (gloo) must train like 1 process with the same global batch."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import all_cores
from fashion_cnn import build_model, fit, load_dataset, train_val_split


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fit(toy_dir, out, rank=0, world=1, port=0, fit_kwargs=None):
    """Two epochs of ``fit`` (with ``fit_kwargs``) on one process or as one rank of ``world`` (gloo); rank 0 saves the result."""
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    ds = load_dataset("fashion-mnist", toy_dir)
    train, val = train_val_split(ds.train)
    torch.manual_seed(0)
    model = build_model("tutorial-cnn", dropout=0.0)  # no dropout: the ranks' different masks would differ
    history = fit(model, train, val, epochs=2, batch_size=16, seed=1, verbose=False, **(fit_kwargs or {}))
    if rank == 0:
        torch.save({"history": history.epochs, "state": model.state_dict()}, out)
    if world > 1:
        dist.barrier()  # as fashion_cnn.distributed.cleanup: no rank leaves while another still talks to it
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_match_one(toy_dir, tmp_path):
    assert_two_processes_match_one(toy_dir, tmp_path)


def assert_two_processes_match_one(toy_dir, tmp_path, **fit_kwargs):
    """``fit(..., **fit_kwargs)`` on 2 gloo processes gives the history and weights of 1 process (also for
    tests/test_class_weights.py)."""
    # The two ranks start (seconds of imports) while this process trains the one-process reference.
    with all_cores():
        ranks = mp.spawn(_fit_rank, args=(toy_dir, tmp_path / "ddp.pt", 2, free_port(), fit_kwargs), nprocs=2, join=False)
    try:
        _fit(toy_dir, tmp_path / "single.pt", fit_kwargs=fit_kwargs)
        while not ranks.join():
            pass
    finally:
        for process in ranks.processes:
            if process.is_alive():
                process.kill()
    single, ddp = torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "ddp.pt")
    for a, b in zip(single["history"], ddp["history"]):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=2e-4), key
    for key, w in single["state"].items():
        torch.testing.assert_close(ddp["state"][key], w, atol=2e-4, rtol=1e-3)


def _fit_rank(rank, toy_dir, out, world, port, fit_kwargs=None):
    _fit(toy_dir, out, rank, world, port, fit_kwargs)


@pytest.mark.slow
def test_torchrun_cli_writes_one_run_directory(toy_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "fashion_cnn",
        "train",
        "--data-dir",
        str(toy_dir),
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--name",
        "ddp",
    ]
    with all_cores():
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "runs" / "ddp"
    assert json.loads((run / "config.json").read_text())["processes"] == 2
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    assert proc.stdout.count("Epoch 1/2") == 1  # only rank 0 prints
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.3
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp"]  # rank 1 made no run of its own


def test_batch_must_divide_over_ranks():
    from fashion_cnn import FashionCNNError
    from fashion_cnn.distributed import local_batch

    assert local_batch(32, 2) == 16
    with pytest.raises(FashionCNNError, match="batch size 33 does not divide evenly over 2 processes"):
        local_batch(33, 2)
