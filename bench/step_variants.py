"""Where the training step's speed comes from: the same bare step with one change at a time, interleaved.

    python bench/step_variants.py --batch-size 32 --repeats 3
    python bench/step_variants.py --profile     # where the default step's time goes, by operator
    python bench/step_variants.py --profile --fp32    # ... of the fp32 step, by operator and shape (CPUs without bf16)

NCHW vs channels-last memory, PyTorch's default for-loop Adam vs the fused one, fp32 vs bf16 autocast,
ReLU-then-pool (each layer in turn, as Keras computes it) vs pool-then-ReLU (fashion-cnn's exact rewrite), and
PyTorch's operators vs fashion-cnn's fused conv/pool kernels (fashion_cnn.kernels, swapped in with use_kernels).
Synthetic images; the step is fashion-cnn's own (uint8 batch scaled in the step, tutorial model, Keras Adam).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F

import fashion_cnn as fc
from fashion_cnn.data.transforms import to_model_input

VARIANTS = {  # name: (channels_last, fused Adam, bf16 autocast, pool before ReLU, fused conv/pool kernels)
    "NCHW, for-loop Adam, fp32": (False, False, False, False, False),
    "channels-last, for-loop Adam, fp32": (True, False, False, False, False),
    "channels-last, fused Adam, fp32": (True, True, False, False, False),
    "... and pool before ReLU, fp32": (True, True, False, True, False),
    "... and the fused conv/pool kernels, fp32": (True, True, False, True, True),
    "channels-last, fused Adam, bf16 autocast": (True, True, True, False, False),
    "... and pool before ReLU, bf16": (True, True, True, True, False),
    "... and the fused kernels, bf16 (fashion-cnn)": (True, True, True, True, True),
}


def layer_by_layer(model):
    """The model as Keras runs it: every layer in turn (ReLU inside Conv2D, then the pooling)."""

    def forward(x):
        for layer in model:
            x = layer(x)
        return x

    return forward


def images_per_second(
    images, labels, batch: int, channels_last: bool, fused: bool, bf16: bool, pool_first: bool = True, kernels: bool = True
) -> float:
    torch.manual_seed(0)
    model = fc.build_model()
    if kernels:
        fc.use_kernels(model, "on")
    run = model if pool_first else layer_by_layer(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), eps=1e-7, fused=fused or None)
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    order = torch.randperm(len(labels))
    steps = len(labels) // batch
    start = time.perf_counter()
    for s in range(steps):
        idx = order[s * batch : (s + 1) * batch]
        with cast():
            loss = F.cross_entropy(run(to_model_input(images[idx])).float(), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--images", type=int, default=6400)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="profile the fastest variant (torch.profiler) instead")
    ap.add_argument("--fp32", action="store_true", help="with --profile: fashion-cnn's fp32 step, by operator and input shape")
    args = ap.parse_args()
    images = torch.randint(0, 256, (args.images, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.images,))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        fastest = list(VARIANTS.values())[-1]
        name = list(VARIANTS)[-1]
        if args.fp32:
            fastest, name = (
                (True, True, False, True, True),
                "channels-last, fused Adam, fp32, pool before ReLU, fused kernels (fashion-cnn fp32)",
            )
        images_per_second(images[:640], labels[:640], args.batch_size, *fastest)  # warm-up
        with profile(activities=[ProfilerActivity.CPU], record_shapes=args.fp32) as prof:
            rate = images_per_second(images[:3200], labels[:3200], args.batch_size, *fastest)
        steps = 3200 // args.batch_size
        print(f"{name}, batch {args.batch_size}: {rate:,.0f} img/s under the profiler, {steps} steps")
        print(prof.key_averages(group_by_input_shape=args.fp32).table(sort_by="self_cpu_time_total", row_limit=20))
        return
    rates: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, flags in VARIANTS.items():
            rates.setdefault(name, []).append(images_per_second(images, labels, args.batch_size, *flags))
    base = statistics.median(rates[next(iter(VARIANTS))])
    print(f"batch {args.batch_size}, {torch.get_num_threads()} threads, medians of {args.repeats}:")
    for name, r in rates.items():
        print(f"  {name:<46} {statistics.median(r):8,.0f} img/s  ({statistics.median(r) / base:.2f}×)")


if __name__ == "__main__":
    main()
