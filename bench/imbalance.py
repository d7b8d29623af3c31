"""Macro recall on an imbalanced Fashion-MNIST, trained plainly, with --class-weight balanced and with --balanced-sampling.

    flock /tmp/heavy.lock python bench/imbalance.py --data-dir ../shared/data/fashion-mnist --epochs 3     # writes bench/imbalance.md

The imbalance: of the tutorial's 48,000 training images (the 80% split, seed 42) only 5% of three classes are kept
(``--keep 0.05 --classes Pullover Coat Shirt``: the three a model confuses most), chosen at random with ``--seed``;
the 12,000 validation and 10,000 test images stay as they are, ten balanced classes. Each setting is one
``fashion_cnn.train(TrainConfig(...))`` run, the code path of ``fashion-cnn train`` with the same flags, on that
data (a bench-only dataset registered under the name ``fashion-mnist-imbalanced``, whose own validation split is the
untouched 12,000, as a folder dataset's ``val/`` is used). The final model of each run is analysed on the test split
(``fashion_cnn.analyze``): macro recall (the mean of the ten classes' recall), the three classes' recall and the
accuracy go into a Markdown table with the CPU, threads and precision it ran on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import fashion_cnn as fc
from fashion_cnn.data.registry import DATASETS, FASHION_MNIST
from fashion_cnn.environment import cpu_name
from fashion_cnn.files import atomic_write_text

NAME = "fashion-mnist-imbalanced"
OUT = Path(__file__).with_name("imbalance.md")
#: The settings compared: a label, the flags of `fashion-cnn train`, the TrainConfig fields they set.
SETTINGS = (
    ("plain", "", {}),
    ("class weights", "--class-weight balanced", {"class_weight": "balanced"}),
    ("balanced sampling", "--balanced-sampling", {"balanced_sampling": True}),
)


def imbalanced(data_dir: str, rare: tuple[int, ...], keep: float, seed: int) -> fc.Dataset:
    """Fashion-MNIST with ``keep`` of each of ``rare``'s training images (of the tutorial's 48,000), its own validation
    split the untouched 12,000, and the test set as it is."""
    data = fc.load_dataset("fashion-mnist", data_dir)
    train, val = fc.train_val_split(data.train)  # the tutorial's 48,000 / 12,000
    rng = np.random.default_rng(seed)
    kept = np.ones(len(train), bool)
    for c in rare:
        members = np.flatnonzero(train.labels == c)
        kept[members] = False
        kept[rng.choice(members, round(keep * len(members)), replace=False)] = True
    return fc.Dataset(NAME, train.subset(kept), data.test, data.classes, data.classes_ko, val=val)


@dataclass(frozen=True)
class Prepared:
    """A ``DatasetSource`` that hands out a dataset already in memory (``TrainConfig(dataset=NAME)`` loads it)."""

    dataset: fc.Dataset
    name: str = NAME
    classes: tuple[str, ...] = FASHION_MNIST.classes
    # The IDX datasets' check that a folder holds no other dataset's files compares digests; this one has none.
    sha256: dict = field(default_factory=lambda: {"train_labels": None})

    def class_names(self, lang: str = "en") -> tuple[str, ...]:
        return FASHION_MNIST.class_names(lang)

    def load(self, data_dir=None, *, download: bool = True) -> fc.Dataset:
        return self.dataset


def measure(data: fc.Dataset, rare: tuple[int, ...], epochs: int, seed: int, threads: int | None) -> list[dict]:
    DATASETS[NAME] = Prepared(data)  # what `TrainConfig(dataset=NAME)` loads
    test = data.test
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for label, flags, extra in SETTINGS:
            config = fc.TrainConfig(
                dataset=NAME, epochs=epochs, seed=seed, threads=threads, runs_dir=runs, name=label.replace(" ", "-"), **extra
            )
            started = time.perf_counter()
            result = fc.train(config, verbose=False)
            seconds = time.perf_counter() - started
            run_config = fc.RunDir(result.run_dir).config()
            analysis = fc.analyze(fc.load_model(result.run_dir), test, split="test")
            recall = {row["class"]: row["recall"] for row in analysis.per_class}
            rows.append(
                {
                    "label": label,
                    "flags": flags,
                    "macro_recall": analysis.averages["macro"]["recall"],
                    "rare_recall": [recall[FASHION_MNIST.classes[c]] for c in rare],
                    "accuracy": analysis.accuracy,
                    "epochs_run": result.metrics["epochs_run"],
                    "best_epoch": result.metrics["best_epoch"],
                    "seconds": seconds,
                    "precision": run_config["precision_used"],
                    "threads": run_config["threads"],
                    "train_images": sum(run_config["train_class_counts"].values()),
                    "counts": run_config["train_class_counts"],
                    "weights": run_config["class_weights_used"],
                }
            )
            print(f"{label}: macro recall {rows[-1]['macro_recall']:.4f}, accuracy {analysis.accuracy:.4f}, {seconds:.0f} s", flush=True)
    return rows


def table(rows: list[dict], data: fc.Dataset, rare: tuple[int, ...], keep: float, epochs: int, seed: int, command: str) -> str:
    rare = [FASHION_MNIST.classes[c] for c in rare]
    first = rows[0]
    counts = ", ".join(f"{name} {first['counts'][name]:,}" for name in rare)
    weights = next((r["weights"] for r in rows if r["weights"]), None)
    lines = [
        "# Imbalanced Fashion-MNIST: macro recall with and without correcting for it",
        "",
        f"    {command}",
        "",
        f"Training split: the tutorial's 80% of the training images with {keep:.0%} of {', '.join(rare)} kept ({counts}; "
        f"{first['train_images']:,} images in all); validation ({len(data.val):,}) and test ({len(data.test):,}) untouched. tutorial-cnn, Adam 1e-3, "
        f"batch 32, at most {epochs} epochs (early stopping on val_loss, patience 2, best weights restored), seed {seed}. "
        f"{cpu_name()}, {first['threads']} threads, {first['precision']}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| setting | flags | macro recall (test) | " + " | ".join(f"{n} recall" for n in rare) + " | accuracy | epochs (best) | seconds |",
        "|---|---|---:|" + "---:|" * len(rare) + "---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | `{r['flags'] or '(none)'}` | {r['macro_recall']:.4f} | "
            + " | ".join(f"{v:.4f}" for v in r["rare_recall"])
            + f" | {r['accuracy']:.4f} | {r['epochs_run']} ({r['best_epoch']}) | {r['seconds']:.0f} |"
        )
    if len(set(np.bincount(data.test.labels).tolist())) == 1:
        lines += ["", "The test split has as many images of every class, so its accuracy is its macro recall."]
    if weights:
        lines += ["", "`--class-weight balanced` used: " + ", ".join(f"{n} {w:.3g}" for n, w in weights.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data/fashion-mnist")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--keep", type=float, default=0.05, help="the share of each rare class's training images kept (default 0.05)")
    p.add_argument("--classes", nargs="+", default=["Pullover", "Coat", "Shirt"], help="the rare classes (default: Pullover Coat Shirt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-o", "--output", type=Path, default=OUT)
    args = p.parse_args()
    rare = tuple(FASHION_MNIST.classes.index(c) for c in args.classes)
    data = imbalanced(args.data_dir, rare, args.keep, args.seed)
    rows = measure(data, rare, args.epochs, args.seed, args.threads)
    command = f"python bench/imbalance.py --data-dir {args.data_dir} --epochs {args.epochs}" + (
        f" --keep {args.keep}" if args.keep != 0.05 else ""
    )
    atomic_write_text(args.output, table(rows, data, rare, args.keep, args.epochs, args.seed, command))
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
