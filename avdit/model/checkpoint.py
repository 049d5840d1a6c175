"""A published model is a folder: ``model.json`` (the network's config under "model", and whatever else the
writer records: training settings, the codecs it was trained with and their digest, the step) and
``model.safetensors`` (its weights). ``AVDiT.save_pretrained`` / ``AVDiT.from_pretrained`` read and write it
through these functions; both files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from avdit.utils.atomic import atomic_path, write_json
from avdit.model.config import AVDiTConfig

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "model.json"


def write(folder: str | Path, config: AVDiTConfig, state: dict[str, torch.Tensor], info: dict | None = None,
          half: bool = False) -> Path:
    """Write ``state`` (floating tensors as fp16 when ``half``) and ``{"model": config, **info}`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in state.items()}
    with atomic_path(folder / WEIGHTS_NAME, ".safetensors") as tmp:
        save_file(tensors, tmp)
    write_json(folder / CONFIG_NAME, {"model": config.to_dict(), **{k: v for k, v in (info or {}).items()
                                                                      if k != "model"}})
    return folder


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME} "
                                "(written by `avdit train` or `avdit export`)")
    return path


def read_info(folder: str | Path) -> dict:
    """The whole ``model.json`` of a checkpoint folder."""
    return json.loads(_require(Path(folder), CONFIG_NAME).read_text())


def read(folder: str | Path) -> tuple[AVDiTConfig, dict[str, torch.Tensor]]:
    """The network's config and its weights as stored (fp16 in an exported checkpoint)."""
    folder = Path(folder)
    info = read_info(folder)
    return AVDiTConfig.from_dict(info["model"]), load_file(_require(folder, WEIGHTS_NAME))
