"""Data-parallel training on PyTorch DDP: the same loop on one process or many (torchrun sets the env).

    torchrun --standalone --nproc_per_node=2 -m fashion_cnn train --data-dir ../shared/data/fashion-mnist
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST:29500 -m fashion_cnn train ...        # on every machine, node_rank 0..N-1

Every rank holds the whole dataset in memory and reads its share of each global batch (``--batch-size`` is
the global batch, split evenly across ranks, so the gradient DDP averages is the single-process one).
Metrics are summed across ranks, so early stopping decides the same on every rank; only rank 0 writes files.
gloo is the backend on the CPU, nccl on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import FashionCNNError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def info() -> DistInfo:
    """This process's place in the job (1 process when not launched by torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())
    return DistInfo()


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when torchrun launched us (``WORLD_SIZE`` > 1); pick this rank's GPU."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return DistInfo(), device
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return info(), device


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast(obj):
    """Rank 0's value of a small Python object on every rank (e.g. the run directory's path)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def local_batch(batch_size: int, world_size: int) -> int:
    if batch_size % world_size:
        raise FashionCNNError(
            f"batch size {batch_size} does not divide evenly over {world_size} processes; "
            f"pass a --batch-size that is a multiple of {world_size} (it is the global batch)"
        )
    return batch_size // world_size


def all_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """Sum tensors across ranks (one collective for all of them); identity on one process."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    flat = torch.stack([v.detach().to(torch.float64) for v in values])
    dist.all_reduce(flat)
    return list(flat.unbind())
