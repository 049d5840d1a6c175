"""FSDP (``fully_shard``, FSDP2) for presets too big to replicate on every rank, such as ``paper``.

Each transformer block and then the whole model are sharded over the ranks, the EMA copy the same way, so
the EMA update stays a local operation on each rank's shard. Checkpoints hold full (unsharded) state dicts in
the same format as an unsharded run, gathered to rank 0 (``torch.distributed.checkpoint.state_dict``): a run
can be resumed with or without FSDP, on any number of ranks.
"""

from __future__ import annotations

import torch
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_optimizer_state_dict)

from avdit.utils.distributed import Dist
from avdit.model import AVDiT

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def shard(model: AVDiT, d: Dist) -> None:
    """Shard ``model`` in place: every block, then the root (its embeddings and heads)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(d.device.type, (d.world,))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def full_state_dict(module: torch.nn.Module, sharded: bool) -> dict[str, torch.Tensor]:
    """The full state dict on CPU (on rank 0; a collective call when sharded, empty on other ranks)."""
    if sharded:
        return get_model_state_dict(module, options=FULL)
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, sharded: bool) -> dict:
    """The optimizer state in ``torch.optim``'s own format (parameters by index), whether sharded or not."""
    if not sharded:
        return optimizer.state_dict()
    by_name = get_optimizer_state_dict(model, optimizer, options=FULL)  # parameters by name
    if not by_name:
        return {}
    index = {name: i for i, (name, _) in enumerate(model.named_parameters())}
    return {"state": {index[name]: s for name, s in by_name["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in by_name["param_groups"]]}


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict,
                         sharded: bool) -> None:
    """Load a state saved by ``full_optimizer_state`` (any sharding) into ``optimizer``."""
    if not sharded:
        optimizer.load_state_dict(state)
        return
    names = [name for name, _ in model.named_parameters()]
    by_name = {"state": {names[i]: s for i, s in state["state"].items()},
               "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in state["param_groups"]]}
    set_optimizer_state_dict(model, optimizer, by_name, options=StateDictOptions(full_state_dict=True))
