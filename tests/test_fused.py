"""The fused first-block kernel (kernels/ops.py, kernels/csrc/conv_pool.c) against PyTorch's own operators; the kernels' build."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from fashion_cnn import build_model, use_kernels
from fashion_cnn.kernels import ops as fused
from fashion_cnn.kernels.backend import disabled, first_block_runs
from kernel_support import kernels  # noqa: F401  (the fixture)

needs_kernel = pytest.mark.usefixtures("kernels")


def reference(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    """The same block with PyTorch's operators: convolution, max-pool, ReLU."""
    return torch.relu(F.max_pool2d(F.conv2d(x, conv.weight, conv.bias, padding=1), 2))


def both(x: torch.Tensor, conv: torch.nn.Conv2d, grad: torch.Tensor):
    """Output and (weight, bias) gradients through the kernel and through PyTorch's operators."""
    results = []
    for run in (lambda: fused.conv_pool_relu(x, conv), lambda: reference(x, conv)):
        conv.zero_grad()
        out = run()
        out.backward(grad)
        results.append((out.detach(), conv.weight.grad.clone(), conv.bias.grad.clone()))
    return results


@needs_kernel
@pytest.mark.parametrize(("n", "h", "w", "filters"), [(32, 28, 28, 32), (5, 6, 10, 8), (3, 2, 2, 16), (7, 28, 28, 64)])
def test_kernel_equals_pytorch_operators(n, h, w, filters):
    """The same output, and weight gradients as close to the exact (float64) ones as PyTorch's own."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, filters, 3, padding="same")
    x = torch.rand(n, 1, h, w)
    grad = torch.randn(n, filters, h // 2, w // 2)
    (out, gw, gb), (ref, gw_ref, gb_ref) = both(x, conv, grad)
    assert out.shape == ref.shape == (n, filters, h // 2, w // 2)
    assert out.is_contiguous(memory_format=torch.channels_last)  # what the next convolution reads fastest
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    exact = torch.nn.Conv2d(1, filters, 3, padding="same").double()
    exact.load_state_dict(conv.state_dict())
    exact.weight.grad = None
    reference(x.double(), exact).backward(grad.double())
    for ours, theirs, truth in ((gw, gw_ref, exact.weight.grad), (gb, gb_ref, exact.bias.grad)):
        # sums in another order: float rounding, no more than PyTorch's own (with a little slack)
        assert (ours.double() - truth).abs().max() <= 2 * (theirs.double() - truth).abs().max() + 1e-6


@needs_kernel
def test_ties_go_to_the_first_maximum_as_in_pytorch():
    """Pixels of 0, 1 or 2 through a kernel that copies the centre: most windows hold a tie, and which pixel
    wins decides the other taps' gradients (its neighbours differ). Small integers: every sum is exact."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 8, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, 0, 1, 1] = 1.0
        conv.bias.zero_()
    x = torch.randint(0, 3, (4, 1, 12, 12)).float()
    grad = torch.randint(-2, 3, (4, 8, 6, 6)).float()
    (out, gw, gb), (ref, gw_ref, gb_ref) = both(x, conv, grad)
    assert torch.equal(out, ref) and torch.equal(gb, gb_ref)
    assert torch.equal(gw, gw_ref)
    assert gw[:, 0, 0, 0].abs().sum() > 0  # the off-centre taps did receive gradient


@needs_kernel
def test_nan_propagates_as_in_pytorch():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 8, 3, padding=1)
    x = torch.rand(2, 1, 8, 8)
    x[0, 0, 3, 4] = float("nan")
    with torch.no_grad():
        out, ref = fused.conv_pool_relu(x, conv), reference(x, conv)
    assert torch.equal(out.isnan(), ref.isnan()) and out.isnan().any()
    # the numbers around the NaN: the convolution's sums in another order than oneDNN's AVX2 kernel (float rounding)
    torch.testing.assert_close(out.nan_to_num(), ref.nan_to_num(), rtol=1e-6, atol=1e-6)


@needs_kernel
def test_model_runs_the_kernel_where_it_applies_and_pytorch_elsewhere(monkeypatch):
    model = build_model().train()
    x = torch.rand(4, 1, 28, 28)
    calls = []
    monkeypatch.setattr(fused.ConvPoolReLU, "apply", lambda *a: calls.append(1) or F.relu(a[0]))
    model(x)
    assert not calls  # until use_kernels, PyTorch's operators
    monkeypatch.undo()
    use_kernels(model)
    monkeypatch.setattr(
        fused.ConvPoolReLU, "apply", lambda *a: calls.append(1) or torch.relu(F.max_pool2d(F.conv2d(a[0], a[1], a[2], padding=1), 2))
    )
    model(x)
    assert len(calls) == 1  # the first block only (the second has 32 input channels)
    model(x.clone().requires_grad_())  # an input gradient is wanted (saliency): PyTorch's operators
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's own warnings about Python control flow
        torch.jit.trace(model.eval(), x, check_trace=False)  # traced (export): the plain operators
    model.train()
    handle = model.conv2d.register_forward_hook(lambda *a: None)  # a hook must see the layer run
    model(x)
    handle.remove()
    assert len(calls) == 1
    assert not fused.applies(model.conv2d.conv, model.max_pooling2d, torch.rand(2, 1, 27, 27))  # odd sizes
    assert not fused.applies(model.conv2d.conv, model.max_pooling2d, x.double())
    model(x)
    assert len(calls) == 2


@needs_kernel
def test_training_with_the_kernel_follows_pytorch_to_float_rounding():
    """A few Adam steps of the whole model, kernel against PyTorch's operators: the same losses to rounding."""

    def losses() -> list[float]:
        torch.manual_seed(0)
        model = build_model().to(memory_format=torch.channels_last)
        use_kernels(model)
        opt = torch.optim.Adam(model.parameters(), eps=1e-7, fused=True)
        g = torch.Generator().manual_seed(1)
        x, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
        out = []
        for step in range(5):
            torch.manual_seed(step)  # the same dropout masks
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    with_kernel = losses()
    with disabled():
        without = losses()
    assert with_kernel == pytest.approx(without, rel=1e-5)
    assert with_kernel[-1] < with_kernel[0]  # and it trains


def test_first_block_names_how_it_runs():
    assert first_block_runs(build_model(), "how") == "how"
    assert first_block_runs(build_model("resnet-small"), "how") is None


def _status_in_subprocess(tmp_path, **env) -> str:
    code = "import fashion_cnn as fc, torch; m = fc.build_model(); print(fc.use_kernels(m)); m(torch.rand(2, 1, 28, 28))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "FASHION_CNN_CACHE": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_switched_off_or_without_a_compiler_the_model_runs_pytorch_operators(tmp_path):
    assert _status_in_subprocess(tmp_path, FASHION_CNN_KERNELS="off") == "PyTorch operators (--kernels off)"
    broken = _status_in_subprocess(tmp_path, CC="/bin/false")
    assert broken.startswith("PyTorch operators (the CPU kernels did not compile"), broken
    log = tmp_path / "kernels" / "build.log"
    assert f"the compiler's whole output is in {log}" in broken and "/bin/false" in log.read_text()  # every attempt, in full
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.so"))  # nothing half-written left


@needs_kernel
def test_kernel_compiles_into_the_cache_once(tmp_path):
    assert _status_in_subprocess(tmp_path).startswith("fused kernel")
    built = list((tmp_path / "kernels").glob("*.so"))
    assert len(built) == 1 and not list((tmp_path / "kernels").glob("*.tmp"))
    mtime = built[0].stat().st_mtime_ns
    _status_in_subprocess(tmp_path)
    assert built[0].stat().st_mtime_ns == mtime  # loaded, not compiled again


WIDTHS = """
import sys, torch
import fashion_cnn as fc
from fashion_cnn.kernels import ops as fused
torch.manual_seed(0)
out = {"status": fc.kernels.build()}
for filters in (8, 16, 32, 64):  # 8: the 8-float kernels at every width; the others: 16 floats under AVX-512
    conv = torch.nn.Conv2d(1, filters, 3, padding=1)
    x = torch.rand(6, 1, 28, 28)
    y = fused.conv_pool_relu(x, conv)
    y.backward(torch.randn(y.shape).to(memory_format=torch.channels_last))
    a = torch.randn(6, filters, 14, 14).to(memory_format=torch.channels_last).requires_grad_()
    p = fused.pool_relu(a)
    p.backward(torch.randn(p.shape))
    out[filters] = [t.detach().clone() for t in (y, conv.weight.grad, conv.bias.grad, p, a.grad)]
    if filters >= 16:  # the Winograd kernel (8 floats a vector in both builds)
        second = torch.nn.Conv2d(16, filters, 3, padding=1).to(memory_format=torch.channels_last)
        b = torch.rand(6, 16, 14, 14).to(memory_format=torch.channels_last).requires_grad_()
        q = fused.winograd_conv_pool_relu(b, second)
        q.backward(torch.randn(q.shape))
        out[filters] += [t.detach().clone() for t in (q, b.grad, second.weight.grad, second.bias.grad)]
torch.save(out, sys.argv[1])
"""


@needs_kernel
@pytest.mark.skipif(not torch.backends.cpu.get_cpu_capability().startswith("AVX512"), reason="this CPU has no AVX-512")
def test_the_avx512_build_gives_the_avx2_builds_bits(tmp_path):
    """Where PyTorch runs AVX-512, the kernel computes 16 channels per vector instead of 8; each channel is its own
    lane, so outputs and gradients are the same bits as the AVX2 build's (that one made here by capping PyTorch)."""
    results = {}
    for name, env in (("avx512", {}), ("avx2", {"ATEN_CPU_CAPABILITY": "avx2"})):
        path = tmp_path / f"{name}.pt"
        done = subprocess.run([sys.executable, "-c", WIDTHS, str(path)], env={**os.environ, **env}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        results[name] = torch.load(path)
    assert results["avx512"]["status"] == "fused kernel (AVX-512, OpenMP)"
    assert results["avx2"]["status"] == "fused kernel (AVX2, OpenMP)"
    for filters in (8, 16, 32, 64):
        for wide, narrow in zip(results["avx512"][filters], results["avx2"][filters]):
            assert torch.equal(wide, narrow), filters


@needs_kernel
@pytest.mark.skipif(not torch.backends.cpu.get_cpu_capability().startswith("AVX512"), reason="this CPU has no AVX-512")
def test_a_compiler_without_avx512_builds_the_avx2_kernel(tmp_path):
    """A C compiler that refuses the AVX-512 flags (an old one): the AVX2 build, not PyTorch's operators."""
    cc = tmp_path / "cc-without-avx512"
    cc.write_text('#!/bin/sh\ncase "$*" in *-mavx512f*) echo "unrecognized option -mavx512f" >&2; exit 1;; esac\nexec cc "$@"\n')
    cc.chmod(0o755)
    assert _status_in_subprocess(tmp_path, CC=str(cc)) == "fused kernel (AVX2, OpenMP)"
