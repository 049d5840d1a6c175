"""What a run keeps on disk: the full training state (resume) and the inference snapshot (generation).

Both are written atomically. ``state.pt`` (model, EMA, optimizer, step, config) is loaded with
``weights_only=True``; the snapshot is ``model.safetensors`` (EMA weights) + ``model.json`` (model config,
training config, the codecs it was trained with and their digest).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from avdit.atomic import atomic_path, write_json
from avdit.model import AVDiT, AVDiTConfig

STATE = "state.pt"
SNAPSHOT = "model.safetensors"
SNAPSHOT_CONFIG = "model.json"


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


def save_snapshot(run_dir: Path, ema_state: dict, config: AVDiTConfig, info: dict) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in ema_state.items()}
    with atomic_path(run_dir / SNAPSHOT, ".safetensors") as tmp:
        save_file(state, tmp)
    write_json(run_dir / SNAPSHOT_CONFIG, {"model": config.to_dict(), **info})


def load_snapshot(folder: str | Path) -> tuple[AVDiT, dict]:
    """The EMA model of a run (or a bundled checkpoint) and its JSON description."""
    folder = Path(folder)
    for name in (SNAPSHOT_CONFIG, SNAPSHOT):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} not found: a checkpoint folder holds {SNAPSHOT_CONFIG} and "
                                    f"{SNAPSHOT} (written by `avdit train`)")
    info = json.loads((folder / SNAPSHOT_CONFIG).read_text())
    model = AVDiT(AVDiTConfig.from_dict(info["model"]))
    model.load_state_dict(load_file(folder / SNAPSHOT))
    return model.eval(), info


def export_snapshot(run_dir: str | Path, out: str | Path, half: bool = True) -> Path:
    """Copy a run's inference snapshot to ``out`` (fp16 weights unless ``half=False``): a small checkpoint to
    share or bundle. Its JSON keeps the codec digest, so it still refuses other codecs; the path
    of the bundled codecs is dropped, so the checkpoint finds them wherever avdit is installed."""
    from avdit.codecs.interface import bundled_codecs_dir

    run_dir, out = Path(run_dir), Path(out)
    model, info = load_snapshot(run_dir)
    if info.get("codecs") and Path(info["codecs"]).resolve() == bundled_codecs_dir().resolve():
        info = {**info, "codecs": None}
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / SNAPSHOT, ".safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, tmp)
    write_json(out / SNAPSHOT_CONFIG, {**info, "exported_from": str(run_dir), "dtype": "float16" if half else "float32"})
    return out
