"""Imbalanced data (issue 28): --class-weight balanced|FILE changes the loss as PyTorch defines it, --balanced-sampling
draws the classes evenly, both are recorded in the run and resumed identically, and a bad weights file is one line."""

import json

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import WeightedRandomSampler

from conftest import one_line_error
from fashion_cnn import EarlyStopping, FashionCNNError, LabeledImages, ModelCheckpoint, build_model, fit, load_dataset, train_val_split
from fashion_cnn.cli import main
from fashion_cnn.data.registry import FASHION_MNIST
from fashion_cnn.data.sampling import balanced_order, balanced_sample_weights, class_counts
from fashion_cnn.data.transforms import to_model_input
from fashion_cnn.training.checkpoint import ResumeState
from fashion_cnn.training.class_weights import resolve_class_weights
from fashion_cnn.training.loop import BatchPlan
from fashion_cnn.training.loss import training_loss

CLASSES = FASHION_MNIST.classes


def hand_nll(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[label], row by row, in float64 NumPy (no PyTorch)."""
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels], -log_p


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (12, 4))
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 0])
    weights = np.array([0.5, 2.0, 3.0, 1.25])
    return logits, labels, weights


def test_weighted_loss_is_the_hand_computed_weighted_mean(batch):
    logits, labels, w = batch
    nll, _ = hand_nll(logits, labels)
    want = (w[labels] * nll).sum() / w[labels].sum()  # PyTorch's definition of the weighted mean
    got = training_loss(torch.tensor(logits), torch.tensor(labels), weight=torch.tensor(w))
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert float(got) != pytest.approx(nll.mean(), rel=1e-3)  # the weights did change it
    assert float(training_loss(torch.tensor(logits), torch.tensor(labels))) == pytest.approx(nll.mean(), rel=1e-5)


def test_weighted_loss_with_label_smoothing_is_pytorchs_weighted_smoothing(batch):
    logits, labels, w = batch
    eps, classes = 0.1, logits.shape[1]
    nll, neg_log_p = hand_nll(logits, labels)
    # PyTorch: (1 - e) * the weighted mean NLL + e / C * sum_i sum_c w_c (-log p_ic) over the same sum_i w[y_i].
    want = ((1 - eps) * (w[labels] * nll).sum() + eps / classes * (neg_log_p * w).sum()) / w[labels].sum()
    got = training_loss(torch.tensor(logits), torch.tensor(labels), weight=torch.tensor(w), label_smoothing=eps)
    module = nn.CrossEntropyLoss(weight=torch.tensor(w), label_smoothing=eps)(torch.tensor(logits), torch.tensor(labels))
    assert float(got) == pytest.approx(want, rel=1e-5) == float(module)


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))  # no dropout: the loss of a batch is a plain function


def test_fit_trains_on_the_weighted_loss(toy_data):
    """Through the loop itself: one step of the whole set (the learning rate 0 leaves the weights where the
    logits were computed), whose logged loss is the hand-computed weighted mean."""
    train = load_dataset("fashion-mnist", toy_data).train.subset(slice(0, 64))
    w = np.linspace(0.5, 5.0, 10)
    model = linear_model()
    with torch.no_grad():
        logits = model(to_model_input(torch.from_numpy(train.images))).double().numpy()
    nll, _ = hand_nll(logits, train.labels.astype(np.int64))
    labels = train.labels.astype(np.int64)
    logged = {}
    for name, weight in (("weighted", w), ("plain", None)):
        history = fit(
            model, train, epochs=1, batch_size=64, optimizer=torch.optim.SGD(model.parameters(), lr=0.0), class_weight=weight, verbose=False
        )
        logged[name] = history["loss"][0]
    assert logged["weighted"] == pytest.approx((w[labels] * nll).sum() / w[labels].sum(), rel=1e-5)
    assert logged["plain"] == pytest.approx(nll.mean(), rel=1e-5)


def test_fit_refuses_weights_that_do_not_fit_the_classes(toy_data):
    train = load_dataset("fashion-mnist", toy_data).train.subset(slice(0, 16))
    with pytest.raises(FashionCNNError, match="one number per class"):
        fit(linear_model(), train, epochs=1, class_weight=[1.0, 2.0], verbose=False)
    with pytest.raises(FashionCNNError, match="positive finite"):
        fit(linear_model(), train, epochs=1, class_weight=[1.0] * 9 + [float("nan")], verbose=False)


def test_under_ddp_the_ranks_weighted_losses_average_to_the_one_process_loss(toy_data):
    """DDP averages the ranks' gradients; each rank's share of a batch holds its own mix of classes, so each divides
    by the global batch's weight total (per rank), and the average is the single-process weighted loss and gradient."""
    train = load_dataset("fashion-mnist", toy_data).train.subset(slice(0, 64))
    w = torch.logspace(-1, 1, 10)
    order = torch.arange(64)

    def loss_and_grad(plan, own_total=False):
        model = linear_model()
        with torch.no_grad():  # a loss that differs much from class to class, so how it is weighted shows
            model[1].bias.copy_(torch.arange(10.0))
        x, y = plan.batch(order, 0)
        total = None if own_total else plan.weight_total(order, 0, w)
        loss = training_loss(model(x), y, weight=w, weight_total=total)
        loss.backward()
        return loss.item(), model[1].weight.grad.clone()

    one = loss_and_grad(BatchPlan(train, 64, 0, 1, torch.device("cpu")))
    plans = [BatchPlan(train, 64, r, 2, torch.device("cpu")) for r in range(2)]
    ranks = [loss_and_grad(p) for p in plans]
    assert np.mean([loss for loss, _ in ranks]) == pytest.approx(one[0], rel=1e-5)
    torch.testing.assert_close((ranks[0][1] + ranks[1][1]) / 2, one[1], rtol=1e-4, atol=1e-6)
    # Each rank dividing by its own weight total would not: the two shares weigh differently on this batch.
    naive = [loss_and_grad(p, own_total=True)[0] for p in plans]
    assert np.mean(naive) != pytest.approx(one[0], rel=1e-3)


def skewed(n_per_class=(500, 200, 100, 60, 40, 30, 30, 20, 15, 5)) -> LabeledImages:
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(n_per_class)])
    return LabeledImages(np.zeros((len(labels), 28, 28), np.uint8), labels, classes=CLASSES)


def test_balanced_sampling_draws_every_class_about_equally_often():
    data = skewed()
    plan = BatchPlan(data, 32, 0, 1, torch.device("cpu"), balanced=True)
    generator = torch.Generator().manual_seed(0)
    draws = torch.cat([plan.order(generator) for _ in range(20)])  # 20 epochs of 1,000 draws
    assert len(draws) == 20 * len(data)
    share = class_counts(data.labels[draws.numpy()], 10) / len(draws)
    # Each class's share is 1/10 give or take 2% (the standard deviation is 0.2%: with the seed fixed this never flakes),
    # where shuffling would give the rarest 0.5% and the commonest 50%.
    assert np.abs(share - 0.1).max() < 0.02, share
    shuffled = BatchPlan(data, 32, 0, 1, torch.device("cpu")).order(torch.Generator().manual_seed(0))
    assert sorted(shuffled.tolist()) == list(range(len(data)))  # without it: every image once


def test_balanced_order_is_weighted_random_samplers_draw_and_follows_the_seed():
    data = skewed()
    weights = balanced_sample_weights(data.labels)
    ours = balanced_order(weights, torch.Generator().manual_seed(7))
    theirs = list(WeightedRandomSampler(weights, len(weights), replacement=True, generator=torch.Generator().manual_seed(7)))
    assert ours.tolist() == theirs
    assert not torch.equal(ours, balanced_order(weights, torch.Generator().manual_seed(8)))


def test_balanced_sampling_under_ddp_is_the_one_process_sampling():
    """Every rank draws the same order from the shared seed and computes its own share of each global batch."""
    data = skewed()
    plans = [BatchPlan(data, 32, r, 2, torch.device("cpu"), balanced=True) for r in range(2)]
    orders = [p.order(torch.Generator().manual_seed(3)) for p in plans]
    assert torch.equal(orders[0], orders[1])
    one = BatchPlan(data, 32, 0, 1, torch.device("cpu"), balanced=True)
    for step in range(3):
        global_labels = one.batch(orders[0], step)[1]
        shares = [p.batch(orders[0], step)[1] for p in plans]
        assert sorted(torch.cat(shares).tolist()) == sorted(global_labels.tolist())


def test_resume_with_class_weights_and_balanced_sampling_equals_the_uninterrupted_fit(toy_dir, tmp_path):
    train, val = train_val_split(load_dataset("fashion-mnist", toy_dir).train)
    train = train.subset(slice(0, 96))
    weights = resolve_class_weights("balanced", train.labels, CLASSES)

    def run(folder, epochs, resume):
        torch.manual_seed(0)
        model = build_model()
        early, check = EarlyStopping(patience=5), ModelCheckpoint(folder / "best.safetensors", save_best_only=True)
        history = fit(
            model,
            train,
            val,
            epochs=epochs,
            batch_size=32,
            seed=0,
            verbose=False,
            class_weight=weights,
            balanced_sampling=True,
            callbacks=[check, early, ResumeState(folder, [check, early], resume=resume)],
        )
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs]

    full = run(tmp_path / "full", 3, False)
    run(tmp_path / "cut", 1, False)  # as if the process died after epoch 1
    assert run(tmp_path / "cut", 3, True) == full and len(full) == 3


def train_cli(toy_dir, runs, name, *extra):
    argv = ["train", "--data-dir", str(toy_dir), "--epochs", "1", "--limit", "100", "--runs-dir", str(runs), "--name", name, "--quiet"]
    return main([*argv, *extra])


@pytest.fixture(scope="module")
def weighted_run(toy_data, tmp_path_factory):
    """``fashion-cnn train --class-weight balanced`` for 1 epoch on 100 toy images: a finished run directory."""
    from conftest import isolated

    root = tmp_path_factory.mktemp("weighted")
    with isolated(root):
        assert train_cli(toy_data, root, "b", "--class-weight", "balanced") == 0
    return root / "b"


def test_balanced_weights_are_recorded_in_the_run(weighted_run, toy_data):
    config = json.loads((weighted_run / "config.json").read_text())
    train, _ = train_val_split(load_dataset("fashion-mnist", toy_data).train)
    labels = train.labels[:100]  # the training split after --limit, never validation or test
    sklearn = compute_class_weight("balanced", classes=np.arange(10), y=labels)
    assert config["class_weight"] == "balanced" and config["balanced_sampling"] is False
    assert list(config["class_weights_used"]) == list(CLASSES)
    assert list(config["class_weights_used"].values()) == pytest.approx(sklearn, abs=1e-6)
    assert list(config["train_class_counts"].values()) == np.bincount(labels, minlength=10).tolist()


@pytest.mark.parametrize("width", [420, 1280])
def test_the_report_shows_training_counts_beside_recall_and_fits_the_window(weighted_run, toy_data, chromium_browser, width):
    from fashion_cnn import analyze, load_model, load_split
    from test_report_layout import PROBLEMS

    config = json.loads((weighted_run / "config.json").read_text())
    analysis = analyze(load_model(weighted_run), load_split("test", data_dir=toy_data), split="test")
    page = chromium_browser.new_page(viewport={"width": width, "height": 1000})
    try:
        page.goto((weighted_run / "report.html").as_uri())
        rows = page.locator("#balance tbody tr").all_inner_texts()
        assert len(rows) == 11  # ten classes and the total
        for row, per_class in zip(rows, analysis.per_class):
            name, trained, _, weight, recall, support = row.split("\t")
            assert name == per_class["class"] and int(trained) == config["train_class_counts"][name]
            assert float(weight) == pytest.approx(config["class_weights_used"][name], rel=2e-3)
            assert recall == f"{per_class['recall']:.4f}" and int(support) == per_class["support"]
        assert page.inner_text("#macro-recall") == f"{analysis.averages['macro']['recall']:.4f}"
        assert page.inner_text("#rarest-count") == str(min(config["train_class_counts"].values()))
        support = page.locator("#errors thead th").all_inner_texts()
        assert support[-1].lower() == "support"
        assert page.evaluate(PROBLEMS) == []
    finally:
        page.close()


def test_a_weights_file_is_recorded_by_its_absolute_path_and_must_not_change_on_resume(toy_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    given = {name: 1.0 for name in CLASSES[:7]} | {"7": 2.5, "8": 0.5, "Ankle boot": 4}  # names and indices
    (tmp_path / "w.json").write_text(json.dumps(given))
    assert train_cli(toy_dir, tmp_path / "runs", "f", "--class-weight", "w.json", "--balanced-sampling") == 0
    config = json.loads((tmp_path / "runs" / "f" / "config.json").read_text())
    assert config["class_weight"] == str(tmp_path / "w.json") and config["balanced_sampling"] is True
    assert list(config["class_weights_used"].values()) == [1.0] * 7 + [2.5, 0.5, 4.0]
    (tmp_path / "w.json").write_text(json.dumps(given | {"8": 3}))
    capsys.readouterr()
    code = main(["train", "--resume", str(tmp_path / "runs" / "f"), "--epochs", "2"])
    one_line_error(capsys, code, "the class weights are not those", "restore the weights file or start a new run")


BAD_FILES = [
    (None, "does not exist"),
    ("{not json", "is not a JSON file"),
    ('[["Shirt", 2]]', "must hold one JSON object"),
    ('{"Shirt": -1}', "gives 'Shirt' the weight -1; every weight must be a positive finite number"),
    ('{"Shirt": NaN}', "gives 'Shirt' the weight nan"),
    ('{"Shirt": Infinity}', "gives 'Shirt' the weight inf"),
    ('{"Shirt": 0}', "gives 'Shirt' the weight 0"),
    ('{"Shirt": "4"}', "gives 'Shirt' the weight '4'"),
    ('{"Shirt": 2, "Shirt": 3}', "names the class 'Shirt' twice"),
    ('{"Shrit": 2}', "names the class 'Shrit', which this dataset does not have; use a name of: T-shirt/top"),
    ('{"10": 2}', "names the class '10', which this dataset does not have"),
    ('{"Shirt": 2, "Coat": 1}', "has no weight for 'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Sandal', 'Sneaker'"),
    (json.dumps({name: 1 for name in CLASSES} | {"6": 2}), "gives 'Shirt' two weights (by name and by index)"),
]


@pytest.mark.parametrize("content, message", BAD_FILES)
def test_a_bad_weights_file_is_one_line_and_starts_no_run(content, message, toy_dir, tmp_path, capsys):
    path = tmp_path / "weights.json"
    if content is not None:
        path.write_text(content)
    code = train_cli(toy_dir, tmp_path / "runs", "x", "--class-weight", str(path))
    one_line_error(capsys, code, message)
    assert not (tmp_path / "runs").exists()


def test_balanced_weights_with_balanced_sampling_are_refused(toy_dir, tmp_path, capsys):
    code = train_cli(toy_dir, tmp_path / "runs", "x", "--class-weight", "balanced", "--balanced-sampling")
    one_line_error(capsys, code, "--class-weight balanced and --balanced-sampling", "choose one")


def test_balanced_weights_need_every_class_in_the_training_split():
    with pytest.raises(FashionCNNError, match=r"cannot weight 'Trouser': the training split has no image of it"):
        resolve_class_weights("balanced", np.array([0, 0, 2, 3, 4, 5, 6, 7, 8, 9]), CLASSES)


@pytest.mark.slow
def test_two_processes_with_weights_and_balanced_sampling_match_one(toy_dir, tmp_path):
    from test_distributed import assert_two_processes_match_one

    assert_two_processes_match_one(toy_dir, tmp_path, class_weight=np.linspace(0.5, 5.0, 10), balanced_sampling=True)
