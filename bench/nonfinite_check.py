"""What the non-finite-loss guard costs per training step: with it and with it switched off.

    python bench/nonfinite_check.py                       # CPU, synthetic images, batch 32 (the tutorial's)
    python bench/nonfinite_check.py --device cuda --batch-size 128

The guard adds one on-device op per step (``count_finite``: isfinite of the running loss sum, added to a
counter) and no host synchronisation; the loss is read only where the loop already reads it. This times
(1) that op alone, per call, and (2) whole epochs of ``fit`` with the guard and with ``count_finite``
replaced by a no-op, in ABBA order, and prints the minima and medians as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit

import numpy as np
import torch

from fashion_cnn import LabeledImages, build_model, fit
from fashion_cnn.devices import resolve_device, set_threads
from fashion_cnn.training import guards, loop


def epoch_seconds(data: LabeledImages, device, batch_size: int) -> float:
    model = build_model().to(device)
    history = fit(model, data, None, epochs=1, batch_size=batch_size, seed=0, verbose=False)
    return history["seconds"][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    rng = np.random.default_rng(0)
    data = LabeledImages(rng.integers(0, 256, (args.images, 28, 28), dtype=np.uint8), rng.integers(0, 10, args.images).astype(np.int64))

    counter, loss_sum = torch.zeros((), dtype=torch.long, device=device), torch.ones((), device=device)
    calls = 20000
    op_us = timeit.timeit(lambda: guards.count_finite(counter, loss_sum), number=calls) / calls * 1e6
    if device.type == "cuda":
        torch.cuda.synchronize()

    epoch_seconds(data, device, args.batch_size)  # warm-up (oneDNN/cuDNN choose their kernels)
    guarded, unguarded = [], []

    def without_guard() -> float:
        loop.count_finite = lambda counter, loss_sum: None
        try:
            return epoch_seconds(data, device, args.batch_size)
        finally:
            loop.count_finite = guards.count_finite

    for i in range(args.repeats):  # ABBA order, so whatever favours the first (or second) of a pair cancels out
        if i % 2:
            unguarded.append(without_guard())
            guarded.append(epoch_seconds(data, device, args.batch_size))
        else:
            guarded.append(epoch_seconds(data, device, args.batch_size))
            unguarded.append(without_guard())
    steps = -(-args.images // args.batch_size)
    # On a shared machine other work only ever adds time: the minimum is the cleanest estimate, the median the usual one.
    with_s, without_s = min(guarded), min(unguarded)
    print(
        json.dumps(
            {
                "device": str(device),
                "threads": threads,
                "batch_size": args.batch_size,
                "steps_per_epoch": steps,
                "count_finite_us_per_call": round(op_us, 2),
                "step_ms_with_guard": round(with_s / steps * 1000, 3),
                "step_ms_without_guard": round(without_s / steps * 1000, 3),
                "epoch_s_with_guard": round(with_s, 3),
                "epoch_s_without_guard": round(without_s, 3),
                "overhead_percent_min": round((with_s / without_s - 1) * 100, 2),
                "overhead_percent_median": round((statistics.median(guarded) / statistics.median(unguarded) - 1) * 100, 2),
                "op_share_of_step_percent": round(op_us / (without_s / steps * 1e6) * 100, 3),
                "epoch_seconds": {"with": guarded, "without": unguarded},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
