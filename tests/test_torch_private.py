"""fashion_cnn.torch_private: each private PyTorch name against its public fallback (``disabled()``): the same numbers."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fashion_cnn import build_model, fit, torch_private, use_kernels
from fashion_cnn.devices import has_native_bf16
from fashion_cnn.training.loop import ema_with_warmup
from fashion_cnn.training.optimizers import FusedAdam, make_optimizer


def _steps(optimizer_of, steps: int = 5) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = build_model()
    opt = optimizer_of(model)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g)
    for step in range(steps):
        torch.manual_seed(step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def test_the_default_adam_falls_back_to_torch_optim_with_the_same_bits():
    assert isinstance(make_optimizer("adam", build_model(), 1e-3), FusedAdam)  # this PyTorch has the private kernel
    with torch_private.disabled():
        assert not torch_private.has_fused_adam()
        assert type(make_optimizer("adam", build_model(), 1e-3)) is torch.optim.Adam
        fallback = _steps(lambda m: make_optimizer("adam", m, 1e-3))
    fast = _steps(lambda m: make_optimizer("adam", m, 1e-3))
    assert all(torch.equal(a, b) for a, b in zip(fast, fallback))


def test_fit_trains_the_same_bits_on_the_fallbacks(toy_data):
    import fashion_cnn as fc

    train_set, val_set = fc.train_val_split(fc.load_dataset("fashion-mnist", toy_data).train)

    def history():
        torch.manual_seed(0)
        return fit(build_model(), train_set.subset(slice(0, 96)), val_set, epochs=1, seed=0, verbose=False, ema=0.9).epochs

    fast = history()
    with torch_private.disabled():
        fallback = history()
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in fast] == [
        {k: v for k, v in e.items() if k != "seconds"} for e in fallback
    ]


def test_the_ema_update_falls_back_to_lerp_per_tensor():
    torch.manual_seed(0)
    current = [torch.randn(5, 3), torch.randn(7)]
    fast = [torch.randn(5, 3), torch.randn(7)]
    slow = [t.clone() for t in fast]
    ema_with_warmup(0.999)(fast, current, torch.tensor(3))
    with torch_private.disabled():
        ema_with_warmup(0.999)(slow, current, torch.tensor(3))
    assert all(torch.equal(a, b) for a, b in zip(fast, slow))


def test_the_bf16_query_falls_back_to_the_cpus_flags():
    private = torch_private.mkldnn_bf16_supported()
    assert private is not None  # this PyTorch has the query
    assert torch_private.cpu_has_bf16_flags() == private  # the fallback agrees with oneDNN here
    with torch_private.disabled():
        assert torch_private.mkldnn_bf16_supported() is None
        assert has_native_bf16(torch.device("cpu")) == (torch.backends.mkldnn.is_available() and private)


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
