"""LoRA fine-tuning of AVDiT with PEFT: low-rank adapters on the attention and MLP projections, saved alone.

A LoRA run trains ``W + (alpha / r) B A`` for the chosen projections of every block, the base weights frozen
(Hu et al. 2021, through PEFT's ``inject_adapter_in_model``). Its published folder holds only the adapters
(``adapter.safetensors``) and ``adapter.json``: rank, alpha, targets, and the base checkpoint's folder and weight
digest. Loading it (``AVDiT.from_pretrained``) finds the base, checks the digest, adds the adapters and merges them
into the base weights, so sampling runs at the base model's speed. ``merge_adapters`` makes a plain AVDiT of any
model with adapters (``avdit export --merge``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

ADAPTER_JSON, ADAPTER_WEIGHTS = "adapter.json", "adapter.safetensors"
# the projections each target names, in every block (``avdit.model.transformer.Block``)
TARGETS = {"attention": ("qkv", "proj"), "mlp": ("mlp.0", "mlp.2"), "adaln": ("adaLN",)}
DEFAULT_TARGETS = "attention,mlp"


class LoraError(ValueError):
    """An adapter folder that cannot be used: its base is missing or has other weights."""


def parse_targets(text: str) -> tuple[str, ...]:
    """``attention,mlp`` -> ("attention", "mlp"); each must be one of ``TARGETS``."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        raise ValueError(f"lora_targets={text!r}: give a comma-separated list of {', '.join(TARGETS)}")
    return names


def _peft():
    try:
        import peft
    except ImportError:
        raise ImportError("LoRA needs PEFT: pip install peft (or pip install -e '.[lora]')") from None
    return peft


def add_adapters(model: nn.Module, rank: int, targets: str = DEFAULT_TARGETS, alpha: float | None = None
                 ) -> nn.Module:
    """Add LoRA adapters of ``rank`` to ``targets``' projections of every block of ``model`` (in place) and freeze
    everything else. ``alpha`` (default: ``rank``, a scale of 1). PEFT initialises B to zero: the model is unchanged
    until trained."""
    if rank < 1:
        raise ValueError(f"lora={rank}: give a rank >= 1")
    peft = _peft()
    modules = "|".join(m.replace(".", r"\.") for t in parse_targets(targets) for m in TARGETS[t])
    config = peft.LoraConfig(r=rank, lora_alpha=alpha or rank, lora_dropout=0.0,
                             target_modules=rf".*blocks\.\d+\.({modules})$")
    peft.inject_adapter_in_model(config, model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_("lora_" in name)
    return model


def adapter_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapters' tensors of a full state dict of a model with adapters."""
    return {k: v for k, v in state.items() if "lora_" in k}


def merge_adapters(model: nn.Module) -> nn.Module:
    """``model`` with every adapter merged into its base weight and removed (in place): a plain model whose state
    dict has the base model's names."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.get_base_layer())
    return model


def write_adapters(folder: str | Path, state: dict[str, torch.Tensor], lora: dict, base: str | Path,
                   info: dict | None = None) -> Path:
    """Write the adapters of ``state`` (a full state dict of a model with adapters) into ``folder`` with
    ``adapter.json``: ``lora`` (rank, alpha, targets), the base checkpoint's folder and weight digest, and ``info``."""
    from safetensors.torch import save_file

    from avdit.utils.atomic import atomic_path, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in adapter_state(state).items()}
    with atomic_path(folder / ADAPTER_WEIGHTS, ".safetensors") as tmp:
        save_file(tensors, tmp)
    base = Path(base).resolve()
    write_json(folder / ADAPTER_JSON, {**(info or {}), "lora": lora, "base": str(base),
                                       "base_digest": weights_digest(base)})
    return folder


def weights_digest(folder: str | Path) -> str:
    """sha256 of a checkpoint's weight file, 16 hex digits: which base an adapter was trained on."""
    digest = hashlib.sha256()
    with open(Path(folder) / "model.safetensors", "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def is_adapter(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_JSON).exists()


def read_adapter_info(folder: str | Path) -> dict:
    return json.loads((Path(folder) / ADAPTER_JSON).read_text())


def base_folder(folder: str | Path) -> Path:
    """The base checkpoint an adapter folder names, checked against its recorded weight digest."""
    info = read_adapter_info(folder)
    base = Path(info["base"])
    if not (base / "model.safetensors").exists():
        raise LoraError(f"{folder} holds LoRA adapters of the checkpoint in {base}, which is not there now; put that "
                        "checkpoint back there (or edit 'base' in adapter.json)")
    if weights_digest(base) != info["base_digest"]:
        raise LoraError(f"{folder} holds LoRA adapters of other weights than those in {base} now (digest "
                        f"{info['base_digest']} there, {weights_digest(base)} here); give it its own base")
    return base


def load_merged(folder: str | Path, base_model: nn.Module) -> nn.Module:
    """``base_model`` (the base checkpoint, loaded) with the adapters of ``folder`` added and merged."""
    lora = read_adapter_info(folder)["lora"]
    add_adapters(base_model, lora["rank"], lora["targets"], lora["alpha"])
    weights = load_file(str(Path(folder) / ADAPTER_WEIGHTS))
    missing = [k for k in adapter_state(base_model.state_dict()) if k not in weights]
    if missing:
        raise LoraError(f"{folder}/{ADAPTER_WEIGHTS} lacks {len(missing)} adapter tensors (e.g. {missing[0]})")
    base_model.load_state_dict(weights, strict=False)
    return merge_adapters(base_model).requires_grad_(True)
