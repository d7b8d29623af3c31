"""What fashion-cnn asks PyTorch beyond a plain call, in one module: the private names it keeps, looked up at first use
with a public fallback, and the public queries that replaced the others.

A PyTorch upgrade may rename or drop a private name; then the fallback runs, never an ``AttributeError``.
``disabled()`` forces the fallbacks, so the tests run both paths. Measured on PyTorch 2.13 (CPU), Intel Xeon
with AVX512-BF16 and AMX, 2 cores; the commands are in ``tests/test_torch_private.py``'s docstring.

Each private name, what it bought (measured) and what stands now:

``torch._fused_adam_``, ``torch._foreach_add_`` (``FusedAdam``, ``fit``'s default Adam) -- removed.
    Bought: no ``torch.optim.Optimizer``, whose construction imports ``torch._dynamo``: optimizer + first step
    0.028 s against 1.418 s for ``torch.optim.Adam(fused=True)`` (medians of 7 fresh processes, alternated;
    ``torch._dynamo`` alone 1.17 s in ``-X importtime``).
    Now: ``FusedAdam`` calls ``torch.optim.adam.adam(fused=True)``, the public function ``torch.optim.Adam.step``
    calls: the same kernels, the same bits, still no ``torch._dynamo`` (0.024 s against 1.224 s). Its Python
    costs ~40 µs a step (273 → 323 µs for the tutorial model's update, medians of 21), about 1 % of a 4.4 ms
    step (the README's 7,194 img/s at batch 32).
``torch._foreach_lerp_`` (the weights' EMA, ``ema_with_warmup``) -- removed.
    Bought: one kernel for all tensors instead of ``Tensor.lerp_`` per tensor (0 to 0.9 ms a step here, noisy).
    Now: ``torch.optim.swa_utils.get_ema_multi_avg_fn`` (public) at each step's decay: the same kernel inside,
    the same values.
``torch.ops.mkldnn._is_mkldnn_bf16_supported`` (``--precision auto``, the run's environment) -- removed.
    Bought: nothing (a query: 1 µs, the public one 0.2 ms once). It answers "can oneDNN run bf16 at all": yes
    on AVX-512 CPUs without BF16 and under ``ONEDNN_MAX_CPU_ISA=AVX512_CORE``, which emulate it.
    Now: ``native_bf16_cpu()`` below: the public ``torch.cpu.get_capabilities()`` (AVX512-BF16, AMX-BF16, Arm's
    BF16) and oneDNN's ceiling ``ONEDNN_MAX_CPU_ISA``; on this CPU the same answer uncapped and under AVX2.
``Module._forward_hooks``, ``_forward_pre_hooks`` and the global ones (``torch.nn.modules.module``) -- kept.
    Buys: the C kernels (``kernels/``) run at all, since PyTorch has no public "is a hook registered?".
    Fallback: ``forward_hooked`` answers "hooked" where they are gone or under ``disabled()``, and PyTorch's
    operators run.

``native_bf16_cpu`` uses no private name; it lives here because ``devices`` and ``environment`` both need it and
this module is the layer under both.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import torch

_forced = threading.local()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Every public fallback inside the ``with`` (this thread), as on a PyTorch without these names.

    Example:
        >>> layer = build_model().conv2d
        >>> forward_hooked(layer)
        False
        >>> with disabled():
        ...     forward_hooked(layer)
        True
    """
    before = getattr(_forced, "value", False)
    _forced.value = True
    try:
        yield
    finally:
        _forced.value = before


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


def onednn_max_isa() -> str | None:
    """The ceiling ``ONEDNN_MAX_CPU_ISA`` (or its old name ``DNNL_MAX_CPU_ISA``) sets on oneDNN's kernels, or None."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or None


#: oneDNN ceilings below ``AVX512_CORE_BF16``: under them it converts bf16 to fp32 instead (or refuses it).
_BELOW_NATIVE_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"})


def native_bf16_cpu() -> bool:
    """Whether oneDNN computes bf16 natively on this CPU: it is built in, the CPU has AVX512-BF16 or AMX-BF16
    (x86) or BF16 (Arm), and ``ONEDNN_MAX_CPU_ISA`` does not cap oneDNN below them.

    Example:
        >>> native_bf16_cpu() in (True, False)   # True here: a Xeon with AVX512-BF16 and AMX
        True
    """
    if not torch.backends.mkldnn.is_available():
        return False
    caps = torch.cpu.get_capabilities()
    if caps.get("avx512_bf16") or caps.get("amx_bf16"):
        return (onednn_max_isa() or "").upper() not in _BELOW_NATIVE_BF16
    return bool(caps.get("bf16"))  # Arm: oneDNN asks the CPU alone
