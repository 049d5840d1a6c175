"""One code path for one CPU process, one GPU and torchrun (edm2's ``distributed.init``, nanochat's compute_init).

Under torchrun the environment names the rank and world; without it this fills the same variables so a single
process takes the same path (world of one, no process group).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str | None = None) -> Dist:
    """Start the process group when torchrun launched us (NCCL on CUDA, gloo on CPU); pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, target)


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def shutdown(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def all_mean(d: Dist, value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (for logging)."""
    if d.world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= d.world
    return value
