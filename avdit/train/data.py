"""Training latents: shards from ``avdit encode``, or Bouncing Tones encoded once into RUN_DIR/latents.

Batches are drawn by index from a generator seeded by (seed, step) (``avdit.utils.seeding``), the same on every rank:
each rank takes its slice of the global batch, a resumed run continues the same stream, and the data position is
the step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from avdit.codecs.digest import codec_digest, codec_digest_matches
from avdit.codecs.interface import CodecPair, bundled_codecs_dir, load_codecs
from avdit.codecs.shards import SHARD_INDEX, LatentShards, encode_dataset, open_shards
from avdit.latents import AV
from avdit.layout import ClipLayout
from avdit.train.config import TrainConfig
from avdit.utils import distributed


def codecs_folder(config: TrainConfig, index: dict | None = None) -> Path:
    """The run's codecs: ``--codecs``; else those the latents were made with (their shard index names them);
    else, for Bouncing Tones, the bundled ones."""
    if config.codecs:
        return Path(config.codecs)
    if index is not None and index.get("codecs"):
        folder = Path(index["codecs"])
        if not folder.is_dir():
            raise ValueError(f"the latents in {config.data} were made with the codecs in {folder}, which is not there "
                             "now; give codecs= with that folder")
        return folder
    if config.data != "bouncing-tones":
        shard_index = Path(config.data) / SHARD_INDEX
        if shard_index.is_file():
            return codecs_folder(config, json.loads(shard_index.read_text()))
    return bundled_codecs_dir()


def training_latents(config: TrainConfig, run_dir: Path, d: distributed.Dist) -> tuple[LatentShards, ClipLayout, dict]:
    """The training latents (normalised), read from their shards a batch at a time; their layout and shard index."""
    folder = codecs_folder(config)
    if config.data == "bouncing-tones":
        shards = run_dir / "latents"
        if d.main and not (shards / SHARD_INDEX).exists():
            encode_dataset("bouncing-tones", load_codecs(folder), folder, shards, num=config.num_clips,
                           progress=True)
        distributed.barrier(d)
    else:
        shards = Path(config.data)
    latents, index = open_shards(shards)
    if not codec_digest_matches(index["codec_digest"], folder):
        fix = (f"delete {shards} and rerun to encode again" if config.data == "bouncing-tones"
               else f"encode again with `avdit encode ... --codecs {folder}`")
        raise ValueError(f"{shards} holds latents of other codecs (digest {index['codec_digest']}, "
                         f"{folder} has {codec_digest(folder)}); {fix}")
    return latents, ClipLayout.from_dict(index["layout"]), index


def held_out_latents(codecs: CodecPair, seed: int, count: int) -> AV:
    """Latents of the first ``count`` held-out Bouncing Tones clips (fixed inputs for periodic samples)."""
    from avdit.data.datasets import BouncingTonesDataset

    dataset = BouncingTonesDataset(count, seed=seed, split="test")
    items = [dataset[i] for i in range(count)]
    return codecs.encode(torch.stack([i["video"] for i in items]), torch.stack([i["audio"] for i in items]))


def draw_indices(num: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """(batch,) clip indices for one step's global batch."""
    return torch.randint(0, num, (batch,), generator=generator)


@dataclass
class Batch:
    """One step's global batch, drawn from the generator of (seed, step): the same on every rank."""

    x0: AV  # latents (B, ...)
    noise: AV  # like x0
    t: torch.Tensor  # (B, M, N) noise level of each cell
    strategy: torch.Tensor  # (B,) index of the MoNL strategy that drew t (a distillation's: of the pair's task)
    self_condition: torch.Tensor | None  # (B,) bool, or None when the run does not self-condition
