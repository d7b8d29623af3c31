"""Swap the kernels into a model, and run each conv → pool → ReLU block through the one that computes it.

    model = use_kernels(build_model())   # on the CPU the tutorial's blocks now run through csrc/
    remove_kernels(model)                # PyTorch's operators again

A model runs PyTorch's operators until ``use_kernels`` is called on it: the library is built (or loaded from the
cache) there, once per process, never inside ``forward``. The swap sets one attribute on each of the model's
``KerasSequential`` parts; its parameters, ``state_dict`` and model files stay as they are. A block still runs
PyTorch's operators where no kernel computes it the same way: not a float32 CPU tensor, a layer with a forward
hook, PyTorch tracing, scripting or exporting the model, or inside ``disabled()``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import torch
from torch import nn

from ..errors import FashionCNNError
from ..models.layers import Conv2D, KerasSequential, MaxPooling2D, conv_relu_pool_blocks
from . import ops
from .build import KernelBuildError, load

#: ``--kernels``: ``auto`` builds them and falls back to PyTorch's operators (saying why) where they do not
#: build; ``on`` refuses to run without them; ``off`` never builds them.
MODES = ("auto", "on", "off")
#: The default of ``--kernels`` where it is not given.
MODE_ENV = "FASHION_CNN_KERNELS"


def resolve_mode(mode: str | None = None) -> str:
    """``mode``, else ``$FASHION_CNN_KERNELS``, else ``auto``; anything else is refused."""
    chosen = mode if mode is not None else (os.environ.get(MODE_ENV) or "auto").strip().lower()
    if chosen not in MODES:
        where = f"${MODE_ENV}" if mode is None else "--kernels"
        raise FashionCNNError(f"{where} must be one of {', '.join(MODES)}, got {chosen!r}")
    return chosen


def check_mode(mode: str | None) -> None:
    resolve_mode(mode)


def use_kernels(model: nn.Module, mode: str | None = None) -> str:
    """Run ``model``'s conv → pool → ReLU blocks through the CPU kernels where they apply; returns how they run.

    Args:
        model: any model; only its ``KerasSequential`` parts (the tutorial's CNN and Keras imports) change.
        mode: ``auto`` (default, or ``$FASHION_CNN_KERNELS``): build them, else PyTorch's operators and why;
            ``on``: raise ``KernelBuildError`` where they do not build; ``off``: PyTorch's operators.

    Returns:
        ``fused kernel (AVX-512, OpenMP)`` (the vector width and threading built), or ``PyTorch operators (...)``
        with the reason.

    Example:
        >>> model = build_model()
        >>> use_kernels(model).startswith(("fused kernel", "PyTorch operators"))
        True
        >>> use_kernels(model, "off")
        'PyTorch operators (--kernels off)'
    """
    mode = resolve_mode(mode)
    if mode == "off":
        remove_kernels(model)
        return "PyTorch operators (--kernels off)"
    try:
        status = load()[1]
    except KernelBuildError as e:
        if mode == "on":
            raise
        remove_kernels(model)
        return f"PyTorch operators ({e})"
    for seq in _sequences(model):
        seq.kernels = BACKEND
    return status


def remove_kernels(model: nn.Module) -> nn.Module:
    """PyTorch's operators for every block of ``model`` again; returns the model."""
    for seq in _sequences(model):
        seq.kernels = None
    return model


def uses_kernels(model: nn.Module) -> bool:
    """Whether ``use_kernels`` swapped the kernels into ``model``."""
    return any(seq.kernels is not None for seq in _sequences(model))


def first_block_runs(model: nn.Module, status: str) -> str | None:
    """``status`` (``use_kernels``' answer) where ``model`` has a block of the first kernel's kind (one input
    channel), else None: what ``fashion-cnn train``'s first line and config.json say of the first block."""
    return status if any(_fits(conv, pool) for _, conv, pool in conv_relu_pool_blocks(model)) else None


def winograd_blocks(model: nn.Module) -> list[int]:
    """The positions (1 = the first) of ``model``'s conv → pool → ReLU blocks that the Winograd kernel computes
    in fp32 on the CPU once the kernels are in: ``[2]`` for the tutorial's CNN."""
    if not uses_kernels(model):
        return []
    return [i for i, conv, pool in conv_relu_pool_blocks(model) if _fits(conv, pool, ops.wide_block_fits)]


_switched_off = threading.local()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """PyTorch's operators for every block inside the ``with`` (this thread only), e.g. to compare the two.

    Example:
        >>> model = build_model(); _ = use_kernels(model)
        >>> x = torch.rand(2, 1, 28, 28)
        >>> with torch.no_grad(), disabled():
        ...     plain = model.eval()(x)
        >>> with torch.no_grad():
        ...     bool((model(x) - plain).abs().max() < 1e-4)
        True
    """
    before = getattr(_switched_off, "value", False)
    _switched_off.value = True
    try:
        yield
    finally:
        _switched_off.value = before


class CPUKernels:
    """What ``KerasSequential`` calls for a conv → pool → ReLU block once ``use_kernels`` has swapped it in:
    the first block's kernel, else the Winograd kernel, else PyTorch's convolution and the pooling kernel, each
    only where it computes what PyTorch's operators would (``ops.applies`` and its siblings)."""

    def __call__(self, layer: Conv2D, pool: MaxPooling2D, x: torch.Tensor) -> torch.Tensor:
        if getattr(_switched_off, "value", False):
            return torch.relu(pool(layer(x, activate=False)))
        if _fits(layer, pool) and ops.applies(layer.conv, pool, x, layer):
            return ops.conv_pool_relu(x, layer.conv)
        if _fits(layer, pool, ops.wide_block_fits) and ops.winograd_applies(layer.conv, pool, x, layer):
            return ops.winograd_conv_pool_relu(x, layer.conv)
        x = layer(x, activate=False)
        return ops.pool_relu(x) if not pool.same and ops.pool_applies(pool, x) else torch.relu(pool(x))


BACKEND = CPUKernels()


def _fits(conv: Conv2D, pool: MaxPooling2D, fits=ops.block_fits) -> bool:
    return conv.same is None and not pool.same and fits(conv.conv, pool)


def _sequences(model: nn.Module) -> list[KerasSequential]:
    return [m for m in model.modules() if isinstance(m, KerasSequential)]
