"""training/optimizers.FusedAdam: torch.optim.Adam(fused=True)'s arithmetic and files, without torch.optim's start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from fashion_cnn import build_model
from fashion_cnn.training.optimizers import FusedAdam, make_optimizer


def trained(make, steps: int, resume_from=None, switch_to=None) -> tuple[list[torch.Tensor], dict]:
    """The tutorial's CNN (channels-last, as fit trains it) after ``steps`` Adam steps on fixed random batches;
    with ``switch_to``, the optimizer's state_dict moves into a new optimizer of that kind half-way."""
    torch.manual_seed(0)
    model = build_model().to(memory_format=torch.channels_last)
    opt = make(model)
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        if switch_to is not None and step == steps // 2:
            state = opt.state_dict()
            opt = switch_to(model)
            opt.load_state_dict(state)
        x, y = torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
        torch.manual_seed(100 + step)  # the same dropout masks
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()], opt.state_dict()


def ours(model):
    return FusedAdam(model.parameters(), lr=1e-3, eps=1e-7)


def theirs(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7, fused=True)


def test_adam_gives_torch_fused_adams_bits():
    (a, state_a), (b, state_b) = trained(ours, 12), trained(theirs, 12)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert state_a["param_groups"] == state_b["param_groups"]
    assert state_a["state"].keys() == state_b["state"].keys()
    for i in state_a["state"]:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            x, y = state_a["state"][i][key], state_b["state"][i][key]
            assert torch.equal(x, y) and x.dtype == y.dtype and x.stride() == y.stride(), (i, key)


@pytest.mark.parametrize(("first", "then"), [(ours, theirs), (theirs, ours), (ours, ours)])
def test_state_moves_between_adam_and_torch_adam_and_training_goes_on_identically(first, then):
    """A run file written with one loads into the other (resume, or a scheduled run's files): same bits after."""
    straight, _ = trained(theirs, 10)
    switched, _ = trained(first, 10, switch_to=then)
    assert all(torch.equal(x, y) for x, y in zip(straight, switched))


def test_a_state_dict_for_other_parameters_is_refused():
    opt = FusedAdam(build_model().parameters())
    other = torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="different number of parameter"):
        opt.load_state_dict(other.state_dict())


def test_a_scheduled_run_gets_torch_adam_and_a_constant_one_ours():
    assert type(make_optimizer("adam", build_model(), 1e-3)) is FusedAdam
    assert type(make_optimizer("adam", build_model(), 1e-3, scheduled=True)) is torch.optim.Adam


def test_training_from_the_command_line_never_imports_torch_dynamo(toy_dir, tmp_path):
    """torch.optim's first optimizer imports torch._dynamo (~1 s); the default run has none."""
    code = (
        "import sys; from fashion_cnn.cli import main; "
        f"rc = main(['train', '--data-dir', {str(toy_dir)!r}, '--runs-dir', {str(tmp_path)!r}, '--epochs', '2', '--quiet']); "
        "print(rc, 'torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout
