"""``avdit encode``: latents of a dataset in safetensors shards with an index, for the diffusion trainer.

OUT/index.json lists the shards, the clip count, the latent shapes, the layout and the codecs (with a
digest of their encoders' weights, so a trainer can refuse latents made by other codecs). Each shard holds ``video``
(N, Cv, Tv, h, w) and ``audio`` (N, Ca, Ta) float32 latents, normalised. Shards are written atomically and a
rerun skips the shards already on disk.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from avdit.atomic import atomic_path, write_json
from avdit.codecs.interface import CodecPair
from avdit.data.datasets import open_dataset
from avdit.data.loader import make_loader
from avdit.latents import AV

SHARD_INDEX = "index.json"
_WEIGHT_FILES = ("video.safetensors", "audio.safetensors")  # what a codec folder holds beside its JSON


def codec_digest(folder: str | Path) -> str:
    """sha256 over what makes the latents of a codec folder: every stored tensor but the decoders' (``net.decoder.``),
    so a decoder trained further (``avdit train-codec --decoder-steps``) keeps the latents and models made before."""
    digest = hashlib.sha256()
    for name in _WEIGHT_FILES:
        with safe_open(Path(folder) / name, "pt") as weights:
            for key in sorted(weights.keys()):
                if not key.startswith("net.decoder."):
                    digest.update(key.encode())
                    digest.update(weights.get_tensor(key).contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


# Digests recorded before ``codec_digest`` left the decoders out, of codecs whose encoders are still shipped: the
# bundled codecs before their video decoder phase (same encoders and statistics, bit for bit).
_EARLIER_DIGESTS = {"32dc0a81348a1c9d": "3b0d7e06341cf272"}


def codec_digest_matches(recorded: str, folder: str | Path) -> bool:
    """Whether latents or a model recorded with ``recorded`` were made by the codecs in ``folder``. Digests
    written before ``codec_digest`` left the decoders out (sha256 over the whole weight files) still match
    the unchanged files, and those of the earlier bundled codecs match the bundled codecs of today."""
    if _EARLIER_DIGESTS.get(recorded, recorded) == codec_digest(folder):
        return True
    files = hashlib.sha256()
    for name in _WEIGHT_FILES:
        files.update((Path(folder) / name).read_bytes())
    return recorded == files.hexdigest()[:16]


def encode_dataset(data: str | Path, codecs: CodecPair, codecs_dir: str | Path, out: str | Path, split: str = "train",
                   num: int | None = None, shard_size: int = 1024, batch_size: int = 16, workers: int = 0,
                   progress: bool = True) -> dict:
    """Encode ``num`` clips (all, for a folder) of a dataset split into shards under ``out``; returns the index."""
    if str(data) == "bouncing-tones" and num is None:
        raise ValueError("give --num: how many Bouncing Tones clips to make and encode")
    dataset = open_dataset(data, split, size=num)
    total = len(dataset) if num is None else min(num, len(dataset))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    layout = codecs.layout
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
        "data": str(data), "split": split, "clips": total, "shards": shards, "layout": layout.to_dict(),
        "video_shape": list(codecs.video.latent_shape(layout.frames, layout.height, layout.width)),
        "audio_shape": list(codecs.audio.latent_shape(layout.num_samples)),
        "codecs": str(Path(codecs_dir).resolve()), "codec_digest": codec_digest(codecs_dir),
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
    parts = [load_file(folder / shard["file"]) for shard in index["shards"]]
    return AV(torch.cat([p["video"] for p in parts]), torch.cat([p["audio"] for p in parts])), index
