"""fashion-cnn lr-find (issue 28): the learning-rate range test on toy data, its suggestion, the model left as it
was, and the picture read back from the figure."""

import json

import numpy as np
import pytest
import torch

from conftest import one_line_error
from fashion_cnn import build_model, load_dataset, train_val_split
from fashion_cnn.cli import main
from fashion_cnn.data.transforms import to_model_input
from fashion_cnn.inspection.plots import plot_lr_find
from fashion_cnn.training.class_weights import resolve_class_weights
from fashion_cnn.training.loop import BatchPlan
from fashion_cnn.training.loss import training_loss
from fashion_cnn.training.lr_find import lr_range_test, read_range_test, window_for

STEPS = 60


@pytest.fixture(scope="module")
def toy_train(tmp_path_factory):
    from conftest import write_dataset

    data = load_dataset("fashion-mnist", write_dataset(tmp_path_factory.mktemp("lr") / "toy"))
    return train_val_split(data.train)[0]


@pytest.fixture(scope="module")
def tested(toy_train):
    """One range test of a fresh tutorial CNN on the toy data, with the model's state before and after."""
    torch.manual_seed(0)
    model = build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    result = lr_range_test(model, toy_train, start_lr=1e-6, end_lr=10.0, steps=STEPS, batch_size=16, seed=3)
    return result, model, before, rng


def test_the_learning_rate_grows_exponentially_from_start_to_end(tested):
    result = tested[0]
    n = len(result.lrs)
    assert 3 <= n <= STEPS and len(result.losses) == len(result.smoothed) == n
    assert result.lrs[0] == pytest.approx(1e-6)
    ratio = (10.0 / 1e-6) ** (1 / (STEPS - 1))  # the same factor every step: the end is reached at the last one
    np.testing.assert_allclose(result.lrs[1:] / result.lrs[:-1], ratio, rtol=1e-9)


def test_the_loss_falls_then_diverges_and_the_suggestion_lies_between(tested):
    result = tested[0]
    # On this easy toy set the loss falls from chance (log 10) and blows up at large rates, long before 10.
    assert result.losses[0] == pytest.approx(np.log(10), abs=0.15)
    assert result.diverged and len(result.lrs) < STEPS
    lowest = int(np.nanargmin(result.smoothed[:-1]))
    assert result.smoothed[lowest] < 0.6 * result.smoothed[0]
    assert result.method == "steepest descent"
    assert result.start_lr <= result.suggestion < result.lrs[lowest] < result.lrs[-1]  # inside the range, below the divergence
    assert result.suggestion == result.lrs[result.suggestion_index]
    assert result.min_over_10 == pytest.approx(result.lrs[lowest] / 10)


def test_the_smoothed_curve_is_the_centred_moving_mean(tested):
    result = tested[0]
    finite = result.losses[np.isfinite(result.losses)]
    w = window_for(STEPS)
    padded = np.convolve(finite, np.ones(w), "same") / np.convolve(np.ones(len(finite)), np.ones(w), "same")  # NumPy's own sums
    np.testing.assert_allclose(result.smoothed[: len(finite)], padded, rtol=1e-12)


def test_the_model_is_left_as_it_was(tested):
    _, model, before, rng = tested
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_suggestion_is_where_a_known_curve_falls_fastest():
    """A curve made by hand: a logistic fall centred on 1e-3 (its steepest point against log lr), then a rise."""
    steps = 200
    lrs = 1e-7 * (1e8) ** (np.arange(steps) / (steps - 1))
    x = np.log(lrs)
    losses = 2.3 - 2.0 / (1 + np.exp(-(x - np.log(1e-3)) / 0.5)) + np.where(lrs > 0.1, 3 * np.log(lrs / 0.1), 0)
    result = read_range_test(lrs, losses, False, 1e-7, 10.0, steps)
    step = (1e8) ** (1 / (steps - 1))
    assert 1e-3 / step**2 <= result.suggestion <= 1e-3 * step**2
    flat = read_range_test(lrs, np.linspace(2.3, 3.0, steps), False, 1e-7, 10.0, steps)  # the loss never falls
    assert flat.method == "lowest loss" and flat.suggestion == lrs[0]


def test_a_loss_that_diverges_at_once_is_one_clear_error():
    from fashion_cnn import FashionCNNError

    with pytest.raises(FashionCNNError, match="diverged after 2 steps.*lower --start-lr"):
        read_range_test(np.array([1.0, 10.0]), np.array([2.3, np.inf]), True, 1.0, 10.0, 100)


def test_the_range_test_trains_on_the_runs_weighted_loss(toy_train):
    """Its first loss is the class-weighted loss of its first batch before any step (the same seed draws the same
    batch and dropout)."""
    weights = resolve_class_weights("balanced", toy_train.labels, toy_train.classes)
    torch.manual_seed(0)
    model = build_model()
    result = lr_range_test(model, toy_train, steps=10, batch_size=16, seed=5, class_weight=weights)
    order = BatchPlan(toy_train, 16, 0, 1, torch.device("cpu")).order(torch.Generator().manual_seed(5))
    x, y = to_model_input(torch.from_numpy(toy_train.images[order[:16].numpy()])), torch.from_numpy(toy_train.labels[order[:16].numpy()])
    torch.manual_seed(5)
    model.train()
    with torch.no_grad():
        want = training_loss(model(x), y, weight=torch.tensor(weights, dtype=torch.float32))
    assert result.losses[0] == pytest.approx(float(want), rel=1e-5)


def test_the_picture_draws_loss_against_learning_rate_with_the_suggestion(tested, tmp_path):
    result = tested[0]
    fig = plot_lr_find(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["batch loss"].get_xdata(), result.lrs)
    np.testing.assert_array_equal(lines["batch loss"].get_ydata(), result.losses)
    np.testing.assert_array_equal(lines["smoothed loss"].get_ydata(), result.smoothed)
    marker = lines[f"suggested {result.suggestion:.1e} (steepest descent)"]
    assert list(marker.get_xdata()) == [result.suggestion]
    assert list(marker.get_ydata()) == [result.smoothed[result.suggestion_index]]
    verticals = [line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]
    assert result.suggestion in verticals and result.lrs[-1] in verticals  # the suggestion and the divergence
    assert f"diverged at {result.lrs[-1]:.1e}" in lines
    low, high = ax.get_ylim()
    assert low < np.nanmin(result.smoothed) and high > result.smoothed[0]  # the whole fall is in view
    assert f"suggested {result.suggestion:.1e}" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["batch loss", "smoothed loss"]


def test_cli_prints_the_suggestion_and_writes_the_picture(toy_dir, tmp_path, capsys):
    out = tmp_path / "lr.png"
    argv = ["lr-find", "--data-dir", str(toy_dir), "--batch-size", "16", "--steps", "30", "--seed", "1", "-o", str(out)]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == [str(out)] and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report["lrs"]) == len(report["losses"]) <= 30 and report["method"] == "steepest descent"
    assert report["start_lr"] <= report["suggestion"] < max(report["lrs"])
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"Suggested learning rate: {report['suggestion']:.1e} (steepest descent of the smoothed loss" in text
    assert f"fashion-cnn train --lr {report['suggestion']:.1e}" in text  # the same seed, the same suggestion


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steps", "3"], "--steps must be a whole number from 10"),
        (["--start-lr", "1", "--end-lr", "0.1"], "--start-lr and --end-lr must satisfy"),
        (["-o", "lr.bmp"], "cannot tell the image format of lr.bmp"),
        (["--class-weight", "nowhere.json"], "--class-weight nowhere.json does not exist"),
        (["--batch-size", "0"], "batch size must be a whole number of at least 1"),
    ],
)
def test_cli_bad_input_is_one_line(extra, message, toy_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["lr-find", "--data-dir", str(toy_dir), *extra])
    one_line_error(capsys, code, message)
    assert not (tmp_path / "lr-find.png").exists()
