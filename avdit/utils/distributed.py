"""One code path for one CPU process, one GPU and torchrun (edm2's ``distributed.init``, nanochat's compute_init).

Under torchrun the environment names the rank and world and a process group always starts, a world of one
included (so DDP over NCCL and FSDP can be exercised on a single GPU); without torchrun a single process takes
the same path with no process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from avdit.utils.devices import resolve_device


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    group: bool = False  # a process group is running (launched by torchrun): DDP or FSDP wraps the model

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str | None = None) -> Dist:
    """Start the process group when torchrun launched us (NCCL on CUDA, gloo on CPU); pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device)
    if target.type == "cuda":
        target = torch.device("cuda", local_rank if target.index is None else target.index)  # a rank per GPU
        torch.cuda.set_device(target)
    group = "TORCHELASTIC_RUN_ID" in os.environ or world > 1  # torchrun sets the former
    if group and not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, target, group)


def barrier(d: Dist) -> None:
    if d.group:
        dist.barrier()


def shutdown(d: Dist) -> None:
    if d.group and dist.is_initialized():
        dist.destroy_process_group()


def all_mean(d: Dist, value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (for logging)."""
    if d.group:
        value = value.clone()
        dist.all_reduce(value)
        value /= d.world
    return value


def unwrapped(net: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (``net`` itself where it is not wrapped)."""
    return net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net
