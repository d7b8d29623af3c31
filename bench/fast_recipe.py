"""Time to ≥ 0.910 test accuracy with the tutorial's architecture: the fast recipe, median of 3 seeds.

    python bench/fast_recipe.py --data-dir ../shared/data/fashion-mnist
    python bench/fast_recipe.py --data-dir ../shared/data/fashion-mnist --batch-size 128 --epochs 5   # the 30 s moonshot: not enough

Each seed is one ``fashion-cnn train`` run (the CLI's code path) with a one-cycle learning-rate schedule
and no early stopping; the figure that counts is the training wall-clock (all epochs, validation included)
and the test accuracy of the final model. Compare with the tutorial's settings by passing
``--tutorial`` (constant lr 1e-3, batch 32, early stopping with patience 2).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from fashion_cnn import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--tutorial", action="store_true", help="the tutorial's own settings instead")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as runs:
            if args.tutorial:
                config = TrainConfig(data_dir=args.data_dir, seed=seed, runs_dir=runs, name="run")
            else:
                config = TrainConfig(
                    data_dir=args.data_dir,
                    seed=seed,
                    runs_dir=runs,
                    name="run",
                    batch_size=args.batch_size,
                    epochs=args.epochs,
                    lr=args.lr,
                    schedule="onecycle",
                    patience=args.epochs,
                )
            result = train(config, verbose=False)
        m = result.metrics
        rows.append((seed, m["train_seconds"], m["epochs_run"], m["val"]["accuracy"], m["test"]["accuracy"]))
        print(
            f"seed {seed}: {m['train_seconds']:.1f} s training, {m['epochs_run']} epochs, val {m['val']['accuracy']:.4f}, test {m['test']['accuracy']:.4f}",
            flush=True,
        )
    recipe = "tutorial settings" if args.tutorial else f"batch {args.batch_size}, {args.epochs} epochs, one-cycle lr {args.lr}"
    print(
        f"{recipe}: median training time {statistics.median(r[1] for r in rows):.1f} s, "
        f"median test accuracy {statistics.median(r[4] for r in rows):.4f} (seeds {', '.join(map(str, args.seeds))})"
    )


if __name__ == "__main__":
    main()
