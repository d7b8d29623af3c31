"""The Keras tutorial's model, timed on synthetic data: the reference row of bench/speed.py.

Runs in an environment with Keras 3 and a backend (not fashion-cnn's), and prints one JSON object:

    python -m venv .venv-keras && .venv-keras/bin/pip install tensorflow-cpu==2.21.0 keras==3.15.1
    .venv-keras/bin/python bench/keras_reference.py --threads 2 --images 6400
"""

import argparse
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=6400, help="images per timed training epoch")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.images)

    def model():
        m = keras.Sequential(
            [
                keras.layers.Input((28, 28, 1)),
                keras.layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(100, activation="relu"),
                keras.layers.Dropout(0.4),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    out = {"system": f"Keras {keras.__version__} + {keras.backend.backend()}", "train": {}}
    for batch in (32, 256):
        m = model()
        m.fit(x[: batch * 20], y[: batch * 20], batch_size=batch, epochs=1, verbose=0)  # warm-up / tracing
        rates = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            m.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            rates.append(args.images / (time.perf_counter() - t))
        out["train"][str(batch)] = sorted(rates)[len(rates) // 2]
    m = model()
    m.predict(x[:512], batch_size=256, verbose=0)
    rates = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        m.predict(x, batch_size=256, verbose=0)
        rates.append(len(x) / (time.perf_counter() - t))
    out["predict_256"] = sorted(rates)[len(rates) // 2]
    one = x[:1]
    for _ in range(20):
        m.predict_on_batch(one)
    t = time.perf_counter()
    for _ in range(200):
        m.predict_on_batch(one)
    out["latency_ms"] = (time.perf_counter() - t) / 200 * 1000
    print(json.dumps(out))


if __name__ == "__main__":
    main()
