"""Images per second of fashion-cnn's bare training step, in this process: for A/B runs of two checkouts.

    python bench/bare_step.py fp32                                   # this checkout
    PYTHONPATH=/tmp/wt-before/src python bench/bare_step.py fp32     # another (a git worktree), then alternate

600 steps of the tutorial's CNN at batch 32 on synthetic images after 50 warm-up steps: the uint8 batch scaled
in the step, channels-last, fused Adam, the fused kernels where they apply, and the CLI's malloc thresholds (``runtime.hold_freed_memory``);
``bf16`` runs the forward pass under bf16 autocast. It prints the kernel's build (``use_kernels``' answer), the
precision and the rate. Run each side in a fresh process, alternated several times (the machine's speed drifts),
and compare pair by pair; ``bench/results.md`` lists such runs.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import fashion_cnn as fc
from fashion_cnn import runtime
from fashion_cnn.data.transforms import to_model_input


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("precision", choices=("fp32", "bf16"))
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()
    runtime.hold_freed_memory()
    torch.manual_seed(0)
    images, labels = torch.randint(0, 256, (6400, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (6400,))
    model = fc.build_model().to(memory_format=torch.channels_last)
    status = fc.use_kernels(model)
    opt = torch.optim.Adam(model.parameters(), eps=1e-7, fused=True)

    def run(steps: int) -> None:
        for _ in range(steps):
            idx = torch.randint(0, len(labels), (32,))
            x, y = to_model_input(images[idx]), labels[idx]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run(50)
    start = time.perf_counter()
    run(args.steps)
    print(f"{status}, {args.precision}: {32 * args.steps / (time.perf_counter() - start):,.0f} img/s")


if __name__ == "__main__":
    main()
