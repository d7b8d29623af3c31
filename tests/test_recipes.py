"""Stronger models and named recipes (issue 14): every architecture and recipe trains, augmentation keeps labels
and shapes, the moving average is what is validated and saved, test-time augmentation averages the mirror image,
and the tutorial's default run is unchanged by all of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import fashion_cnn as fc
from fashion_cnn.cli import main
from fashion_cnn.experiment.recipes import RECIPES
from fashion_cnn.training.augment import Augment, random_erase, random_flip, random_shift


def pictures(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(1, 256, (n, 28, 28), dtype=np.uint8))


# -- augmentation -------------------------------------------------------------------------------------------


def test_a_shift_moves_each_picture_and_fills_with_background():
    x = pictures()
    moved = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert moved.shape == x.shape and moved.dtype == torch.uint8
    for a, b in zip(x, moved):  # each output is the input moved by some (dy, dx) in -2..2, zeros filling in
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                want = torch.zeros_like(a)
                src = a[max(0, dy) : 28 + min(0, dy), max(0, dx) : 28 + min(0, dx)]
                want[max(0, -dy) : 28 + min(0, -dy), max(0, -dx) : 28 + min(0, -dx)] = src
                found |= torch.equal(want, b)
        assert found
    assert not torch.equal(moved, x)


def test_a_flip_mirrors_about_half_and_keeps_the_rest():
    x = pictures(400)
    out = random_flip(x, torch.Generator().manual_seed(1))
    mirrored = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x)]
    kept = [torch.equal(o, i) for o, i in zip(out, x)]
    assert all(m or k for m, k in zip(mirrored, kept)) and 150 < sum(mirrored) < 250


def test_erasing_blanks_one_rectangle_of_a_bounded_size():
    x = pictures(300)  # no zero pixels: every zero after erasing was erased
    out = random_erase(x, 0.5, torch.Generator().manual_seed(2))
    erased = out == 0
    touched = erased.flatten(1).any(1)
    assert 100 < int(touched.sum()) < 200
    for mask in erased[touched]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert bool(box.all()), "the erased pixels form one rectangle"
        assert 0.015 * 784 <= int(mask.sum()) <= 0.36 * 784


def test_augmented_batches_keep_their_labels_and_repeat_with_the_seed():
    from fashion_cnn.data import LabeledImages
    from fashion_cnn.training.loop import BatchPlan

    data = LabeledImages(pictures(64).numpy(), np.arange(64) % 10)
    plan = BatchPlan(data, 16, 0, 1, torch.device("cpu"))
    aug = Augment(shift=2, flip=True, erase=0.5)
    order = torch.arange(64)
    x1, y1 = plan.batch(order, 1, aug, torch.Generator().manual_seed(5))
    x2, y2 = plan.batch(order, 1, aug, torch.Generator().manual_seed(5))
    x0, y0 = plan.batch(order, 1)
    assert x1.shape == x0.shape == (16, 1, 28, 28) and torch.equal(y1, y0) and torch.equal(y1, torch.arange(16, 32) % 10)
    assert torch.equal(x1, x2) and not torch.equal(x1, x0)


@pytest.mark.parametrize("flags, message", [(["--shift", "9"], "--shift must be"), (["--erase", "1.5"], "--erase must be")])
def test_bad_augmentation_settings_are_one_line(toy_dir, tmp_path, capsys, flags, message):
    assert main(["train", "--data-dir", str(toy_dir), "--runs-dir", str(tmp_path / "runs"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


# -- moving average and test-time augmentation ----------------------------------------------------------------


def test_the_moving_average_is_what_is_validated_and_saved(toy_data, tmp_path):
    from fashion_cnn.training.callbacks import Callback

    data = fc.load_dataset("fashion-mnist", toy_data)
    train, val = fc.train_val_split(data.train)
    seen = {}

    class Peek(Callback):
        def on_epoch_end(self, epoch, logs):
            seen["raw"] = {k: v.clone() for k, v in self.trainer.model.state_dict().items()}
            seen["ema"] = {k: v.clone() for k, v in self.trainer.eval_model.state_dict().items()}
            seen["val_loss"] = logs["val_loss"]

    torch.manual_seed(0)
    model = fc.build_model("tutorial-cnn-bn")
    checkpoint = fc.ModelCheckpoint(tmp_path / "m.safetensors")
    fc.fit(model, train, val, epochs=2, batch_size=16, seed=0, ema=0.9, callbacks=[checkpoint, Peek()], verbose=False)
    key = "dense.linear.weight"
    assert not torch.equal(seen["raw"][key], seen["ema"][key]), "the average differs from the raw weights"
    saved = fc.load_model(tmp_path / "m.safetensors")
    for k, v in saved.state_dict().items():
        assert torch.equal(v, seen["ema"][k]), k  # the file holds the average (batch-norm statistics included)
    assert fc.evaluate(saved, val)["loss"] == pytest.approx(seen["val_loss"], rel=1e-6)
    assert torch.equal(model.state_dict()[key], seen["ema"][key]), "after training the model holds the average"


def test_test_time_augmentation_averages_the_mirror_images_prediction(toy_data):
    torch.manual_seed(0)
    model = fc.build_model()
    images = fc.load_dataset("fashion-mnist", toy_data).test.images[:8]
    plain = fc.predict_proba(model, images)
    mirror = fc.predict_proba(model, images[:, :, ::-1].copy())
    np.testing.assert_allclose(fc.predict_proba(model, images, tta=True), (plain + mirror) / 2, rtol=1e-6, atol=1e-7)
    assert not np.allclose(plain, mirror), "the mirror image is a different input"


def test_evaluate_and_predict_take_tta(toy_run, toy_data, capsys):
    assert main(["evaluate", str(toy_run.path), "--data-dir", str(toy_data), "--tta", "--json"]) == 0
    with_tta = json.loads(capsys.readouterr().out)
    model = fc.load_model(toy_run.path)
    test = fc.load_split("test", data_dir=toy_data)
    probs = fc.predict_proba(model, test.images, tta=True)
    assert with_tta["tta"] and with_tta["accuracy"] == pytest.approx(float((probs.argmax(1) == test.labels).mean()))
    assert main(["predict", str(toy_run.path), "--data-dir", str(toy_data), "--index", "0", "--tta", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(list(answer["probabilities"].values()), probs[0], rtol=1e-5)


# -- architectures and recipes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params", [("tutorial-cnn-bn", 333_622), ("compact-cnn", 426_474), ("resnet-small", 696_042)])
def test_each_architecture_builds_summarises_and_takes_other_sizes(name, params):
    model = fc.build_model(name)
    assert sum(p.numel() for p in model.parameters()) == params
    text = fc.summary(model, print_fn=lambda s: None)
    assert f"Total params: {params:,}" in text and "MFLOPs per image" in text
    small = fc.build_model(name, num_classes=3, image_size=32)
    assert small(torch.zeros(2, 1, 32, 32)).shape == (2, 3)


def test_the_fused_conv_pool_relu_is_exact_for_batch_norm_blocks():
    torch.manual_seed(0)
    model = fc.build_model("compact-cnn").eval()
    x = torch.rand(4, 1, 28, 28)
    fused = model(x)
    model.fuse = False
    assert torch.allclose(fused, model(x), atol=1e-6)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_trains_a_step_and_records_its_values(recipe, toy_data, tmp_path, capsys):
    code = main(
        [
            "train",
            "--recipe",
            recipe,
            "--data-dir",
            str(toy_data),
            "--epochs",
            "1",
            "--limit",
            "32",
            "--runs-dir",
            str(tmp_path),
            "--name",
            "r",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"Recipe {recipe}: ") and ("--epochs 1 (yours)" in out or "and --data-dir" in out and "--epochs 1" in out)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["recipe"] == recipe and config["epochs"] == 1
    for key, value in RECIPES[recipe].items():
        if key != "epochs":
            assert config[key] == value, key
    assert fc.load_model(tmp_path / "r").arch["name"] == RECIPES[recipe].get("model", "tutorial-cnn")


def test_a_run_with_every_technique_resumes_to_the_same_result(toy_data, tmp_path):
    """One epoch, then --resume to three, equals three at once: the moving average, the augmentation's random
    numbers and the optimizer all come back from state.safetensors."""
    args = ["train", "--data-dir", str(toy_data), "--model", "tutorial-cnn-bn", "--batch-size", "32", "--quiet", "--patience", "3"]
    args += ["--shift", "2", "--flip", "--erase", "0.5", "--ema", "0.9", "--label-smoothing", "0.1", "--optimizer", "adamw"]
    args += ["--weight-decay", "1e-3", "--runs-dir", str(tmp_path)]
    assert main([*args, "--name", "whole", "--epochs", "3"]) == 0
    assert main([*args, "--name", "cut", "--epochs", "1"]) == 0
    assert main(["train", "--resume", str(tmp_path / "cut"), "--epochs", "3", "--data-dir", str(toy_data), "--quiet"]) == 0
    whole = json.loads((tmp_path / "whole" / "history.json").read_text())
    cut = json.loads((tmp_path / "cut" / "history.json").read_text())
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert len(whole) == 3 and strip(whole) == strip(cut)
    a, b = fc.load_model(tmp_path / "whole"), fc.load_model(tmp_path / "cut")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_cosine_warms_up_then_decays_to_zero(toy_data, tmp_path):
    from fashion_cnn.training.optimizers import make_optimizer
    from fashion_cnn.training.schedules import make_schedule

    model = fc.build_model()
    opt = make_optimizer("sgd", model, 0.1, weight_decay=5e-4)
    schedule = make_schedule("cosine", opt, 0.1, epochs=3, steps_per_epoch=10, warmup_epochs=1)
    rates = []
    for _ in range(30):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.01) and max(rates) == pytest.approx(0.1) and rates.index(max(rates)) == 9
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 0.001
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["weight_decay"] == 5e-4


@pytest.mark.parametrize("arch", ["tutorial-cnn-bn", "compact-cnn", "resnet-small"])
def test_each_architecture_works_through_every_command(arch, toy_data, tmp_path, capsys):
    """Train, resume, evaluate, predict on a file, export to ONNX and int8 (parity checked), serve."""
    from fastapi.testclient import TestClient

    from fashion_cnn.serving.app import create_app

    data = ["--data-dir", str(toy_data)]
    run = tmp_path / "r"
    assert (
        main(["train", "--model", arch, *data, "--epochs", "1", "--limit", "64", "--runs-dir", str(tmp_path), "--name", "r", "--quiet"])
        == 0
    )
    assert main(["train", "--resume", str(run), "--epochs", "2", *data, "--quiet"]) == 0
    assert len(json.loads((run / "history.json").read_text())) == 2
    assert main(["evaluate", str(run), *data, "--json"]) == 0
    torch_acc = json.loads(capsys.readouterr().out)["accuracy"]
    photo = Path(__file__).parent / "data" / "sneaker-on-table.jpg"
    assert main(["predict", str(run), str(photo), "--json"]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--format", "onnx", "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["max_abs_diff"] < 1e-4, exported
    assert main(["evaluate", str(run / "model.onnx"), *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(torch_acc, abs=0.011)
    assert main(["export", str(run), "--format", "onnx", "--int8", *data, "-o", str(tmp_path / "int8.onnx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agreement"] >= 0.9
    with TestClient(create_app(str(run))) as client:
        answer = client.post("/predict?include=gradcam", content=photo.read_bytes()).json()
    assert len(answer["probabilities"]) == 10 and len(answer["gradcam"]["heatmap"]) == 28
