"""The kernels as autograd functions, and when each one computes a block exactly as PyTorch's operators would.

PyTorch runs the tutorial's first block as four operators: the convolution writes a 28×28×32 activation per
image (3.2 MB a batch of 32), max-pooling reads it back and writes int64 indices, and the backward pass
zero-fills a tensor of the same size to scatter the gradient into. On a CPU without native bf16 those memory
passes, not the arithmetic, are a third of the fp32 training step. ``csrc/conv_pool.c`` computes the four
convolution outputs under each pooling window in vector registers and keeps only their maximum and a one-byte
index; the backward pass needs no input gradient (the input is the image) and sums the weight gradient
directly. Same semantics as PyTorch's operators (first maximum wins, NaN wins, ReLU's gradient at 0 is 0); the
sums are in a different order, so the weight gradients agree to float rounding.

The second block (32 → 64 channels) is arithmetic: its convolution alone was 60 % of the fp32 step, at the
CPU's peak. ``csrc/winograd_conv_pool.c`` computes it by Winograd's F(2×2, 3×3), 2.25× fewer multiply-adds,
with the pooling window = one output tile, forward and backward (``WinogradConvPoolReLU``; fp32 only: under
bf16 autocast the block keeps PyTorch's bf16 convolution, which the fp32 kernel did not beat there). Results
to float rounding of PyTorch's, not bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import torch_private
from .build import load


def block_fits(conv: nn.Conv2d, pool: nn.MaxPool2d) -> bool:
    """Whether ``conv`` → ``pool`` (→ ReLU) is the block the kernel computes: a 3×3 'same' convolution of one
    input channel into a multiple of 8 channels, with a bias, then a 2×2 max-pool of stride 2."""
    return conv.in_channels == 1 and conv.out_channels % 8 == 0 and _conv3x3_same(conv) and _pool_fits(pool)


def wide_block_fits(conv: nn.Conv2d, pool: nn.MaxPool2d) -> bool:
    """Whether ``conv`` → ``pool`` (→ ReLU) is the block the Winograd kernel computes: a 3×3 'same' convolution
    of a multiple of 8 channels into a multiple of 16, with a bias, then a 2×2 max-pool of stride 2 (the
    tutorial's second block: 32 → 64)."""
    return conv.in_channels % 8 == 0 and conv.out_channels % 16 == 0 and _conv3x3_same(conv) and _pool_fits(pool)


def _conv3x3_same(conv: nn.Conv2d) -> bool:
    return (
        conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding in ("same", (1, 1))
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and conv.bias is not None
    )


def _pool_fits(pool: nn.MaxPool2d) -> bool:
    return (
        _pairs(pool.kernel_size) == (2, 2)
        and _pairs(pool.stride) == (2, 2)
        and _pairs(pool.padding) == (0, 0)
        and _pairs(pool.dilation) == (1, 1)
        and not pool.ceil_mode
    )


def _tracing() -> bool:
    return torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def applies(conv: nn.Conv2d, pool: nn.MaxPool2d, x: torch.Tensor, *around: nn.Module) -> bool:
    """Whether the kernel computes ``relu(pool(conv(x)))`` here: a block that fits, on float32 CPU tensors
    (also under bf16 autocast: the block is then computed in fp32, which costs less than PyTorch's bf16
    operators), no gradient wanted for ``x``, nothing hooked on either layer or on the modules ``around``
    them (a Keras-style wrapper), and not while PyTorch traces, scripts, compiles or exports the model
    (those see the plain operators)."""
    return (
        _even_cpu_images(x)
        and x.shape[1] == 1
        and not x.requires_grad
        and _float32_cpu(conv)
        and block_fits(conv, pool)
        and _kernels_run(conv, pool, *around)
    )


def _float32_cpu(conv: nn.Conv2d) -> bool:
    return conv.weight.dtype == torch.float32 and conv.weight.device.type == "cpu"


def _kernels_run(*modules: nn.Module) -> bool:
    """What every kernel needs besides its shapes: nothing hooked on ``modules`` (the hooks must see the layers
    run), and PyTorch not tracing, scripting, compiling or exporting (those see the plain operators)."""
    return not torch_private.forward_hooked(*modules) and not _tracing()


def _even_cpu_images(x: torch.Tensor) -> bool:
    """A float32 (N, C, H, W) CPU tensor with even sides: what both kernels take."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0


def _pairs(v) -> tuple:
    return (v, v) if isinstance(v, int) else tuple(v)


class ConvPoolReLU(torch.autograd.Function):
    """``relu(max_pool2d(conv2d(x, weight, bias, padding=1), 2))`` for (N, 1, H, W) float32 images; the
    result is (N, F, H/2, W/2) in channels-last memory. Gradients for ``weight`` and ``bias`` only."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        lib = load()[0]
        x = x.detach().contiguous()
        n, _, h, w = x.shape
        f = weight.shape[0]
        weights, biases = weight.detach().reshape(f, 9).contiguous(), bias.detach().contiguous()
        out = torch.empty((n, h // 2, w // 2, f))
        arg = torch.empty((n, h // 2, w // 2, f), dtype=torch.uint8)
        _check(lib.conv_pool_relu_forward(x.data_ptr(), n, h, w, weights.data_ptr(), biases.data_ptr(), f, out.data_ptr(), arg.data_ptr()))
        ctx.save_for_backward(x, out, arg)
        return out.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        lib = load()[0]
        x, out, arg = ctx.saved_tensors
        n, ho, wo, f = out.shape
        grad = grad.permute(0, 2, 3, 1).float().contiguous()
        grad_weight, grad_bias = torch.empty((f, 1, 3, 3)), torch.empty(f)
        _check(
            lib.conv_pool_relu_backward(
                x.data_ptr(),
                n,
                2 * ho,
                2 * wo,
                out.data_ptr(),
                arg.data_ptr(),
                grad.data_ptr(),
                f,
                grad_weight.data_ptr(),
                grad_bias.data_ptr(),
            )
        )
        return None, grad_weight, grad_bias


def _check(code: int) -> None:
    if code:
        raise RuntimeError("the fused conv/pool kernel refused its input" if code == 1 else "out of memory in the fused conv/pool kernel")


class PoolReLU(torch.autograd.Function):
    """``relu(max_pool2d(x, 2))`` for a float32 (N, C, H, W) tensor in channels-last memory, C a multiple of 8."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        lib = load()[0]
        n, c, h, w = x.shape
        nhwc = x.detach().permute(0, 2, 3, 1)  # the same memory, (N, H, W, C) contiguous
        out = torch.empty((n, h // 2, w // 2, c))
        arg = torch.empty((n, h // 2, w // 2, c), dtype=torch.uint8)
        _check(lib.pool_relu_forward(nhwc.data_ptr(), n, h, w, c, out.data_ptr(), arg.data_ptr()))
        ctx.save_for_backward(out, arg)
        return out.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        lib = load()[0]
        out, arg = ctx.saved_tensors
        n, ho, wo, c = out.shape
        grad = grad.permute(0, 2, 3, 1).float().contiguous()
        grad_in = torch.empty((n, 2 * ho, 2 * wo, c))  # every element is written: no zero-fill first
        _check(lib.pool_relu_backward(out.data_ptr(), arg.data_ptr(), grad.data_ptr(), n, 2 * ho, 2 * wo, c, grad_in.data_ptr()))
        return grad_in.permute(0, 3, 1, 2)


def pool_applies(pool: nn.MaxPool2d, x: torch.Tensor) -> bool:
    """Whether ``PoolReLU`` computes ``relu(pool(x))`` here: a 2×2 pool of stride 2 on a float32 CPU tensor in
    channels-last memory with a multiple of 8 channels and even sides, nothing hooked on the pool, not traced."""
    return (
        _even_cpu_images(x)
        and x.shape[1] % 8 == 0
        and x.is_contiguous(memory_format=torch.channels_last)
        and _pool_fits(pool)
        and _kernels_run(pool)
    )


def pool_relu(x: torch.Tensor) -> torch.Tensor:
    """``relu(max_pool2d(x, 2))`` through the kernel (call only where ``pool_applies(pool, x)``)."""
    return PoolReLU.apply(x)


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """The first block through the kernel (call only where ``applies(conv, pool, x)``)."""
    return ConvPoolReLU.apply(x, conv.weight, conv.bias)


def winograd_applies(conv: nn.Conv2d, pool: nn.MaxPool2d, x: torch.Tensor, *around: nn.Module) -> bool:
    """Whether the Winograd kernel computes ``relu(pool(conv(x)))`` here: a block that fits (``wide_block_fits``),
    float32 CPU tensors outside autocast (under bf16 autocast PyTorch's bf16 convolution was as fast),
    nothing hooked on the layers or the modules ``around`` them, not traced, scripted, compiled or exported."""
    return (
        _even_cpu_images(x)
        and x.shape[1] == conv.in_channels
        and _float32_cpu(conv)
        and not torch.is_autocast_enabled("cpu")
        and wide_block_fits(conv, pool)
        and _kernels_run(conv, pool, *around)
    )


def winograd_conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A later block through the Winograd kernel (call only where ``winograd_applies(conv, pool, x)``)."""
    return WinogradConvPoolReLU.apply(x, conv.weight, conv.bias)


class WinogradConvPoolReLU(torch.autograd.Function):
    """``relu(max_pool2d(conv2d(x, weight, bias, padding=1), 2))`` for float32 (N, C, H, W) ``x`` by Winograd's
    F(2×2, 3×3) (``kernels/winograd_conv_pool.c``); the result is (N, F, H/2, W/2) in channels-last memory.
    Gradients for ``x``, ``weight`` and ``bias``, to float rounding of PyTorch's (the sums are ordered
    differently); the weight gradient comes back channels-last, as the training loop keeps the weight."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        lib = load()[0]
        nhwc = x.detach().permute(0, 2, 3, 1).contiguous()  # no copy for channels-last x
        n, h, w, c = nhwc.shape
        f = weight.shape[0]
        taps = weight.detach().permute(0, 2, 3, 1).contiguous()  # (F, 3, 3, C): no copy for a channels-last weight
        out = torch.empty((n, h // 2, w // 2, f))
        arg = torch.empty((n, h // 2, w // 2, f), dtype=torch.uint8)
        biases = bias.detach().contiguous()
        _check(
            lib.winograd_conv_pool_relu_forward(
                nhwc.data_ptr(), n, h, w, c, taps.data_ptr(), biases.data_ptr(), f, out.data_ptr(), arg.data_ptr()
            )
        )
        ctx.save_for_backward(nhwc, taps, out, arg)
        return out.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        lib = load()[0]
        nhwc, taps, out, arg = ctx.saved_tensors
        n, h, w, c = nhwc.shape
        f = taps.shape[0]
        grad = grad.permute(0, 2, 3, 1).float().contiguous()
        grad_x, grad_weight, grad_bias = torch.empty((n, h, w, c)), torch.empty((f, 3, 3, c)), torch.empty(f)
        _check(
            lib.winograd_conv_pool_relu_backward(
                nhwc.data_ptr(),
                n,
                h,
                w,
                c,
                taps.data_ptr(),
                f,
                out.data_ptr(),
                arg.data_ptr(),
                grad.data_ptr(),
                grad_x.data_ptr(),
                grad_weight.data_ptr(),
                grad_bias.data_ptr(),
            )
        )
        return grad_x.permute(0, 3, 1, 2), grad_weight.permute(0, 3, 1, 2), grad_bias
