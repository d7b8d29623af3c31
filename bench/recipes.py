"""Train each named recipe for several seeds and write the table of what it reached, and in how long, here.

    python bench/recipes.py --data-dir ../shared/data/fashion-mnist                          # every recipe, seeds 0 1 2
    python bench/recipes.py --data-dir ../shared/data/fashion-mnist --recipes fast --seeds 0 1 2
    python bench/recipes.py --table                                                          # the table from what is measured

Each (recipe, seed) is one ``fashion_cnn.train(TrainConfig.from_recipe(...))`` run, the code path of
``fashion-cnn train --recipe NAME --seed S``, in a temporary run directory. Its result (test accuracy as the
run's final evaluation computes it, training wall-clock from ``metrics.json``, the CPU and the precision used)
is appended to ``bench/recipes.json`` as soon as the run ends, so a long session can be measured a piece at a
time; ``--table`` prints the Markdown table of every recipe measured so far: model, parameters, MFLOPs per
image, the command, test accuracy (median and range over the seeds) and training time (median).
Run nothing else on the machine meanwhile: the times are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import fashion_cnn as fc
from fashion_cnn.environment import environment
from fashion_cnn.experiment.recipes import RECIPES
from fashion_cnn.models.summary import mflops

RESULTS = Path(__file__).with_name("recipes.json")


def measure(recipe: str, seed: int, data_dir: str) -> dict:
    with tempfile.TemporaryDirectory() as runs:
        config = fc.TrainConfig.from_recipe(recipe, data_dir=data_dir, seed=seed, runs_dir=runs, name="run")
        started = time.perf_counter()
        result = fc.train(config, verbose=False)
        total = time.perf_counter() - started
        run_config = json.loads((result.run_dir / "config.json").read_text())
    model = fc.build_model(config.model)
    env = environment()
    return {
        "recipe": recipe,
        "seed": seed,
        "model": config.model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "mflops": round(mflops(model), 1),
        "test_accuracy": result.metrics["test"]["accuracy"],
        "val_accuracy": result.metrics["val"]["accuracy"],
        "tta": result.metrics.get("tta", False),
        "epochs_run": result.metrics["epochs_run"],
        "train_seconds": round(result.metrics["train_seconds"], 1),
        "process_seconds": round(total, 1),
        "cpu": env.get("cpu"),
        "threads": torch.get_num_threads(),
        "precision": run_config.get("precision_used"),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def command(recipe: str) -> str:
    return f"fashion-cnn train --recipe {recipe} --data-dir DIR" if recipe != "tutorial" else "fashion-cnn train --data-dir DIR"


def table(rows: list[dict]) -> str:
    out = [
        "| recipe | model | parameters | MFLOPs/image | command | test accuracy, median (range) | seeds | training time, median | CPU, precision |",
        "| --- | --- | ---: | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for recipe in RECIPES:
        runs = [r for r in rows if r["recipe"] == recipe]
        if not runs:
            out.append(f"| {recipe} | {RECIPES[recipe].get('model', 'tutorial-cnn')} | | | `{command(recipe)}` | not measured | 0 | | |")
            continue
        acc = [r["test_accuracy"] for r in runs]
        secs = [r["train_seconds"] for r in runs]
        r0 = runs[-1]
        spread = f" ({min(acc):.4f}–{max(acc):.4f})" if len(acc) > 1 else ""
        tta = ", with test-time flips" if r0["tta"] else ""
        out.append(
            f"| {recipe} | {r0['model']} | {r0['parameters']:,} | {r0['mflops']:.1f} | `{command(recipe)}` | "
            f"{statistics.median(acc):.4f}{spread}{tta} | {len(runs)} | {statistics.median(secs):,.0f} s | "
            f"{r0['cpu']}, {r0['threads']} threads, {r0['precision']} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="the real Fashion-MNIST (four .gz IDX files)")
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--table", action="store_true", help="print the table of what bench/recipes.json holds, and stop")
    args = ap.parse_args()
    rows = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    if not args.table:
        if not args.data_dir:
            ap.error("--data-dir is needed to train")
        for recipe in args.recipes:
            for seed in args.seeds:
                row = measure(recipe, seed, args.data_dir)
                rows = [r for r in rows if (r["recipe"], r["seed"]) != (recipe, seed)] + [row]
                RESULTS.write_text(json.dumps(rows, indent=1) + "\n")
                print(
                    f"{recipe} seed {seed}: test {row['test_accuracy']:.4f} in {row['train_seconds']:.0f} s of training ({row['precision']})",
                    flush=True,
                )
    print(table(rows))


if __name__ == "__main__":
    main()
