"""``avdit encode``: latents of a dataset in safetensors shards with an index, for the diffusion trainer.

OUT/index.json lists the shards, the clip count, the latent shapes, the layout and the codecs (with a
digest of their encoders' weights, so a trainer can refuse latents made by other codecs). Each shard holds ``video``
(N, Cv, Tv, h, w) and ``audio`` (N, Ca, Ta) float32 latents, normalised. Shards are written atomically and a
rerun skips the shards already on disk. Under torchrun the ranks share the shards (shard k is rank k % world's)
and write the files one process writes (bit for bit on the CPU: tests/test_encode_distributed.py). The trainer
reads them a batch at a time (:func:`open_shards`), so the data may be larger than memory; :func:`load_shards` holds
them all in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from avdit.utils import devices, distributed
from avdit.utils.atomic import atomic_path, write_json
from avdit.codecs.digest import codec_digest
from avdit.codecs.interface import CodecPair, describe_geometry, geometry_record
from avdit.data.datasets import dataset_geometry, open_dataset
from avdit.data.loader import make_loader
from avdit.latents import AV
from avdit.layout import same_geometry
from avdit.utils.resume import differences

SHARD_INDEX = "index.json"


def check_shard_folder(out: Path, plan: dict) -> None:
    """Shards already in ``out`` must come from this very plan (data, split, count, shard size, codecs); else refuse,
    so latents of other codecs or data are never mixed in and passed off under this index."""
    index_path = out / SHARD_INDEX
    existing = sorted(p.name for p in out.glob("shard_*.safetensors"))
    if not index_path.exists():
        if existing:
            raise ValueError(f"{out} holds shards ({', '.join(existing[:3])}, ...) without an {SHARD_INDEX}: not "
                             "made by `avdit encode`, or by an interrupted older version; delete them or choose "
                             "another out=")
        return
    changed = differences(json.loads(index_path.read_text()), plan)
    if changed and existing:
        raise ValueError(f"{out} holds latents made otherwise ({changed}); delete the folder to encode again, or "
                         "choose another out=")


def encode_dataset(data: str | Path, codecs: CodecPair, codecs_dir: str | Path, out: str | Path, split: str = "train",
                   num: int | None = None, shard_size: int = 1024, batch_size: int = 16, workers: int = 0,
                   progress: bool = True, device: str | None = None, ranks: distributed.Dist | None = None) -> dict:
    """Encode ``num`` clips (all, for a folder) of a dataset split into shards under ``out``; returns the index.

    A rerun keeps the shards written so far (it resumes) when they come from the same data, count and codecs;
    it refuses a folder with any other latents. ``device``: where the codecs run (default: a GPU when there is one).
    ``ranks``: the processes of a torchrun launch (``distributed.init``) that share the shards, each on its own
    device: rank k % world encodes shard k, and rank 0 writes the index when every shard is on disk (``out`` must be
    storage they all see); every rank calls this and gets the index. None: this process alone, on ``device``."""
    d = ranks or distributed.Dist(0, 1, 0, devices.resolve_device(device))
    if str(data) == "bouncing-tones" and num is None:
        raise ValueError("give num=: how many Bouncing Tones clips to make and encode")
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
    check_shard_folder(out, plan)  # on every rank, before any writes: all refuse alike
    distributed.barrier(d)
    shards = [{"file": f"shard_{k:05d}.safetensors", "clips": min(shard_size, total - first)}
              for k, first in enumerate(range(0, total, shard_size))]
    if d.main:
        done = sum((out / shard["file"]).exists() for shard in shards)
        if done and progress:
            print(f"avdit encode: resuming in {out}: {done} shard(s) already written", flush=True)
        write_json(out / SHARD_INDEX, {**plan, "complete": False})
    distributed.barrier(d)  # the unfinished index is on disk before any shard
    mine = [(k * shard_size, shard) for k, shard in enumerate(shards) if k % d.world == d.rank]
    home = codecs.video.latent_mean.device
    codecs.to(d.device)
    bar = tqdm(total=sum(shard["clips"] for _, shard in mine), desc="encoding", unit="clip",
               disable=not (progress and d.main))
    for first, shard in mine:
        if (out / shard["file"]).exists():
            bar.update(shard["clips"])
            continue
        subset = torch.utils.data.Subset(dataset, range(first, first + shard["clips"]))
        videos, audios = [], []
        for batch in make_loader(subset, batch_size, workers):
            latents = codecs.encode(batch["video"].to(d.device), batch["audio"].to(d.device))
            videos.append(latents.video.cpu())  # (B, Cv, Tv, h, w)
            audios.append(latents.audio.cpu())  # (B, Ca, Ta)
            bar.update(batch["video"].shape[0])
        with atomic_path(out / shard["file"], ".safetensors") as tmp:
            save_file({"video": torch.cat(videos).contiguous(), "audio": torch.cat(audios).contiguous()}, tmp)
    bar.close()
    codecs.to(home)
    distributed.barrier(d)  # every rank's shards are on disk
    index = {
        **plan, "complete": True, "shards": shards, "layout": layout.to_dict(),
        "video_shape": list(codecs.video.latent_shape(layout.frames, layout.height, layout.width)),
        "audio_shape": list(codecs.audio.latent_shape(layout.num_samples)),
        "codecs": str(Path(codecs_dir).resolve()),
    }
    if d.main:
        missing = [shard["file"] for shard in shards if not (out / shard["file"]).exists()]
        if missing:
            raise ValueError(f"{', '.join(missing[:3])} missing from {out} after every rank finished: the ranks do "
                             "not share that folder; give out= on storage every machine sees")
        write_json(out / SHARD_INDEX, index)
    distributed.barrier(d)  # the index is written when any rank returns
    return index


def read_index(folder: str | Path) -> dict:
    """The index of a finished shard folder; a clear error for a missing or unfinished one."""
    folder = Path(folder)
    index_path = folder / SHARD_INDEX
    if not index_path.exists():
        raise FileNotFoundError(f"{index_path} not found: make latents with `avdit encode DATA --codecs DIR --out "
                                f"{folder}`")
    index = json.loads(index_path.read_text())
    if not index.get("complete", True):
        raise ValueError(f"{folder} is still being encoded, or its encoding was interrupted: rerun the same "
                         "`avdit encode` command to finish it")
    return index


def load_shards(folder: str | Path) -> tuple[AV, dict]:
    """All latents of a shard folder in memory (Bouncing Tones latents are small) and its index."""
    folder = Path(folder)
    index = read_index(folder)
    parts = [load_file(folder / shard["file"]) for shard in index["shards"]]
    return AV(torch.cat([p["video"] for p in parts]), torch.cat([p["audio"] for p in parts])), index


class LatentShards:
    """The latents of a shard folder, read from its files a batch at a time: memory holds the batch, not the data.

    ``take(idx)`` equals ``AV(all.video[idx], all.audio[idx])`` of :func:`load_shards` bit for bit: the rows are
    read as bytes at their offsets in the safetensors files (where each file's header puts them), with plain reads
    and no memory map, so nothing stays resident between batches but the operating system's page cache. The
    store keeps each shard's header (a few numbers) and no data.
    """

    def __init__(self, folder: str | Path, index: dict):
        self.folder = Path(folder)
        self.files = [self.folder / shard["file"] for shard in index["shards"]]
        counts = [shard["clips"] for shard in index["shards"]]
        self.starts = torch.tensor([0, *counts]).cumsum(0)  # (shards + 1,) first clip of each shard, then the total
        self._headers = [_safetensors_header(path) for path in self.files]  # per shard {"video": _Stored, "audio": ...}
        first = self._headers[0]
        for path, count, header in zip(self.files, counts, self._headers):
            if any(header[k].shape != (count, *first[k].shape[1:]) or header[k].dtype != first[k].dtype
                   for k in ("video", "audio")):
                raise ValueError(f"{path} holds {_describe(header)} where its {SHARD_INDEX} expects "
                                 f"{_describe(first, count)}: encode again")
        self.video_shape = first["video"].shape[1:]  # (Cv, Tv, h, w) of one clip
        self.audio_shape = first["audio"].shape[1:]  # (Ca, Ta)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def batch_size(self) -> int:
        """The clip count (as :attr:`AV.batch_size` of all latents in memory)."""
        return len(self)

    def take(self, idx: torch.Tensor) -> AV:
        """Latents of clips ``idx`` (B,): video (B, Cv, Tv, h, w), audio (B, Ca, Ta)."""
        return AV(*self.take_named(idx, ("video", "audio")))

    def take_named(self, idx: torch.Tensor, names: tuple[str, ...]) -> list[torch.Tensor]:
        """Rows ``idx`` (B,) of the shards' tensors ``names`` (a teacher-pair folder holds more than the latents:
        ``avdit.train.distill``), each (B, ...) as stored."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        if idx.numel() and not (0 <= int(idx.min()) and int(idx.max()) < len(self)):
            raise IndexError(f"clip indices {idx.min().item()}..{idx.max().item()} outside the {len(self)} clips "
                             f"in {self.folder}")
        missing = [name for name in names if name not in self._headers[0]]
        if missing:
            raise KeyError(f"{self.files[0]} holds no {', '.join(missing)} (it has {', '.join(self._headers[0])})")
        wanted, where = torch.unique(idx, sorted=True, return_inverse=True)  # each clip read once, in file order
        shard_of = torch.searchsorted(self.starts, wanted, right=True) - 1  # (U,)
        first = self._headers[0]
        out = [torch.empty(len(wanted), *first[name].shape[1:], dtype=first[name].dtype) for name in names]  # (U, ...)
        rows_out = [part.reshape(len(part), part[0].numel() if len(part) else 0).view(torch.uint8).numpy()
                    for part in out]  # (U, bytes a clip)
        done = 0
        for s in shard_of.unique().tolist():
            rows = (wanted[shard_of == s] - self.starts[s]).tolist()
            with open(self.files[s], "rb", buffering=0) as f:
                for a, b in _runs(rows):
                    for name, buffer in zip(names, rows_out):
                        f.seek(self._headers[s][name].offset + a * buffer.shape[1])
                        target = buffer[done:done + b - a]
                        if f.readinto(target) != target.nbytes:
                            raise ValueError(f"{self.files[s]} is shorter than its header says: encode again")
                    done += b - a
        return [part[where] for part in out]


class _Stored(NamedTuple):
    """A tensor in a safetensors file."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    offset: int  # of its data from the start of the file, in bytes


def _safetensors_header(path: Path) -> dict[str, _Stored]:
    """The tensors of a safetensors file, from its header (8 bytes of little-endian length, then JSON)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: rerun the same `avdit encode` command to write it again")
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    tensors = {name: _Stored(tuple(t["shape"]), _DTYPES[t["dtype"]], 8 + length + t["data_offsets"][0])
               for name, t in header.items() if name != "__metadata__"}
    if not {"video", "audio"} <= tensors.keys():
        raise ValueError(f"{path} holds {sorted(tensors)}, not video and audio latents: not made by `avdit encode`")
    return tensors


def _describe(header: dict[str, _Stored], count: int | None = None) -> str:
    """'video (3, 4, 5, 8, 8) float32 and audio (3, 4, 85) float32' (with the clip count ``count`` if given)."""
    return " and ".join(f"{k} {(header[k].shape[0] if count is None else count, *header[k].shape[1:])} "
                        f"{str(header[k].dtype).removeprefix('torch.')}" for k in ("video", "audio"))


_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct rows as [start, stop) runs of consecutive rows: [0, 1, 2, 5] -> [(0, 3), (5, 6)]."""
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and runs[-1][1] == r:
            runs[-1] = (runs[-1][0], r + 1)
        else:
            runs.append((r, r + 1))
    return runs


def open_shards(folder: str | Path) -> tuple[LatentShards, dict]:
    """The latents of a shard folder, read as they are needed (:class:`LatentShards`), and its index."""
    index = read_index(folder)
    return LatentShards(folder, index), index
