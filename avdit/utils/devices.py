"""Which device a command runs its model on."""

from __future__ import annotations

import torch


def resolve_device(device: str | None = None) -> torch.device:
    """The device named (``cpu``, ``cuda``, ``cuda:1``), or a GPU when there is one; a clear error for a bad name
    or a GPU torch cannot see."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r} is not a device; give cpu or cuda") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device}: torch sees no CUDA GPU here (a CPU build of torch, or no driver); "
                         "use device=cpu")
    return target
