"""The optimizers a run may use: the tutorial's Adam, AdamW (decoupled weight decay), SGD with Nesterov momentum.

    fashion-cnn train --optimizer adamw --weight-decay 5e-4 --lr 3e-3 --schedule cosine
    fashion-cnn train --optimizer sgd --lr 0.1 --momentum 0.9 --weight-decay 5e-4 --schedule cosine

Adam keeps Keras' settings (beta2 0.999, epsilon 1e-7), and AdamW shares them. Weight decay applies to every
weight; with SGD it is the classic L2 term added to the gradient, with AdamW decoupled (Loshchilov & Hutter).
The tutorial's Adam at a constant rate is ``FusedAdam`` below: PyTorch's fused Adam through its public functional
API, without ``torch.optim.Optimizer``, whose construction imports ``torch._dynamo``: the optimizer and its first
step take 0.03 s instead of 1.2–1.4 s (medians of 7 fresh processes; ``fashion_cnn.torch_private`` has the figures).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.adam import adam as functional_adam

from ..errors import FashionCNNError

OPTIMIZERS = ("adam", "adamw", "sgd")


def check_optimizer(name: str, weight_decay: float = 0.0, momentum: float = 0.9) -> None:
    if name not in OPTIMIZERS:
        raise FashionCNNError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and 0 <= weight_decay < 1):
        raise FashionCNNError(f"--weight-decay must be a number from 0 to below 1 (5e-4 is usual), got {weight_decay!r}")
    if not (isinstance(momentum, (int, float)) and math.isfinite(momentum) and 0 <= momentum < 1):
        raise FashionCNNError(f"--momentum must be a number from 0 to below 1 (0.9 is usual), got {momentum!r}")
    if name == "adam" and weight_decay:
        raise FashionCNNError("Adam takes no --weight-decay here (it would be L2 tangled with the adaptive rates); use --optimizer adamw")


def make_optimizer(
    name: str,
    model: nn.Module,
    lr: float,
    *,
    epsilon: float = 1e-7,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    scheduled: bool = False,
) -> torch.optim.Optimizer | FusedAdam:
    """The optimizer ``name`` over ``model``'s parameters (the fused/foreach implementations: same arithmetic).

    ``scheduled``: a learning-rate schedule will drive it, so Adam is ``torch.optim.Adam`` (PyTorch's schedules
    take only ``torch.optim`` optimizers); otherwise the same arithmetic without ``torch.optim.Optimizer`` (``FusedAdam``).

    Example:
        >>> type(make_optimizer("sgd", build_model(), 0.1, weight_decay=5e-4)).__name__
        'SGD'
        >>> type(make_optimizer("adam", build_model(), 1e-3)).__module__
        'fashion_cnn.training.optimizers'
    """
    check_optimizer(name, weight_decay, momentum)
    params = model.parameters()
    if name == "adam":
        if not scheduled:
            return FusedAdam(params, lr=lr, eps=epsilon)
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=epsilon, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=epsilon, weight_decay=weight_decay, fused=True)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay, foreach=True)


class FusedAdam:
    """Adam exactly as ``torch.optim.Adam(params, lr, betas, eps, fused=True)`` computes it -- the function its
    ``step`` calls (``torch.optim.adam.adam``, PyTorch's functional Adam) on the same state, so the same bits --
    without ``torch.optim.Optimizer``, whose construction imports ``torch._dynamo`` (1.2–1.4 s of every run's start-up
    here). ``state_dict()`` is ``torch.optim.Adam``'s, so run files load into either. PyTorch's learning-rate
    schedules accept only ``torch.optim`` optimizers: a scheduled run uses ``torch.optim.Adam``
    (``make_optimizer(..., scheduled=True)``).

    Args:
        params: the parameters to train (all of one floating-point dtype per device).
        lr: the learning rate (Keras' 0.001).
        betas: the moments' decay rates (Keras' 0.9, 0.999).
        eps: added to the denominator (Keras' 1e-7; PyTorch's own default is 1e-8).

    Example:
        >>> import torch, torch.nn.functional as F
        >>> model = build_model()
        >>> opt = FusedAdam(model.parameters(), lr=1e-3)
        >>> F.cross_entropy(model(torch.rand(2, 1, 28, 28)), torch.tensor([0, 1])).backward()
        >>> opt.step()
        >>> state = opt.state_dict()
        >>> sorted(state["state"][0]), state["state"][0]["step"].item(), state["param_groups"][0]["eps"]
        (['exp_avg', 'exp_avg_sq', 'step'], 1.0, 1e-07)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-7):
        self.defaults = {**_ADAM_DEFAULTS, "lr": lr, "betas": betas, "eps": eps}
        self.param_groups = [{"params": list(params), **self.defaults}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = [self._state(p) for p in params]
            beta1, beta2 = group["betas"]
            functional_adam(  # counts the steps, then one fused kernel per device and dtype
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                [s["step"] for s in states],
                fused=True,
                has_complex=any(torch.is_complex(p) for p in params),
                amsgrad=False,
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=0.0,
                eps=group["eps"],
                maximize=False,
            )

    def _state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if p not in self.state:  # as torch.optim.Adam's first step: a float32 step count on the parameter's device
            zeros = torch.zeros_like(p, memory_format=torch.preserve_format)
            self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device), "exp_avg": zeros, "exp_avg_sq": zeros.clone()}
        return self.state[p]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.detach_().zero_()

    def state_dict(self) -> dict:
        """``torch.optim.Adam``'s layout: per-parameter state by index, and the groups' settings."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [
            {**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups
        ]
        return {"state": {index[id(p)]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take a ``state_dict()`` of this class or of ``torch.optim.Adam`` over the same parameters."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(len(s["params"]) != len(g["params"]) for s, g in zip(saved, self.param_groups)):
            raise ValueError("loaded state dict has a different number of parameter groups or parameters")
        params = {i: p for s, g in zip(saved, self.param_groups) for i, p in zip(s["params"], g["params"])}
        state = {}
        for i, values in state_dict["state"].items():
            p = params[i]
            state[p] = {
                k: v.to(device=p.device, dtype=torch.float32 if k == "step" else p.dtype, copy=True) if isinstance(v, torch.Tensor) else v
                for k, v in values.items()
            }
        for s, g in zip(saved, self.param_groups):
            g.update({k: tuple(v) if k == "betas" else v for k, v in s.items() if k != "params"})
        self.state = state


#: ``torch.optim.Adam(..., fused=True)``'s settings, as its ``state_dict()`` lists them.
_ADAM_DEFAULTS = {
    "weight_decay": 0,
    "amsgrad": False,
    "maximize": False,
    "foreach": None,
    "capturable": False,
    "differentiable": False,
    "fused": True,
    "decoupled_weight_decay": False,
}
