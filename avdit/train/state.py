"""The resume state of a run: ``state.pt`` (model, EMA, optimizer, step, config), written atomically and loaded
with ``weights_only=True``. The run's inference snapshot is the EMA model's ``save_pretrained`` folder."""

from __future__ import annotations

from pathlib import Path

import torch

from avdit.utils.atomic import atomic_path

STATE = "state.pt"


def clean_stale_temporaries(run_dir: Path) -> None:
    """Temporary files a killed writer left behind (the real files were never touched)."""
    for stale in run_dir.glob(".*.tmp*"):
        stale.unlink()


def save_state(run_dir: Path, model: dict, ema: dict, optimizer: dict, step: int, config: dict) -> None:
    """Full state dicts of model, EMA and optimizer (see ``sharding`` for how a sharded run gathers them)."""
    with atomic_path(run_dir / STATE, ".pt") as tmp:
        torch.save({"model": model, "ema": ema, "optimizer": optimizer, "step": step, "config": config}, tmp)


def load_state(run_dir: Path) -> dict | None:
    path = run_dir / STATE
    return torch.load(path, weights_only=True, map_location="cpu") if path.exists() else None
