"""DataLoaders whose worker processes are safe next to PyAV and torch threads."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


def make_loader(dataset: Dataset, batch_size: int, num_workers: int = 0, shuffle: bool = False,
                seed: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader that starts workers with ``forkserver``, never a plain ``fork``.

    A forked worker inherits the parent's FFmpeg and OpenMP thread pools without their threads; PyAV frees
    its decoders from the garbage collector (containers and streams form reference cycles), so a worker
    that collects one made in the parent can deadlock. Workers from a fork server start clean.
    """
    generator = torch.Generator().manual_seed(seed)
    extra = {"multiprocessing_context": "forkserver", "persistent_workers": True} if num_workers > 0 else {}
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      drop_last=drop_last, generator=generator, **extra)
