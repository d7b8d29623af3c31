"""Training and prediction speed, side by side in one run: fashion-cnn, a plain PyTorch loop, Keras, ONNX Runtime.

    python bench/speed.py --keras-python .venv-keras/bin/python --data-dir ../shared/data/fashion-mnist
    python bench/speed.py --whole-process --data-dir ../shared/data/fashion-mnist        # 2-epoch runs, end to end
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python bench/speed.py ...  # as an AVX2 CPU

Every row runs in this one invocation on the same machine with the same thread count, and the table
reports medians over ``--repeats`` and ratios to the plain PyTorch loop, because absolute figures on a
shared machine drift. The plain loop runs in a fresh process of its own each time (the fashion-cnn rows
raise glibc's malloc thresholds for the whole process, as ``fashion-cnn train`` does: ``runtime.hold_freed_memory``). Synthetic images
(the cost per image does not depend on the pixels). The Keras row runs bench/keras_reference.py in the
environment given by --keras-python (see its docstring) and is left out, with the reason, when there is none. Peak RSS of a real 1-epoch ``fashion-cnn train`` needs --data-dir.

``--whole-process`` instead times whole commands from launch to exit, alternated: ``fashion-cnn train
--epochs 2`` (summary, checkpoints, the final evaluation, pictures and report included) against
bench/plain_tutorial.py doing the same two epochs, each epoch's validation and the test evaluation; for
fashion-cnn it splits the time into start-up (launch to the first step), training and the tail.
Every row names the CPU, the kernel level (ISA) PyTorch and oneDNN run, and the precision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import fashion_cnn as fc
from fashion_cnn import runtime
from fashion_cnn.devices import resolve_precision
from fashion_cnn.environment import cpu_isa, cpu_name, isa_line, package_version
from plain_tutorial import model as plain_model  # bench/: the tutorial's CNN as a plain nn.Sequential
from plain_tutorial import train_epoch

HERE = Path(__file__).resolve().parent


def synthetic(n: int, seed: int = 0) -> fc.LabeledImages:
    rng = np.random.default_rng(seed)
    return fc.LabeledImages(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n))


def fashion_cnn_train(data: fc.LabeledImages, batch: int, precision: str = "auto") -> float:
    """Images per second of one epoch of fashion_cnn.fit (the CLI's loop), after a short warm-up."""
    runtime.hold_freed_memory()  # as ``fashion-cnn train`` does
    torch.manual_seed(0)
    model = fc.build_model()
    fc.use_kernels(model)
    fc.fit(model, data.subset(slice(0, batch * 10)), epochs=1, batch_size=batch, precision=precision, verbose=False)
    history = fc.fit(model, data, epochs=1, batch_size=batch, precision=precision, verbose=False)
    return len(data) / history["seconds"][0]


DEFAULT_ROW = "fashion-cnn (default --precision auto)"
TRAINERS = {
    DEFAULT_ROW: fashion_cnn_train,
    "fashion-cnn --precision fp32": lambda data, batch: fashion_cnn_train(data, batch, "fp32"),
}


def plain_train(data: fc.LabeledImages, batch: int) -> float:
    """The loop most PyTorch users write: float tensors, TensorDataset + DataLoader, default Adam."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x = torch.from_numpy(data.images).float().div(255).unsqueeze(1)
    y = torch.from_numpy(data.labels)
    model = plain_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    train_epoch(model, opt, DataLoader(TensorDataset(x[: batch * 10], y[: batch * 10]), batch_size=batch, shuffle=True))
    t = time.perf_counter()
    train_epoch(model, opt, DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True))
    return len(data) / (time.perf_counter() - t)


def plain_train_apart(images: int, batch: int, threads: int) -> float:
    """``plain_train`` in a fresh Python: its own process, untouched by what the fashion-cnn rows set process-wide
    (``runtime.hold_freed_memory``: glibc's malloc thresholds), as a plain script runs."""
    out = subprocess.run(
        [sys.executable, __file__, "--plain-row", str(batch), "--images", str(images), "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def predict_rate(predict, images: np.ndarray, batch: int = 256) -> float:
    predict(images[:batch])
    t = time.perf_counter()
    for i in range(0, len(images), batch):
        predict(images[i : i + batch])
    return len(images) / (time.perf_counter() - t)


def latency_ms(predict, image: np.ndarray, n: int = 500) -> float:
    for _ in range(50):
        predict(image)
    t = time.perf_counter()
    for _ in range(n):
        predict(image)
    return (time.perf_counter() - t) / n * 1000


def keras_row(python: str | None, threads: int, images: int) -> dict | str:
    if not python:
        return "no --keras-python given"
    proc = subprocess.run(
        [python, str(HERE / "keras_reference.py"), "--threads", str(threads), "--images", str(images)], capture_output=True, text=True
    )
    if proc.returncode:
        return f"keras_reference.py failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mb(data_dir: str | None) -> float | str:
    """Peak resident memory of a real ``fashion-cnn train`` (1 epoch on 9,600 images) in its own process."""
    if not data_dir:
        return "no --data-dir given"
    with tempfile.TemporaryDirectory() as runs:
        code = (
            "import resource, sys; from fashion_cnn.cli import main; rc = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "train",
                "--data-dir",
                data_dir,
                "--epochs",
                "1",
                "--limit",
                "9600",
                "--runs-dir",
                runs,
                "--quiet",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            return f"train failed: {proc.stderr.strip()[-200:]}"
        return int(proc.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--images", type=int, default=6400, help="images per timed training epoch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keras-python", help="python of an environment with Keras 3 + TensorFlow (see keras_reference.py)")
    ap.add_argument("--data-dir", help="real Fashion-MNIST, for the peak-RSS row")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--whole-process", action="store_true", help="time 2-epoch runs end to end (needs --data-dir), and stop")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each --whole-process run")
    ap.add_argument(
        "--compare-src", help="with --whole-process: also time the fashion-cnn of another checkout's src/ (e.g. a git worktree)"
    )
    ap.add_argument("--precision", default="auto", help="fashion-cnn's --precision in the training rows of --whole-process")
    ap.add_argument("--plain-row", type=int, metavar="BATCH", help=argparse.SUPPRESS)  # one plain_train_apart, printed
    args = ap.parse_args()
    if args.plain_row:
        torch.set_num_threads(args.threads)
        print(plain_train(synthetic(args.images), args.plain_row))
        return
    if args.whole_process:
        if not args.data_dir:
            ap.error("--whole-process needs --data-dir (the real Fashion-MNIST)")
        results = whole_process(args.data_dir, args.epochs, args.repeats, args.threads, args.precision, args.compare_src)
        print(whole_process_table(results))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return
    torch.set_num_threads(args.threads)
    data = synthetic(args.images)

    results: dict = {"train": {}, "predict_256": {}, "latency_ms": {}}
    for batch in (32, 256):
        rates: dict = {}
        for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits every row alike
            for name, fn in TRAINERS.items():
                rates.setdefault(name, []).append(fn(data, batch))
            rates.setdefault("plain PyTorch", []).append(plain_train_apart(args.images, batch, args.threads))
        for name, r in rates.items():
            results["train"].setdefault(name, {})[str(batch)] = statistics.median(r)

    torch.manual_seed(0)
    model = fc.build_model().eval()
    model.to(memory_format=torch.channels_last)
    plain = plain_model().eval()
    test = synthetic(10240, seed=1).images

    def plain_predict(x):
        with torch.inference_mode():
            return torch.softmax(plain(torch.from_numpy(x).float().div(255).reshape(-1, 1, 28, 28)), 1)

    engines = {"fashion-cnn (torch engine)": lambda x: fc.predict_proba(model, x), "plain PyTorch": plain_predict}
    engines.update(onnx_engines(model, plain, synthetic(1000, seed=2).images))
    rates, lat = {}, {}
    for _ in range(args.repeats):
        for name, fn in engines.items():
            rates.setdefault(name, []).append(predict_rate(fn, test))
            lat.setdefault(name, []).append(latency_ms(fn, test[0]))
    results["predict_256"] = {k: statistics.median(v) for k, v in rates.items()}
    results["latency_ms"] = {k: statistics.median(v) for k, v in lat.items()}

    keras = keras_row(args.keras_python, args.threads, args.images)
    results["keras"] = keras
    results["peak_rss_mb"] = peak_rss_mb(args.data_dir)
    results["machine"] = {
        "cpu": cpu_name(),
        "isa": cpu_isa(),
        "isa_line": isa_line(),
        "auto_precision": resolve_precision("auto", torch.device("cpu")),
        "threads": args.threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "fashion_cnn": fc.__version__,
        "onnxruntime": package_version("onnxruntime") or "not installed",
    }
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def onnx_engines(model, plain, calibration: np.ndarray) -> dict:
    """fashion-cnn's ONNX exports (fp32 and int8) and, as the baseline, plain ONNX Runtime on a plain export.

    The baseline is what a user gets from ``torch.onnx.export`` of the float model and a default
    ``InferenceSession``: the uint8 → float scaling happens in NumPy, inside the timed call.
    """
    import onnxruntime as ort

    from fashion_cnn.export.onnx import to_onnx
    from fashion_cnn.export.quantize import quantize_onnx
    from fashion_cnn.inference.onnx import OnnxClassifier

    folder = Path(tempfile.mkdtemp())
    fp32 = to_onnx(model).SerializeToString()
    quantize_onnx(fp32, folder / "int8.onnx", calibration)
    torch.onnx.export(
        plain,
        (torch.zeros(1, 1, 28, 28),),
        folder / "plain.onnx",
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "n"}},
        dynamo=False,
    )
    session = ort.InferenceSession(str(folder / "plain.onnx"), providers=["CPUExecutionProvider"])

    def plain_ort(x):
        logits = session.run(None, {"x": (x.astype(np.float32) / 255).reshape(-1, 1, 28, 28)})[0]
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return {
        "fashion-cnn --engine onnx (fp32)": OnnxClassifier(fp32).predict_proba,
        "fashion-cnn --engine onnx (int8)": OnnxClassifier(folder / "int8.onnx").predict_proba,
        "ONNX Runtime, plain export": plain_ort,
    }


def run_fashion_cnn(data_dir: str, epochs: int, threads: int, precision: str, src: str | None = None) -> dict:
    """``fashion-cnn train --epochs N`` as a user types it, launch to exit, split where its output shows the
    moments: start-up is launch to the "Epoch 1/N" line (printed just before the first step, after the optimizer
    is made), training runs to the line of the last epoch's end (its validation included, as in the plain
    script's), and the tail is the rest (the final evaluation, pictures, report and exit)."""
    with tempfile.TemporaryDirectory() as runs:
        command = [sys.executable, "-m", "fashion_cnn", "train", "--data-dir", data_dir, "--epochs", str(epochs)]
        command += ["--runs-dir", runs, "--name", "run", "--threads", str(threads), "--precision", precision]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"PYTHONPATH": src} if src else {})}  # src: another checkout's
        launched = time.time()
        first_step = last_epoch = None
        output = []  # stdout and stderr in one pipe: a full stderr pipe cannot stall the run
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
            for line in proc.stdout:  # not a terminal: one line per epoch, no progress bar
                output.append(line)
                if first_step is None and line.startswith("Epoch 1/"):
                    first_step = time.time()
                elif "val_loss" in line:
                    last_epoch = time.time()
        total = time.time() - launched
        if proc.returncode or first_step is None or last_epoch is None:
            raise SystemExit(f"fashion-cnn train failed: {''.join(output).strip()[-300:]}")
        run = Path(runs) / "run"
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())
    return {
        "seconds": total,
        "startup": first_step - launched,
        "train": last_epoch - first_step,
        "tail": launched + total - last_epoch,
        "test_accuracy": metrics["test"]["accuracy"],
        "precision": config["precision_used"],
    }


def run_plain(data_dir: str, epochs: int, threads: int) -> dict:
    """bench/plain_tutorial.py, launch to exit, with the thread count set the way a user would (OMP_NUM_THREADS)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    launched = time.time()
    proc = subprocess.run(
        [sys.executable, str(HERE / "plain_tutorial.py"), "--data-dir", data_dir, "--epochs", str(epochs)],
        capture_output=True,
        text=True,
        env=env,
    )
    total = time.time() - launched
    if proc.returncode:
        raise SystemExit(f"plain_tutorial.py failed: {proc.stderr.strip()[-300:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "seconds": total,
        "startup": total - out["train_seconds"] - out["test_seconds"],
        "train": out["train_seconds"],
        "tail": out["test_seconds"],
        "test_accuracy": out["test_accuracy"],
        "precision": "fp32",
    }


def whole_process(data_dir: str, epochs: int, repeats: int, threads: int, precision: str, compare_src: str | None = None) -> dict:
    """Each system ``repeats`` times, alternated (A B A B ...), so a slow spell of the machine hits both."""
    rows: dict[str, list[dict]] = {"fashion-cnn train": [], "plain PyTorch script": []}
    if compare_src:
        rows[f"fashion-cnn train ({compare_src})"] = []
    for _ in range(repeats):
        rows["fashion-cnn train"].append(run_fashion_cnn(data_dir, epochs, threads, precision))
        if compare_src:
            rows[f"fashion-cnn train ({compare_src})"].append(run_fashion_cnn(data_dir, epochs, threads, precision, compare_src))
        rows["plain PyTorch script"].append(run_plain(data_dir, epochs, threads))
    isa = cpu_isa()
    return {
        "epochs": epochs,
        "rows": rows,
        "machine": {"cpu": cpu_name(), "isa": isa, "isa_line": isa_line(isa), "threads": threads, "torch": torch.__version__},
        "asked_precision": precision,
        "auto_precision": resolve_precision("auto", torch.device("cpu")),
    }


def whole_process_table(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Whole process, {r['epochs']} epochs on the 48,000 training images, launch to exit, seconds (medians of "
        f"{len(r['rows']['fashion-cnn train'])}, alternated):",
        "",
        "| system | CPU, kernels | precision | total | start-up | training | tail | each run | test acc. | × plain |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    plain = statistics.median(x["seconds"] for x in r["rows"]["plain PyTorch script"])
    for name, runs in r["rows"].items():
        med = {k: statistics.median(x[k] for x in runs) for k in ("seconds", "startup", "train", "tail", "test_accuracy")}
        each = " / ".join(f"{x['seconds']:.1f}" for x in runs)
        lines.append(
            f"| {name} | {m['cpu']}, {m['isa']['torch']} | {runs[0]['precision']} | {med['seconds']:.1f} | {med['startup']:.1f} | "
            f"{med['train']:.1f} | {med['tail']:.1f} | {each} | {med['test_accuracy']:.4f} | {plain / med['seconds']:.2f}× |"
        )
    lines.append("")
    lines.append(f"Machine: {m['cpu']}: {m['isa_line']}; {m['threads']} threads, torch {m['torch']}")
    return "\n".join(lines)


def table(r: dict) -> str:
    base, keras, m = r["train"]["plain PyTorch"], r["keras"], r["machine"]
    where = f"{m['cpu']}, {m['isa']['torch']}"  # the CPU and the kernel level on every row

    def precision(name: str) -> str:
        if "int8" in name:
            return "int8"
        return m["auto_precision"] if name.startswith(DEFAULT_ROW) else "fp32"

    lines = [
        "Training, images/s (× plain PyTorch loop, × Keras):",
        "",
        "| system | CPU, kernels | precision | batch 32 | batch 256 |",
        "| --- | --- | --- | --- | --- |",
    ]

    def cell(v, batch):
        k = f", {v / keras['train'][batch]:.2f}× Keras" if isinstance(keras, dict) else ""
        return f"{v:,.0f} ({v / base[batch]:.2f}×{k})"

    for name, t in r["train"].items():
        lines.append(f"| {name} | {where} | {precision(name)} | {cell(t['32'], '32')} | {cell(t['256'], '256')} |")
    if isinstance(keras, dict):
        lines.append(f"| {keras['system']} | {where} | fp32 | {cell(keras['train']['32'], '32')} | {cell(keras['train']['256'], '256')} |")
    else:
        lines.append(f"| Keras | | | not run: {keras} | |")
    ref = r["predict_256"]["ONNX Runtime, plain export"]
    lines += [
        "",
        "Prediction (× plain ONNX Runtime):",
        "",
        "| system | CPU, kernels | precision | images/s, batch 256 | 1-image latency |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, rate in r["predict_256"].items():
        lines.append(f"| {name} | {where} | {precision(name)} | {rate:,.0f} ({rate / ref:.2f}×) | {r['latency_ms'][name]:.3f} ms |")
    if isinstance(keras, dict):
        lines.append(
            f"| {keras['system']} | {where} | fp32 | {keras['predict_256']:,.0f} ({keras['predict_256'] / ref:.2f}×) | "
            f"{keras['latency_ms']:.3f} ms (predict_on_batch) |"
        )
    lines.append("")
    rss = r["peak_rss_mb"]
    lines.append(
        f"Peak RSS of `fashion-cnn train` (1 epoch, real data): {rss:,.0f} MB"
        if isinstance(rss, float)
        else f"Peak RSS: not measured ({rss})"
    )
    m = r["machine"]
    lines.append(
        f"Machine: {m['cpu']}: {m['isa_line']}; {m['threads']} threads; Python {m['python']}, torch {m['torch']}, onnxruntime {m['onnxruntime']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
