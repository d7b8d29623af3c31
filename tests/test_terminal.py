"""What a person sees in the terminal (issue 12): aligned Korean columns, help text, --json, one-line errors."""

import json
import re

import pytest
import torch
from rich.cells import cell_len

from fashion_cnn.cli import main
from fashion_cnn.data.registry import get_spec
from fashion_cnn.environment import cpu_name
from fashion_cnn.errors import FashionCNNError
from fashion_cnn.kernels import KernelBuildError, build
from kernel_support import kernels  # noqa: F401  (the fixture)


def column(line: str, text: str) -> int:
    """The terminal column (in cells) where ``text`` starts in ``line``."""
    return cell_len(line[: line.index(text)])


def test_predict_table_is_aligned_for_korean_names(untrained_model_file, toy_dir, capsys):
    assert main(["predict", str(untrained_model_file), "--data-dir", str(toy_dir), "--index", "0", "--lang", "ko"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"^  \d  ", line)]
    assert len(rows) == 10 and any("앵클 부츠" in r for r in rows)
    starts = {column(r, re.search(r"\d\.\d{4}", r).group()) for r in rows}
    assert len(starts) == 1, "the probability column wanders"


def test_evaluate_report_table_is_aligned_for_korean_names(untrained_model_file, toy_dir, tmp_path, capsys):
    assert main(["evaluate", str(untrained_model_file), "--data-dir", str(toy_dir), "--report", "--lang", "ko", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.search(r"\d\.\d{4}\s+\d\.\d{4}\s+\d\.\d{4}", line)]
    assert any("스니커즈" in r for r in rows) and any("macro avg" in r for r in rows)
    ends = {column(r, re.search(r"\d\.\d{4}", r).group()) for r in rows}
    assert len(ends) == 1, "the precision column wanders"


def test_train_help_shows_each_default_once_and_no_noise(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no word broken at a hyphen
    with pytest.raises(SystemExit, match="^0$"):  # --help exits with status 0
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: True)" not in text
    assert text.count("(default: fashion-mnist)") == 1 and "(default: 32)" in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)


@pytest.mark.parametrize("command", ["plot-model", "plot-history", "show", "report"])
def test_picture_commands_answer_json(command, untrained_model_file, toy_dir, tmp_path, capsys):
    if command in ("plot-history", "report"):
        assert main(["train", "--data-dir", str(toy_dir), "--epochs", "1", "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]) == 0
    args = {
        "plot-model": ["plot-model", "-o", str(tmp_path / "m.png")],
        "plot-history": ["plot-history", str(tmp_path / "r"), "-o", str(tmp_path / "pics")],
        "show": ["show", "--data-dir", str(toy_dir), "-o", str(tmp_path / "s.png")],
        "report": ["report", str(tmp_path / "r"), "-o", str(tmp_path / "r.html")],
    }[command]
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["written"] and all((tmp_path / p).is_file() for p in answer["written"])


def test_an_unknown_option_shows_the_commands_own_usage(capsys):
    with pytest.raises(SystemExit, match="^2$") as stop:  # argparse's status for a usage error
        main(["serve", "model.safetensors", "--json"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: fashion-cnn serve") and "unrecognized arguments: --json" in err


def test_a_failed_download_is_one_short_line_naming_each_mirror(monkeypatch):
    import pooch

    from fashion_cnn.data.fetch import locate

    long = "HTTPSConnectionPool(host='x', port=443): Max retries exceeded with url: /f (Caused by NameResolutionError(" + "x" * 1500 + "))"

    def offline(**kwargs):
        pooch.get_logger().info("Downloading data from '%s' to file '%s'.", kwargs["url"], kwargs["fname"])
        raise OSError(long)

    monkeypatch.setattr(pooch, "retrieve", offline)
    spec = get_spec("fashion-mnist")
    with pytest.raises(FashionCNNError, match="^could not download train-images-idx3-ubyte.gz of fashion-mnist from any mirror ") as error:
        locate(spec)
    message = str(error.value)
    assert "\n" not in message and len(message) < 600, message
    for host in ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", "storage.googleapis.com", "raw.githubusercontent.com"):
        assert f"{host}: the host name could not be resolved (no network?)" in message
    assert message.endswith(
        "download the four files by hand and pass --data-dir (or set $FASHION_CNN_DATA), or retry when the network is back"
    )


def test_a_failed_download_prints_no_download_lines(monkeypatch):
    import logging

    import pooch

    from fashion_cnn.data.fetch import locate

    shown = []

    class Collect(logging.Handler):
        def emit(self, record):
            shown.append(record.getMessage())

    def offline(**kwargs):  # what pooch.retrieve logs before each try
        pooch.get_logger().info("Downloading data from '%s' to file '%s'.", kwargs["url"], kwargs["fname"])
        raise OSError("Temporary failure in name resolution")

    handler = Collect()
    pooch.get_logger().addHandler(handler)
    monkeypatch.setattr(pooch, "retrieve", offline)
    try:
        with pytest.raises(FashionCNNError, match="^could not download .* of mnist from any mirror "):
            locate(get_spec("mnist"))
    finally:
        pooch.get_logger().removeHandler(handler)
    assert not [m for m in shown if m.startswith("Downloading data from")]


def _kernels_status() -> tuple[str, bool]:
    try:
        return build(), True
    except KernelBuildError as e:
        return f"PyTorch operators ({e})", False


def test_training_says_first_where_and_how_it_computes(toy_dir, tmp_path, capsys):
    settings = "--epochs 1 --name r --threads 1 --precision fp32".split()
    assert main(["train", "--data-dir", str(toy_dir), "--runs-dir", str(tmp_path), *settings]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    block, built = _kernels_status()  # how the first conv block runs: the fused kernel, or PyTorch's operators and why
    second = ", second block: Winograd kernel" if built else ""  # fp32: the second block by Winograd
    where = f"cpu ({cpu_name()}, {torch.backends.cpu.get_cpu_capability()} kernels), fp32, first block: {block}{second}, 1 thread"
    assert first.startswith(f"Training tutorial-cnn on 240 images, validating on 60: {where}; run directory ")
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["device"], config["precision_used"], config["threads"], config["first_block"]) == ("cpu", "fp32", 1, block)
    assert config["winograd_blocks"] == ([2] if built else [])


def test_with_kernels_off_training_says_pytorch_operators(toy_dir, tmp_path, capsys):
    settings = "--epochs 1 --name r --threads 1 --precision fp32 --limit 64 --kernels off".split()
    assert main(["train", "--data-dir", str(toy_dir), "--runs-dir", str(tmp_path), *settings]) == 0
    assert "first block: PyTorch operators (--kernels off), 1 thread" in capsys.readouterr().out.splitlines()[0]
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["kernels"], config["winograd_blocks"]) == ("off", [])


@pytest.mark.usefixtures("kernels")
def test_under_bf16_the_second_block_is_not_said_to_run_winograd(toy_dir, tmp_path, capsys):
    settings = "--epochs 1 --name r --threads 1 --precision bf16 --limit 64".split()
    assert main(["train", "--data-dir", str(toy_dir), "--runs-dir", str(tmp_path), *settings]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert ", bf16 autocast, first block: " in first and "Winograd" not in first, first
    assert json.loads((tmp_path / "r" / "config.json").read_text())["winograd_blocks"] == []


def test_an_onnx_file_is_recognised_without_engine(untrained_model_file, toy_dir, tmp_path, capsys):
    assert main(["export", str(untrained_model_file), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m.onnx"), "--data-dir", str(toy_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "onnx"


def test_the_interrupt_message_counts_one_epoch_in_words(tmp_path):
    from fashion_cnn.experiment.resume import interrupted_message
    from fashion_cnn.training.checkpoint import save_state

    save_state(tmp_path / "state.safetensors", {"epoch": 1})
    assert interrupted_message(tmp_path, 3).startswith("interrupted; epoch 1 of 3 is saved in ")


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """``fashion-cnn summary | head -1``: the pipe closes under the command; no traceback, the SIGPIPE status."""
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-m", "fashion_cnn", "summary"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()  # gone before the first line is written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141 and err == "", err
