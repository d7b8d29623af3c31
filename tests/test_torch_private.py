"""fashion_cnn.torch_private: the private PyTorch names, each against its public replacement or fallback.

The start-up figures in its table come from fresh processes, alternated, 7 of each (medians):

    for i in 1 2 3 4 5 6 7; do for opt in ours torch; do python -c "import sys, time
    import torch, torch.nn.functional as F; from fashion_cnn import build_model
    from fashion_cnn.training.optimizers import FusedAdam; m = build_model(); t1 = time.perf_counter()
    o = FusedAdam(m.parameters(), eps=1e-7) if sys.argv[1] == 'ours' else torch.optim.Adam(m.parameters(), eps=1e-7, fused=True)
    F.cross_entropy(m(torch.rand(32, 1, 28, 28)), torch.randint(0, 10, (32,))).backward(); o.step()
    print(sys.argv[1], time.perf_counter() - t1, 'torch._dynamo' in sys.modules)" $opt; done; done

and ``python -X importtime -c "import torch; torch.optim.Adam(torch.nn.Linear(2, 2).parameters())"`` for
``torch._dynamo``'s own share.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fashion_cnn
from fashion_cnn import build_model, fit, torch_private, use_kernels
from fashion_cnn.devices import has_native_bf16
from fashion_cnn.training.loop import adam, ema_with_warmup

#: Private torch names outside torch_private.py, each waiting to move there: {file under src/fashion_cnn: names}.
NOT_YET_MOVED = {"export/onnx.py": {"torch.onnx._constants", "torch.onnx._constants.ONNX_MAX_OPSET"}}


def _private_torch_names(source: str) -> set[str]:
    """The dotted torch names in ``source`` with a component that starts with ``_`` (dunders aside)."""

    def dotted(node) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None

    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            names.add(dotted(node) or "")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {
        n
        for n in names
        if n.split(".")[0] in ("torch", "F", "nn") and any(p.startswith("_") and not p.endswith("__") for p in n.split(".")[1:])
    }


def test_no_module_but_torch_private_calls_a_private_torch_name():
    package = Path(fashion_cnn.__file__).parent
    found = {
        str(path.relative_to(package)): names
        for path in package.rglob("*.py")
        if path.name != "torch_private.py" and (names := _private_torch_names(path.read_text(encoding="utf-8")))
    }
    assert found == NOT_YET_MOVED


def test_fit_by_default_trains_the_bits_of_torch_optim_adam_ema_included(toy_data):
    """The default optimizer (``FusedAdam``: PyTorch's functional Adam) against ``torch.optim.Adam(fused=True)``,
    and the EMA (``get_ema_multi_avg_fn`` at each step's decay) in both: the same history, number for number."""
    import fashion_cnn as fc

    train_set, val_set = fc.train_val_split(fc.load_dataset("fashion-mnist", toy_data).train)

    def history(optimizer_of):
        torch.manual_seed(0)
        model = build_model()
        kw = {"optimizer": optimizer_of(model)} if optimizer_of else {}
        return fit(model, train_set.subset(slice(0, 96)), val_set, epochs=1, seed=0, verbose=False, ema=0.9, **kw).epochs

    ours, public = history(None), history(adam)
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in ours] == [
        {k: v for k, v in e.items() if k != "seconds"} for e in public
    ]


def test_the_ema_update_is_lerp_per_tensor_and_the_private_foreach_kernel():
    torch.manual_seed(0)
    current = [torch.randn(5, 3), torch.randn(7)]
    start = [torch.randn(5, 3), torch.randn(7)]
    ours = [t.clone() for t in start]
    ema_with_warmup(0.999)(ours, current, torch.tensor(3))
    d = min(0.999, 4 / 13)
    by_tensor = [a.clone().lerp_(c, 1 - d) for a, c in zip(start, current)]
    assert all(torch.equal(a, b) for a, b in zip(ours, by_tensor))
    if hasattr(torch, "_foreach_lerp_"):  # what the update called before (torch_private's table)
        fused = [t.clone() for t in start]
        torch._foreach_lerp_(fused, current, 1 - d)
        assert all(torch.equal(a, b) for a, b in zip(ours, fused))


def _onednn_says_bf16() -> bool:
    query = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    if query is None:
        pytest.skip("this PyTorch has no torch.ops.mkldnn._is_mkldnn_bf16_supported to compare with")
    return bool(query())


def _native_cpu() -> bool:
    caps = torch.cpu.get_capabilities()
    uncapped = not torch_private.onednn_max_isa()
    return bool(uncapped and torch.backends.mkldnn.is_available() and (caps.get("avx512_bf16") or caps.get("amx_bf16")))


def test_native_bf16_here_is_onednns_private_answer():
    if not _native_cpu():
        pytest.skip("a CPU without AVX512-BF16/AMX, or oneDNN capped: oneDNN's answer may mean 'emulated' there")
    assert torch_private.native_bf16_cpu() is True and _onednn_says_bf16() is True
    assert has_native_bf16(torch.device("cpu")) is True


@pytest.mark.parametrize(
    ("cap", "native", "onednn"), [("AVX2", False, False), ("avx512_core", False, True), ("AVX512_CORE_BF16", True, True)]
)
def test_a_onednn_cap_below_bf16_means_no_native_bf16(cap, native, onednn):
    """``ONEDNN_MAX_CPU_ISA`` (case as oneDNN takes it): under AVX2 neither answer is bf16; at AVX512_CORE oneDNN's
    private query still says yes (it emulates bf16 there), ours says no, as ``--precision auto`` means."""
    if not _native_cpu():
        pytest.skip("needs a CPU with AVX512-BF16 or AMX and oneDNN not capped")
    _onednn_says_bf16()
    code = "import torch; from fashion_cnn.torch_private import native_bf16_cpu; print(native_bf16_cpu(), torch.ops.mkldnn._is_mkldnn_bf16_supported())"
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": cap}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out == [str(native), str(onednn)]


@pytest.mark.parametrize(
    ("caps", "mkldnn", "native"),
    [
        ({"architecture": "x86_64", "avx512_f": True, "avx512_bf16": False, "amx_bf16": False}, True, False),  # AVX-512 only
        ({"architecture": "x86_64", "avx512_bf16": False, "amx_bf16": True}, True, True),
        ({"architecture": "aarch64", "bf16": True}, True, True),
        ({"architecture": "aarch64", "bf16": False}, True, False),
        ({"architecture": "x86_64", "avx512_bf16": True}, False, False),  # a PyTorch built without oneDNN
    ],
)
def test_native_bf16_reads_the_cpus_capabilities(monkeypatch, caps, mkldnn, native):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: mkldnn)
    assert torch_private.native_bf16_cpu() is native
    assert has_native_bf16(torch.device("cpu")) is native


def test_without_the_hook_query_the_kernels_step_aside(monkeypatch):
    from fashion_cnn.kernels import ops

    model = build_model().eval()
    use_kernels(model)
    calls = []
    real = ops.ConvPoolReLU.apply
    monkeypatch.setattr(ops.ConvPoolReLU, "apply", lambda *a: calls.append(1) or real(*a))
    assert not torch_private.forward_hooked(model.conv2d)
    with torch.no_grad():
        model(torch.rand(2, 1, 28, 28))
        with torch_private.disabled():
            assert torch_private.forward_hooked(model.conv2d)  # "hooked": PyTorch's operators run, never a missed hook
            model(torch.rand(2, 1, 28, 28))
    assert len(calls) == 1
