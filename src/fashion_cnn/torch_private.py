"""Every private PyTorch name fashion-cnn calls, in one module: looked up at first use, each with a public fallback.

A PyTorch upgrade may rename or drop any of these; then the fallback runs (the same numbers; at worst slower),
never an ``AttributeError``. ``disabled()`` forces every fallback, so the tests run both paths.

===============================================  ==========================  =============================================  =========================================
private name                                     used by                     what it buys (measured)                        public fallback
===============================================  ==========================  =============================================  =========================================
``torch._fused_adam_``, ``torch._foreach_add_``  ``FusedAdam``, the default  no ``torch.optim`` machinery, whose first      ``torch.optim.Adam(fused=True)``: the
                                                 optimizer of ``fit``        step imports ``torch._dynamo``: 1.0–1.25 s of  same kernel, the same bits
                                                                             every run's start-up (``python -X importtime``)
``torch._foreach_lerp_``                         the weights' EMA            one kernel for every tensor of the model       ``Tensor.lerp_`` per tensor (same values)
``torch.ops.mkldnn._is_mkldnn_bf16_supported``   ``--precision auto``        oneDNN's own answer                            the CPU's flags (``avx512_bf16``,
                                                                                                                            ``amx_bf16`` in ``/proc/cpuinfo``)
``Module._forward_hooks`` (and pre-, global)     the kernels skip a hooked   hooks see every layer run                      "hooked": PyTorch's operators run
                                                 layer
===============================================  ==========================  =============================================  =========================================
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_forced = threading.local()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Every public fallback inside the ``with`` (this thread), as on a PyTorch without these names.

    Example:
        >>> with disabled():
        ...     has_fused_adam()
        False
    """
    before = getattr(_forced, "value", False)
    _forced.value = True
    try:
        yield
    finally:
        _forced.value = before


def _private(owner, name: str):
    """``owner.name`` where it exists and the fallbacks are not forced, else None."""
    return None if getattr(_forced, "value", False) else getattr(owner, name, None)


def has_fused_adam() -> bool:
    """Whether ``fused_adam_`` can run PyTorch's fused Adam kernel directly (``FusedAdam``)."""
    return _private(torch, "_fused_adam_") is not None and _private(torch, "_foreach_add_") is not None


def fused_adam_(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float, beta1: float, beta2: float, eps: float) -> None:
    """One Adam update of ``params`` by PyTorch's fused kernel, the steps counted first (as ``torch.optim.Adam``
    with ``fused=True`` does). Only where ``has_fused_adam()``."""
    torch._foreach_add_(steps, 1)
    torch._fused_adam_(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        [],
        steps,
        amsgrad=False,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        weight_decay=0.0,
        eps=eps,
        maximize=False,
    )


def foreach_lerp_(tensors: list[torch.Tensor], ends: list[torch.Tensor], weight: float) -> None:
    """``t.lerp_(end, weight)`` for every pair: one fused kernel where PyTorch has it, else tensor by tensor."""
    fused = _private(torch, "_foreach_lerp_")
    if fused is not None:
        fused(tensors, ends, weight)
        return
    for t, end in zip(tensors, ends):
        t.lerp_(end, weight)


def mkldnn_bf16_supported() -> bool | None:
    """oneDNN's own answer to "does this CPU compute bf16 natively?", or None where PyTorch has no such query."""
    query = _private(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported")
    return None if query is None else bool(query())


def cpu_has_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """The public fallback: the CPU announces AVX512-BF16 or AMX-BF16 (Linux; elsewhere False)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def forward_hooked(*modules: torch.nn.Module) -> bool:
    """Whether a forward hook would miss a layer that a kernel computes: one on any of ``modules``, or a global one
    (``register_module_forward_hook``). PyTorch has no public query for either; where these attributes are gone
    (another PyTorch), or the fallbacks are forced, the answer is "hooked", and PyTorch's operators run."""
    from torch.nn.modules import module as m

    if getattr(_forced, "value", False):
        return True
    lists = [getattr(m, "_global_forward_hooks", None), getattr(m, "_global_forward_pre_hooks", None)]
    for mod in modules:
        lists += [getattr(mod, "_forward_hooks", None), getattr(mod, "_forward_pre_hooks", None)]
    return any(hooks is None or len(hooks) > 0 for hooks in lists)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively: oneDNN's answer, else the CPU's flags."""
    answer = mkldnn_bf16_supported()
    return cpu_has_bf16_flags() if answer is None else answer
