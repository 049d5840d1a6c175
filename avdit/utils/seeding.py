"""Random streams keyed by (seed, step): what a training step draws does not depend on where a run was resumed."""

from __future__ import annotations

import torch


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """The random stream of one step (and one purpose), independent of rank and of where a run was resumed."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 16 + stream)
