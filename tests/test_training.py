import numpy as np
import pytest
import torch

from fashion_cnn import (
    EarlyStopping,
    FashionCNNError,
    ModelCheckpoint,
    build_model,
    evaluate,
    fit,
    load_dataset,
    load_model,
    predict_proba,
    train_val_split,
)
from fashion_cnn.training.trainer import History, Trainer


def scripted(callback, val_losses, model=None):
    """Drive a callback through epochs whose val_loss is scripted; the model's bias records the epoch."""
    model = model or build_model()
    trainer = Trainer(model, torch.optim.Adam(model.parameters()), History(), {})
    callback.set_trainer(trainer)
    callback.on_train_begin()
    for epoch, v in enumerate(val_losses):
        with torch.no_grad():
            model.dense_1.linear.bias.fill_(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": v})
        if trainer.stop_training:
            break
    callback.on_train_end()
    return epoch, model


def test_early_stopping_keras_semantics():
    es = EarlyStopping(patience=2, restore_best_weights=True)
    stopped, model = scripted(es, [1.0, 0.8, 0.9, 0.85, 0.7])
    assert stopped == 3 and es.stopped_epoch == 3 and es.best_epoch == 1 and es.best == 0.8
    assert float(model.dense_1.linear.bias[0].detach()) == 1.0  # the best epoch's weights are back


def test_early_stopping_without_restore_keeps_last_weights():
    es = EarlyStopping(patience=1)
    stopped, model = scripted(es, [1.0, 1.1, 0.5])
    assert stopped == 1 and float(model.dense_1.linear.bias[0].detach()) == 1.0


def test_restore_best_applies_even_without_stopping():
    es = EarlyStopping(patience=5, restore_best_weights=True)
    stopped, model = scripted(es, [1.0, 0.5, 0.7])
    assert es.stopped_epoch is None and float(model.dense_1.linear.bias[0].detach()) == 1.0


def test_patience_zero_stops_at_first_non_improvement_but_not_epoch_zero():
    es = EarlyStopping(patience=0)
    stopped, _ = scripted(es, [1.0, 0.9, 0.95, 0.1])
    assert stopped == 2


def test_unknown_monitor_is_a_clear_error():
    with pytest.raises(FashionCNNError, match="monitors 'val_acc' but the epoch logs have only: loss, val_loss"):
        scripted(EarlyStopping(monitor="val_acc"), [1.0])


def test_checkpoint_saves_only_improvements(tmp_path):
    path = tmp_path / "best.safetensors"
    ck = ModelCheckpoint(path, save_best_only=True)
    model = build_model()
    trainer = Trainer(model, torch.optim.Adam(model.parameters()), History(), {"classes": ["a"] * 10})
    ck.set_trainer(trainer)
    ck.on_train_begin()
    for epoch, v in enumerate([1.0, 0.5, 0.7]):
        with torch.no_grad():
            model.dense_1.linear.bias.fill_(epoch)
        ck.on_epoch_end(epoch, {"val_loss": v})
    saved = load_model(path)
    assert float(saved.dense_1.linear.bias[0].detach()) == 1.0
    assert saved.meta["epoch"] == 2 and saved.meta["metrics"]["val_loss"] == 0.5 and saved.meta["classes"][0] == "a"


@pytest.fixture
def toy_split(toy_dir):
    ds = load_dataset("fashion-mnist", toy_dir)
    return train_val_split(ds.train)


def run(train, val, seed, epochs=3):
    torch.manual_seed(seed)
    model = build_model()
    return fit(model, train, val, epochs=epochs, batch_size=16, seed=seed, verbose=False), model


def test_fit_learns_and_reports_keras_metrics(toy_split):
    history, model = run(*toy_split, seed=0, epochs=4)
    assert set(history.epochs[0]) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.5  # 10 classes: chance is 0.1
    assert evaluate(model, toy_split[1])["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    probs = predict_proba(model, toy_split[1].images[:5])
    assert probs.shape == (5, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_same_seed_same_history_other_seed_differs(toy_split):
    def strip(h):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs]

    a, _ = run(*toy_split, seed=3)
    b, _ = run(*toy_split, seed=3)
    c, _ = run(*toy_split, seed=4)
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


@pytest.mark.parametrize("restore", [True, False])
def test_logged_validation_equals_a_second_pass_to_the_last_bit(toy_split, restore):
    """``train`` reports the validation metrics ``fit`` logged for the weights it ended with (restored or last)
    instead of evaluating the validation set again: they must be what that pass gives, bit for bit."""
    from fashion_cnn.experiment.train import _logged_val

    train_set, val_set = toy_split
    # mode="max" makes the *worst* loss "best": the restored epoch is an early one, not the last.
    early = EarlyStopping(patience=5, mode="max", restore_best_weights=restore)
    model = build_model()
    history = fit(model, train_set, val_set, epochs=3, batch_size=16, seed=0, callbacks=[early], verbose=False)
    assert not restore or early.best_epoch < len(history) - 1
    logged = _logged_val(history, early)
    assert logged == evaluate(model, val_set)
    assert logged == {"loss": history.epochs[early.best_epoch if restore else -1]["val_loss"], "accuracy": logged["accuracy"]}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch size"),
        ({"epochs": -1}, "epochs"),
        ({"lr": float("nan")}, "learning rate"),
    ],
)
def test_invalid_hyperparameters(toy_split, kwargs, message):
    with pytest.raises(FashionCNNError, match=message):
        fit(build_model(), *toy_split, verbose=False, **kwargs)
