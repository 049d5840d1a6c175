"""``avdit encode``: latents of a dataset in safetensors shards with an index, for the diffusion trainer.

OUT/index.json lists the shards, the clip count, the latent shapes, the layout and the codecs (with a
digest of their encoders' weights, so a trainer can refuse latents made by other codecs). Each shard holds ``video``
(N, Cv, Tv, h, w) and ``audio`` (N, Ca, Ta) float32 latents, normalised. Shards are written atomically and a
rerun skips the shards already on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from avdit.atomic import atomic_path, write_json
from avdit.codecs.digest import codec_digest
from avdit.codecs.interface import CodecPair, describe_geometry, geometry_record
from avdit.data.datasets import dataset_geometry, open_dataset
from avdit.data.loader import make_loader
from avdit.latents import AV
from avdit.layout import same_geometry
from avdit.resume import differences

SHARD_INDEX = "index.json"
def _check_shard_folder(out: Path, plan: dict) -> None:
    """Shards already in ``out`` must come from this very plan (data, split, count, shard size, codecs); else refuse,
    so latents of other codecs or data are never mixed in and passed off under this index."""
    index_path = out / SHARD_INDEX
    existing = sorted(p.name for p in out.glob("shard_*.safetensors"))
    if not index_path.exists():
        if existing:
            raise ValueError(f"{out} holds shards ({', '.join(existing[:3])}, ...) without an {SHARD_INDEX}: not made by "
                             "`avdit encode`, or by an interrupted older version; delete them or choose another --out")
        return
    changed = differences(json.loads(index_path.read_text()), plan)
    if changed and existing:
        raise ValueError(f"{out} holds latents made otherwise ({changed}); delete the folder to encode again, or "
                         "choose another --out")


def encode_dataset(data: str | Path, codecs: CodecPair, codecs_dir: str | Path, out: str | Path, split: str = "train",
                   num: int | None = None, shard_size: int = 1024, batch_size: int = 16, workers: int = 0,
                   progress: bool = True) -> dict:
    """Encode ``num`` clips (all, for a folder) of a dataset split into shards under ``out``; returns the index.

    A rerun keeps the shards written so far (it resumes) when they come from the same data, count and codecs;
    it refuses a folder with any other latents."""
    if str(data) == "bouncing-tones" and num is None:
        raise ValueError("give --num: how many Bouncing Tones clips to make and encode")
    dataset = open_dataset(data, split, size=num, cache_mb=0)  # one pass: nothing to cache
    layout = codecs.layout
    data_layout = dataset_geometry(dataset)
    if not same_geometry(data_layout, layout):
        raise ValueError(f"{data} holds clips of {describe_geometry(geometry_record(data_layout))}; the codecs in "
                         f"{codecs_dir} take {describe_geometry(geometry_record(layout))}: train codecs on this data "
                         f"(`avdit train-codec video --data {data}`)")
    total = len(dataset) if num is None else min(num, len(dataset))
    if total == 0:
        raise ValueError(f"{data} has no {split} clips to encode")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = {"data": str(data), "split": split, "clips": total, "shard_size": shard_size,
            "codec_digest": codec_digest(codecs_dir)}
    _check_shard_folder(out, plan)
    write_json(out / SHARD_INDEX, {**plan, "complete": False})
    shards = []
    bar = tqdm(total=total, desc="encoding", unit="clip", disable=not progress)
    for first in range(0, total, shard_size):
        count = min(shard_size, total - first)
        name = f"shard_{first // shard_size:05d}.safetensors"
        shards.append({"file": name, "clips": count})
        if (out / name).exists():
            bar.update(count)
            continue
        subset = torch.utils.data.Subset(dataset, range(first, first + count))
        videos, audios = [], []
        for batch in make_loader(subset, batch_size, workers):
            latents = codecs.encode(batch["video"], batch["audio"])
            videos.append(latents.video)
            audios.append(latents.audio)
            bar.update(batch["video"].shape[0])
        with atomic_path(out / name, ".safetensors") as tmp:
            save_file({"video": torch.cat(videos).contiguous(), "audio": torch.cat(audios).contiguous()}, tmp)
    bar.close()
    index = {
        **plan, "complete": True, "shards": shards, "layout": layout.to_dict(),
        "video_shape": list(codecs.video.latent_shape(layout.frames, layout.height, layout.width)),
        "audio_shape": list(codecs.audio.latent_shape(layout.num_samples)),
        "codecs": str(Path(codecs_dir).resolve()),
    }
    write_json(out / SHARD_INDEX, index)
    return index


def load_shards(folder: str | Path) -> tuple[AV, dict]:
    """All latents of a shard folder in memory (Bouncing Tones latents are small) and its index."""
    folder = Path(folder)
    index_path = folder / SHARD_INDEX
    if not index_path.exists():
        raise FileNotFoundError(f"{index_path} not found: make latents with `avdit encode DATA --codecs DIR --out {folder}`")
    index = json.loads(index_path.read_text())
    if not index.get("complete", True):
        raise ValueError(f"{folder} is still being encoded, or its encoding was interrupted: rerun the same "
                         "`avdit encode` command to finish it")
    parts = [load_file(folder / shard["file"]) for shard in index["shards"]]
    return AV(torch.cat([p["video"] for p in parts]), torch.cat([p["audio"] for p in parts])), index
