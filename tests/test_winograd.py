"""The second block's Winograd kernel (kernels/ops.py, kernels/csrc/winograd_conv_pool.c) against PyTorch's operators."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from fashion_cnn import build_model, use_kernels
from fashion_cnn.kernels import ops as fused
from fashion_cnn.kernels.backend import disabled
from kernel_support import kernels  # noqa: F401  (the fixture)

needs_kernel = pytest.mark.usefixtures("kernels")


def block(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    """The block with PyTorch's operators: convolution, max-pool, ReLU."""
    return torch.relu(F.max_pool2d(F.conv2d(x, conv.weight, conv.bias, padding=1), 2))


def run(fn, x: torch.Tensor, conv: torch.nn.Conv2d, grad: torch.Tensor):
    """The output and the (input, weight, bias) gradients of ``fn(x, conv)``."""
    x = x.detach().clone().requires_grad_()
    conv.zero_grad()
    out = fn(x, conv)
    out.backward(grad)
    return out.detach(), x.grad, conv.weight.grad.clone(), conv.bias.grad.clone()


@needs_kernel
@pytest.mark.parametrize(
    ("n", "channels", "h", "w", "filters"), [(32, 32, 14, 14, 64), (3, 8, 6, 10, 16), (2, 16, 2, 2, 32), (5, 24, 8, 12, 48)]
)
def test_winograd_block_equals_pytorch_operators_to_float_rounding(n, channels, h, w, filters):
    """Output and all three gradients within a few float roundings of the exact (float64) ones, as PyTorch's own
    operators are; the output is channels-last, as is the weight gradient (the training loop's layout)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, filters, 3, padding="same").to(memory_format=torch.channels_last)
    x = torch.rand(n, channels, h, w).to(memory_format=torch.channels_last)
    grad = torch.randn(n, filters, h // 2, w // 2)
    ours = run(fused.winograd_conv_pool_relu, x, conv, grad)
    theirs = run(block, x, conv, grad)
    exact = torch.nn.Conv2d(channels, filters, 3, padding="same").double()
    exact.load_state_dict(conv.state_dict())
    truth = run(block, x.double(), exact, grad.double())
    assert ours[0].shape == (n, filters, h // 2, w // 2) and ours[0].is_contiguous(memory_format=torch.channels_last)
    assert ours[2].is_contiguous(memory_format=torch.channels_last)
    for name, a, b, t in zip(("output", "input gradient", "weight gradient", "bias gradient"), ours, theirs, truth):
        scale = t.abs().max().item()
        ours_off, theirs_off = (a.double() - t).abs().max().item(), (b.double() - t).abs().max().item()
        # Winograd's transforms round a little more than a direct convolution: within 8x PyTorch's error, or 1e-6
        # of the largest value (which one is larger depends on the shape)
        assert ours_off <= max(8 * theirs_off, 1e-6 * scale), (name, ours_off, theirs_off, scale)


@needs_kernel
def test_nan_propagates_as_in_pytorch():
    """A NaN pixel makes the same pooled outputs NaN as PyTorch's operators do (every window it reaches)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 32, 3, padding=1)
    x = torch.rand(2, 16, 8, 8).to(memory_format=torch.channels_last)
    x[0, 3, 3, 4] = float("nan")
    x[1, 0, 0, 7] = float("nan")  # by the border
    with torch.no_grad():
        out, ref = fused.winograd_conv_pool_relu(x, conv), block(x, conv)
    assert torch.equal(out.isnan(), ref.isnan()) and out.isnan().any()
    torch.testing.assert_close(out.nan_to_num(), ref.nan_to_num(), rtol=1e-5, atol=1e-5)


@needs_kernel
def test_gradients_are_the_same_bits_every_time():
    """Each thread sums its own images' filter gradient, then the threads' sums are added in order: a second
    backward pass over the same batch gives the same bits (resumed and repeated runs rely on it)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.rand(9, 32, 14, 14).to(memory_format=torch.channels_last)
    grad = torch.randn(9, 64, 7, 7)
    first, second = run(fused.winograd_conv_pool_relu, x, conv, grad), run(fused.winograd_conv_pool_relu, x, conv, grad)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@needs_kernel
def test_the_second_block_runs_winograd_in_fp32_training_and_evaluation_only(monkeypatch):
    calls = []
    real = fused.WinogradConvPoolReLU.apply
    monkeypatch.setattr(fused.WinogradConvPoolReLU, "apply", lambda *a: calls.append(1) or real(*a))
    model = build_model().to(memory_format=torch.channels_last)
    x = torch.rand(4, 1, 28, 28)
    model(x)
    assert not calls  # until use_kernels, PyTorch's operators
    use_kernels(model)
    model(x)
    with torch.no_grad():
        model.eval()(x)
    assert len(calls) == 2  # training and evaluation
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)  # bf16 autocast: PyTorch's bf16 convolution
    handle = model.conv2d_1.register_forward_hook(lambda *a: None)  # a hook must see the layer run
    model(x)
    handle.remove()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(model, x, check_trace=False)  # traced (export): the plain operators
    with disabled():
        model(x)
    assert len(calls) == 2
    assert fused.wide_block_fits(model.conv2d_1.conv, model.max_pooling2d_1)
    assert not fused.wide_block_fits(model.conv2d.conv, model.max_pooling2d)  # one input channel: the first kernel's


@needs_kernel
def test_a_model_gives_the_same_predictions_with_and_without_the_kernels():
    torch.manual_seed(0)
    model = build_model().eval()
    use_kernels(model)
    x = torch.rand(64, 1, 28, 28)
    with torch.no_grad():
        ours = model(x)
        with disabled():
            theirs = model(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
