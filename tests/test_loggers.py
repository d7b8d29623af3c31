"""train --log tensorboard,mlflow: what TensorBoard's own reader and MLflow's own client read back equals the run.

Every toy run here is read back with ``EventAccumulator`` (TensorBoard's reader) and ``MlflowClient``: each
epoch's metrics equal history.json (TensorBoard stores float32, MLflow float64), the settings are config.json,
the final metrics metrics.json, the pictures and the model file the run's own files. Resuming, after a finished
run or a SIGKILL inside an epoch, continues the same TensorBoard folder and MLflow run, every step once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import all_cores, copy_run, isolated, one_line_error, write_dataset
from fashion_cnn.cli import main
from fashion_cnn.rundir import STATE
from fashion_cnn.training.checkpoint import completed_epochs

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install -e '.[tensorboard]'")
pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")

from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: E402

EPOCHS = 3
PER_EPOCH = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")  # history.json's columns but the epoch
# MLflow's own settings, kept out of the tests' MLflow: no usage reports over the network, the default store.
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": None, "MLFLOW_EXPERIMENT_NAME": None}


@contextlib.contextmanager
def mlflow_env():
    with pytest.MonkeyPatch.context() as mp:
        for name, value in MLFLOW_ENV.items():
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        yield


@pytest.fixture(autouse=True)
def _mlflow_env():
    with mlflow_env():
        yield


def train_args(data, runs, name, *extra, epochs=EPOCHS):
    return ["train", "--data-dir", str(data), "--epochs", str(epochs), "--batch-size", "16", "--seed", "3"] + [
        "--runs-dir",
        str(runs),
        "--name",
        name,
        "--quiet",
        *extra,
    ]


@pytest.fixture(scope="module")
def logged(toy_data, tmp_path_factory) -> Path:
    """``fashion-cnn train --log tensorboard,mlflow`` for 3 epochs on the toy data, the MLflow store by default."""
    root = tmp_path_factory.mktemp("logged")
    with isolated(root), mlflow_env(), contextlib.redirect_stdout(io.StringIO()):
        assert main(train_args(toy_data, root, "logged", "--log", "tensorboard,mlflow")) == 0
    return root / "logged"


def read_json(path: Path):
    return json.loads(path.read_text())


def events(run: Path) -> EventAccumulator:
    """The run's TensorBoard folder as TensorBoard reads it (everything kept: size_guidance 0)."""
    reader = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    reader.Reload()
    return reader


def tb_scalars(reader: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in reader.Scalars(tag)]


def f32(x: float) -> float:
    """What TensorBoard's float32 scalar holds of ``x``."""
    return float(np.float32(x))


def mlflow_run(run: Path):
    """The MLflow client on the store loggers.json names, and the run's id."""
    record = read_json(run / "loggers.json")["mlflow"]
    return MlflowClient(tracking_uri=record["tracking_uri"]), record["run_id"]


def ml_scalars(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def images_per_epoch(run: Path) -> int:
    """The training images per epoch, from the run's own metrics (images/s over the whole training)."""
    metrics, history = read_json(run / "metrics.json"), read_json(run / "history.json")
    return round(metrics["train_images_per_second"] * sum(r["seconds"] for r in history) / len(history))


# -- TensorBoard ----------------------------------------------------------------------------------------------
def test_tensorboard_holds_every_epoch_of_history_json(logged):
    reader, history = events(logged), read_json(logged / "history.json")
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for key in PER_EPOCH:
        assert tb_scalars(reader, key) == [(r["epoch"], f32(r[key])) for r in history], key
    n = images_per_epoch(logged)
    assert n == 240  # the toy set's 300 training images less the 20% validation split
    assert tb_scalars(reader, "images_per_second") == [(r["epoch"], f32(n / r["seconds"])) for r in history]
    assert tb_scalars(reader, "learning_rate") == [(r["epoch"], f32(1e-3)) for r in history]


def test_tensorboard_hparams_are_the_run_settings(logged):
    content = events(logged).PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    shown = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    config = read_json(logged / "config.json")
    assert shown["epochs"] == EPOCHS and shown["batch_size"] == 16 and shown["lr"] == config["lr"] == 1e-3
    assert shown["model"] == config["model"] == "tutorial-cnn" and shown["log"] == "tensorboard,mlflow"
    assert shown["data_dir"] == config["data_dir"] and shown["device"] == config["device"]
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert "final/test_accuracy" in {m.name.tag for m in experiment.metric_infos}
    ended = HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info
    assert ended.status == 1  # STATUS_SUCCESS


def test_tensorboard_holds_the_final_metrics_and_the_pictures(logged, tmp_path):
    reader, metrics = events(logged), read_json(logged / "metrics.json")
    for split in ("val", "test"):
        for key in ("loss", "accuracy"):
            assert tb_scalars(reader, f"final/{split}_{key}") == [(EPOCHS, f32(metrics[split][key]))]
    assert tb_scalars(reader, "final/best_epoch") == [(EPOCHS, metrics["best_epoch"])]
    assert {t for t in reader.Tags()["images"]} == {"pictures/loss", "pictures/accuracy", "pictures/confusion"}
    for name in ("loss", "accuracy", "confusion"):
        [picture] = reader.Images(f"pictures/{name}")
        assert picture.step == EPOCHS
        assert picture.encoded_image_string == (logged / f"{name}.png").read_bytes()  # the PNG file itself
        with Image.open(io.BytesIO(picture.encoded_image_string)) as image:
            assert image.size == (picture.width, picture.height) and image.width > 400 and image.height > 300
    # What confusion.png shows is the test split's confusion matrix, as `fashion-cnn evaluate --report` draws it.
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["evaluate", str(logged), "--split", "test", "--report", "--out-dir", str(tmp_path)]) == 0
    drawn, logged_png = (np.asarray(Image.open(p).convert("RGB")) for p in (tmp_path / "confusion.png", logged / "confusion.png"))
    assert np.array_equal(drawn, logged_png)


# -- MLflow ---------------------------------------------------------------------------------------------------
def test_mlflow_run_holds_every_epoch_of_history_json_in_the_default_store(logged):
    client, run_id = mlflow_run(logged)
    assert client.tracking_uri == f"sqlite:///{logged.parent.resolve() / 'mlflow.db'}"  # beside the run folders
    history = read_json(logged / "history.json")
    for key in PER_EPOCH:
        assert ml_scalars(client, run_id, key) == [(r["epoch"], r[key]) for r in history], key  # float64: exactly
    n = images_per_epoch(logged)
    assert ml_scalars(client, run_id, "images_per_second") == [(r["epoch"], n / r["seconds"]) for r in history]
    assert ml_scalars(client, run_id, "learning_rate") == [(r["epoch"], 1e-3) for r in history]


def test_mlflow_run_has_the_settings_final_metrics_model_and_pictures(logged, tmp_path):
    client, run_id = mlflow_run(logged)
    found = client.get_run(run_id)
    assert found.info.status == "FINISHED" and found.info.run_name == "logged"
    assert client.get_experiment(found.info.experiment_id).name == "fashion-cnn"
    assert found.data.params == {k: str(v) for k, v in read_json(logged / "config.json").items()}
    metrics = read_json(logged / "metrics.json")
    assert found.data.metrics["final/test_accuracy"] == metrics["test"]["accuracy"]
    assert found.data.metrics["final/val_loss"] == metrics["val"]["loss"]
    assert found.data.metrics["final/epochs_run"] == EPOCHS
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"model", "pictures", "report.html", "metrics.json", "config.json"} <= top
    assert {a.path for a in client.list_artifacts(run_id, "pictures")} == {f"pictures/{n}.png" for n in ("loss", "accuracy", "confusion")}
    model = Path(client.download_artifacts(run_id, "model/best.safetensors", str(tmp_path)))
    assert model.read_bytes() == (logged / "best.safetensors").read_bytes()
    assert (logged.parent / "mlartifacts").is_dir()  # the default store keeps its artifacts beside the runs too


# -- Resuming -------------------------------------------------------------------------------------------------
def test_resume_continues_the_same_tensorboard_folder_and_mlflow_run(toy_dir, tmp_path, monkeypatch):
    runs, store, work = tmp_path / "runs", f"sqlite:///{tmp_path / 'elsewhere.db'}", tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(train_args(toy_dir, runs, "r", "--log", "tensorboard,mlflow", "--mlflow-uri", store, epochs=1)) == 0
    run = runs / "r"
    first = read_json(run / "loggers.json")["mlflow"]
    assert first["tracking_uri"] == store and not (runs / "mlflow.db").exists()  # --mlflow-uri, not the default
    assert (tmp_path / "mlartifacts").is_dir() and not list(work.iterdir())  # beside the database, not in the working folder
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0  # the run's own --log and --mlflow-uri
    history = read_json(run / "history.json")
    assert [r["epoch"] for r in history] == [1, 2, 3]
    reader = events(run)
    client, run_id = mlflow_run(run)
    assert run_id == first["run_id"]
    for key in PER_EPOCH:
        assert tb_scalars(reader, key) == [(r["epoch"], f32(r[key])) for r in history], key
        assert ml_scalars(client, run_id, key) == [(r["epoch"], r[key]) for r in history], key
    assert [s for s, _ in ml_scalars(client, run_id, "learning_rate")] == [1, 2, 3]
    assert [p.name for p in run.iterdir() if p.name.startswith("tensorboard")] == ["tensorboard"]
    found = client.get_run(run_id)
    assert found.info.status == "FINISHED"
    assert found.data.params["epochs"] == "1" and found.data.tags["resumed.epochs"] == "3"  # parameters never change
    assert len(client.search_runs([found.info.experiment_id])) == 1


def test_resume_hides_epochs_tensorboard_got_after_the_last_recorded_one(logged, tmp_path):
    """A crash after TensorBoard received epoch 3 but before loggers.json said so: the resumed run sends epoch 3
    again from the history, and TensorBoard's reader shows each step once."""
    run = copy_run(logged, tmp_path / "copy")
    record = read_json(run / "loggers.json")
    record["tensorboard"]["epochs_logged"] = 2
    (run / "loggers.json").write_text(json.dumps(record))
    assert main(["train", "--resume", str(run), "--epochs", "4", "--log", "tensorboard", "--quiet"]) == 0
    history, reader = read_json(run / "history.json"), events(run)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    for key in PER_EPOCH:
        assert tb_scalars(reader, key) == [(r["epoch"], f32(r[key])) for r in history], key
    assert [s for s, _ in tb_scalars(reader, "learning_rate")] == [1, 2, 4]  # the history holds no learning rate
    assert read_json(run / "loggers.json")["tensorboard"]["epochs_logged"] == 4


def test_a_logger_added_on_resume_gets_the_epochs_before_it(toy_run, tmp_path):
    run = copy_run(toy_run.path, tmp_path / "r")  # trained for 2 epochs without --log
    store = f"sqlite:///{tmp_path / 'added.db'}"
    assert main(["train", "--resume", str(run), "--epochs", "3", "--log", "mlflow", "--mlflow-uri", store, "--quiet"]) == 0
    client, run_id = mlflow_run(run)
    history = read_json(run / "history.json")
    for key in PER_EPOCH:
        assert ml_scalars(client, run_id, key) == [(r["epoch"], r[key]) for r in history], key
    assert [s for s, _ in ml_scalars(client, run_id, "learning_rate")] == [3]


@pytest.fixture(scope="module")
def big_toy(tmp_path_factory):
    # 800 training images in steps of 8: an epoch of 100 steps, long enough to be killed inside (as test_resume.py).
    return write_dataset(tmp_path_factory.mktemp("data") / "toy", n_train=1000, n_test=100)


@pytest.mark.slow
def test_sigkill_inside_an_epoch_then_resume_logs_every_step_once(big_toy, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "fashion_cnn", *train_args(big_toy, runs, "k", "--log", "tensorboard,mlflow", "--threads", "1")]
    cmd[cmd.index("--batch-size") + 1] = "8"
    env = {k: v for k, v in os.environ.items() if k not in MLFLOW_ENV} | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    with all_cores():
        proc = subprocess.Popen(cmd, env={**env, "FASHION_CNN_CACHE": str(tmp_path / "cache")}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (runs / "k" / STATE).is_file():
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr.read() if proc.poll() is not None else "no epoch in 300 s"
            )
            time.sleep(0.02)
        time.sleep(0.2)  # inside epoch 2
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    run = runs / "k"
    assert 1 <= completed_epochs(run) < EPOCHS, "the run was not stopped inside training"
    before = read_json(run / "loggers.json")["mlflow"]["run_id"]
    client, run_id = mlflow_run(run)
    assert client.get_run(run_id).info.status == "RUNNING"  # killed: nothing closed it
    assert main(["train", "--resume", str(run), "--threads", "1", "--quiet"]) == 0
    history = read_json(run / "history.json")
    assert [r["epoch"] for r in history] == [1, 2, 3]
    reader = events(run)
    assert mlflow_run(run)[1] == before
    for key in PER_EPOCH:
        assert tb_scalars(reader, key) == [(r["epoch"], f32(r[key])) for r in history], key
        assert ml_scalars(client, run_id, key) == [(r["epoch"], r[key]) for r in history], key
    assert client.get_run(run_id).info.status == "FINISHED"


# -- torchrun -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_torchrun_logs_once_from_rank_0(toy_dir, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "fashion_cnn"]
    # --log-to: torchrun's parser reads the script's options too and refuses --log as ambiguous (--log-dir, --logs-specs).
    cmd += train_args(toy_dir, runs, "ddp", "--log-to", "tensorboard,mlflow", epochs=2)
    env = {k: v for k, v in os.environ.items() if k not in MLFLOW_ENV} | {"MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1"}
    with all_cores():
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = runs / "ddp"
    assert read_json(run / "config.json")["processes"] == 2
    history = read_json(run / "history.json")
    assert len(list((run / "tensorboard").iterdir())) == 1  # one event file: rank 1 wrote none
    reader = events(run)
    client, run_id = mlflow_run(run)
    for key in PER_EPOCH:
        assert tb_scalars(reader, key) == [(r["epoch"], f32(r[key])) for r in history], key
        assert ml_scalars(client, run_id, key) == [(r["epoch"], r[key]) for r in history], key
    [only] = client.search_runs([client.get_run(run_id).info.experiment_id])
    assert only.info.run_id == run_id and only.info.status == "FINISHED"
    assert sorted(p.name for p in runs.iterdir()) == ["ddp", "mlartifacts", "mlflow.db"]


# -- Refusals -------------------------------------------------------------------------------------------------
def test_an_unknown_logger_is_one_line_listing_the_choices(tmp_path, capsys):
    code = main(["train", "--log", "tensorboard,wandb", "--runs-dir", str(tmp_path)])
    one_line_error(capsys, code, "unknown logger 'wandb'", "choose from: mlflow, tensorboard")
    assert not list(tmp_path.iterdir())


def test_mlflow_uri_without_log_mlflow_is_refused(tmp_path, capsys):
    code = main(["train", "--log", "tensorboard", "--mlflow-uri", "sqlite:///x.db", "--runs-dir", str(tmp_path)])
    one_line_error(capsys, code, "--mlflow-uri", "add --log mlflow")


def test_a_store_mlflow_refuses_is_one_line_and_leaves_no_run(toy_dir, tmp_path, capsys):
    # MLflow 3 refuses a file: store (it prefers SQLite) unless MLFLOW_ALLOW_FILE_STORE=true: its reason, on one line.
    code = main(train_args(toy_dir, tmp_path / "runs", "f", "--log", "mlflow", "--mlflow-uri", (tmp_path / "mlruns").as_uri(), epochs=1))
    one_line_error(capsys, code, "cannot log to MLflow at file://", "MLFLOW_ALLOW_FILE_STORE")
    assert not (tmp_path / "runs" / "f").exists()


BLOCKED = """
import sys
sys.modules[{module!r}] = None  # as if the extra were not installed
from fashion_cnn.cli import main
sys.exit(main(["train", "--log", {name!r}, "--runs-dir", {runs!r}]))
"""


@pytest.mark.parametrize(("name", "module"), [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_a_missing_extra_is_one_line_naming_the_pip_install(name, module, tmp_path):
    code = BLOCKED.format(module=module, name=name, runs=str(tmp_path / "runs"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"pip install 'fashion-cnn[{name}]'" in proc.stderr and f"--log {name}" in proc.stderr
    assert not (tmp_path / "runs").exists()
