"""The CPU a run computes on (issue 17): what it uses is named, and a CPU without native bf16 trains in fp32."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import fashion_cnn as fc
from fashion_cnn.environment import cpu_isa, isa_line
from fashion_cnn.inference.predict import EVAL_BATCH, logits_of
from fashion_cnn.models.registry import model_names
from fashion_cnn.models.summary import mflops

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def test_a_cpu_without_native_bf16_trains_in_fp32_and_says_so(toy_dir, tmp_path):
    """An AVX2 CPU (emulated by capping PyTorch and oneDNN at AVX2): --precision auto is fp32, and the first
    line and the run's environment name the AVX2 kernels."""
    env = {**os.environ, **AVX2}
    command = [sys.executable, "-m", "fashion_cnn", "train", "--data-dir", str(toy_dir), "--runs-dir", str(tmp_path)]
    proc = subprocess.run([*command, "--epochs", "1", "--name", "r", "--threads", "1"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert "AVX2 kernels), fp32 (auto: no native bf16 here), first block: " in first and first.endswith(
        ", 1 thread; run directory " + str(tmp_path / "r")
    ), first
    assert json.loads((tmp_path / "r" / "config.json").read_text())["precision_used"] == "fp32"
    isa = json.loads((tmp_path / "r" / "environment.json").read_text())["cpu_isa"]
    assert (isa["torch"], isa["onednn_max_isa"], isa["native_bf16"]) == ("AVX2", "AVX2", False)
    assert "AVX2 kernels, oneDNN capped at AVX2" in (tmp_path / "r" / "report.html").read_text()


def test_the_isa_line_names_what_this_process_runs():
    isa = cpu_isa()
    assert isa["torch"] == torch.backends.cpu.get_cpu_capability()
    line = isa_line(isa)
    assert line.startswith(f"{isa['torch']} kernels") and line.endswith("native bf16")
    assert ("no native bf16" in line) != isa["native_bf16"]
    assert isa_line({"torch": "AVX2", "flags": ["avx2", "fma"]}) == "AVX2 kernels (CPU: avx2 fma), no native bf16"


def test_mflops_counts_what_torch_flop_counter_counts_for_every_model():
    """``summary`` counts FLOPs from the layers' output shapes (the flop counter imports torch._dynamo: a second
    of every run's start-up); the figures must stay the counter's."""
    from torch.utils.flop_counter import FlopCounterMode

    for name in model_names():
        model = fc.build_model(name).eval()
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model(torch.zeros(1, 1, 28, 28))
        assert mflops(model) == counter.get_total_flops() / 1e6, name


def test_the_summary_imports_neither_dynamo_nor_the_drawing_libraries():
    code = (
        "import sys; import fashion_cnn as fc; from fashion_cnn.models.summary import summary; "
        "summary(fc.build_model(), print_fn=lambda s: None); "
        "print([m for m in ('torch._dynamo', 'matplotlib', 'sklearn', 'fastapi', 'onnx') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_loaded_model_reproduces_the_runs_metrics_to_the_last_bit(toy_run, toy_data):
    """``evaluate`` on a model file, with the CPU kernels swapped in as ``fashion-cnn evaluate`` does, runs the same
    (channels-last) kernels as the run's final evaluation did."""

    model = fc.load_model(toy_run.path)
    fc.use_kernels(model)
    assert model.conv2d_1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    metrics = json.loads((toy_run.path / "metrics.json").read_text())
    assert fc.evaluate(model, fc.load_split("test", data_dir=toy_data)) == metrics["test"]
    # The final validation metrics are the ones fit logged for the restored epoch, not a second pass: still the same bits.
    _, val = fc.train_val_split(fc.load_dataset("fashion-mnist", toy_data).train)
    assert fc.evaluate(model, val) == metrics["val"]


def test_evaluating_in_small_batches_gives_the_logits_of_large_ones(toy_run, toy_data):
    """EVAL_BATCH went from 1,000 to 128 (2-3× the images/s); the validation metrics in a run's history must not
    move with it, so the logits of 128-image batches are those of one large batch, bit for bit."""
    model = fc.load_model(toy_run.path)
    images = np.concatenate([fc.load_split("test", data_dir=toy_data).images] * 6)  # 600 images: 4 × 128 + 88
    assert EVAL_BATCH == 128
    assert torch.equal(logits_of(model, images), logits_of(model, images, batch_size=1000))


FAULTS_PER_STEP = """
import resource, sys, torch, torch.nn.functional as F, fashion_cnn as fc
from fashion_cnn import runtime
held = runtime.hold_freed_memory() if sys.argv[1] == "1" else False
torch.manual_seed(0)
model = fc.build_model().to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), fused=True)
x, y = torch.rand(32, 1, 28, 28).to(memory_format=torch.channels_last), torch.randint(0, 10, (32,))
def steps(n):
    for _ in range(n):
        loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
steps(20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
steps(100)
print(held, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 100)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc thresholds: Linux only")
def test_training_steps_reuse_freed_memory_instead_of_faulting_in_fresh_pages():
    """``runtime.hold_freed_memory`` (called by ``fashion-cnn train``): a training step takes no fresh pages from the
    kernel; without it glibc's defaults hand them back and fault them in every step. Measured on PyTorch's own
    operators (the model has no ``use_kernels``): the fused kernels never allocate the large activations (10-14
    faults a step by default with them, against hundreds without)."""

    def faults(hold: str) -> tuple[str, float]:
        proc = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP, hold], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        held, per_step = proc.stdout.split()
        return held, float(per_step)

    default, held = faults("0"), faults("1")
    assert default[0] == "False" and held[0] == "True"
    # glibc's own thresholds move with what was freed before, so the default varies from run to run: 15-830 faults
    # per step seen here; held: 0.3-3 alone, up to 8 beside a busy test suite. Compare only where there is a contrast.
    if default[1] < 50:
        pytest.skip(f"this machine's malloc took only {default[1]:.1f} page faults per step by default: too few to compare")
    assert held[1] < default[1] / 5, f"{held[1]:.1f} page faults per step with the thresholds raised ({default[1]:.1f} without)"
