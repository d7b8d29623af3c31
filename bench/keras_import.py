"""Bring your Keras model, measured: the tutorial trained by Keras, imported by fashion-cnn, both scored on the test set.

    KERAS_BACKEND=torch python bench/keras_import.py --data-dir ../shared/data/fashion-mnist                        # the tutorial
    KERAS_BACKEND=torch python bench/keras_import.py --data-dir ../shared/data/fashion-mnist --epochs 1 --limit 12000  # a quick check

Keras 3 (``pip install -c constraints.txt -e '.[test]'``) trains the tutorial's model as its notebook does: the
48,000 / 12,000 split, Adam, batch 32, at most ``--epochs`` epochs, ``ModelCheckpoint('best-cnn-model.keras',
save_best_only=True)`` and ``EarlyStopping(patience=2, restore_best_weights=True)``; the checkpoint is loaded
back and evaluated by Keras on the 10,000 test images, saved again as ``.h5``, and both files are imported by
``fashion-cnn import`` and evaluated by fashion-cnn. Prints one JSON object: each accuracy (and loss), the
labels that differ and the largest difference between the two libraries' probabilities.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def tutorial_model(keras):
    """The tutorial's model, as its notebook builds and compiles it (tests/test_keras.py uses it too)."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(100, activation="relu"),
            layers.Dropout(0.4),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N training images only (0: all 48,000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import numpy as np
    import torch

    import fashion_cnn as fc
    from fashion_cnn.cli import main as cli

    torch.set_num_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    data = fc.load_dataset("fashion-mnist", data_dir=args.data_dir)
    train, val = fc.train_val_split(data.train, val_fraction=0.2, seed=42)
    limit = args.limit or len(train.images)

    def scaled(images):
        return images.reshape(-1, *images.shape[1:], 1).astype("float32") / 255.0

    model = tutorial_model(keras)
    scratch = tempfile.TemporaryDirectory(prefix="keras-import-")
    folder = Path(scratch.name)
    checkpoint = folder / "best-cnn-model.keras"
    start = time.perf_counter()
    history = model.fit(
        scaled(train.images[:limit]),
        train.labels[:limit],
        epochs=args.epochs,
        batch_size=32,
        validation_data=(scaled(val.images), val.labels),
        callbacks=[
            keras.callbacks.ModelCheckpoint(str(checkpoint), save_best_only=True),
            keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True),
        ],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    best = keras.saving.load_model(checkpoint)
    best.save(folder / "best-cnn-model.h5")
    x_test, y_test = scaled(data.test.images), data.test.labels
    keras_loss, keras_accuracy = best.evaluate(x_test, y_test, verbose=0)
    keras_probs = best.predict(x_test, verbose=0)

    out = {
        "system": f"Keras {keras.__version__} ({keras.backend.backend()}), fashion-cnn {fc.__version__}",
        "training": {"images": limit, "epochs_run": len(history.history["loss"]), "seconds": round(seconds, 1)},
        "keras": {"test_loss": round(float(keras_loss), 6), "test_accuracy": round(float(keras_accuracy), 6)},
    }
    for name in ("best-cnn-model.keras", "best-cnn-model.h5"):
        target = folder / (name.replace(".", "-") + ".safetensors")
        assert cli(["import", str(folder / name), "-o", str(target)]) == 0
        imported = fc.load_model(target)
        scores = fc.evaluate(imported, data.test)
        probs = fc.predict_proba(imported, data.test.images)
        out[f"fashion-cnn ({name})"] = {
            "arch": imported.arch["name"],
            "test_loss": round(float(scores["loss"]), 6),
            "test_accuracy": round(float(scores["accuracy"]), 6),
            "labels_differ": int((probs.argmax(1) != keras_probs.argmax(1)).sum()),
            "max_abs_diff": float(np.abs(probs - keras_probs).max()),
        }
    print(json.dumps(out, indent=2))
    scratch.cleanup()


if __name__ == "__main__":
    main()
