"""torch Datasets of clips: Bouncing Tones made on the fly, and clips of a prepared folder decoded on demand.

Items are dicts with ``video`` uint8 (T, H, W, 3) and ``audio`` float32 (S,) tensors. Nothing is held open
between items, so both work with DataLoader worker processes (use ``avdit.data.loader.make_loader``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from avdit.data import bouncing_tones as bt
from avdit.data.bt_files import METADATA
from avdit.data.prepare import INDEX, index_clips
from avdit.layout import GEOMETRIES, ClipLayout
from avdit.media import MediaError, read_clip

logger = logging.getLogger(__name__)


class BouncingTonesDataset(Dataset):
    """Clips 0..n-1 of a Bouncing Tones split, generated in memory (no disk), with their parameters."""

    def __init__(self, n: int, seed: int = 0, split: str = "train"):
        if split not in bt.SPLITS:
            raise ValueError(f"split must be one of {bt.SPLITS}, got {split!r}")
        self.n, self.seed, self.split = n, seed, split

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(f"clip {index} out of range for {self.n} clips")
        clip = bt.make_clip(self.seed, index, self.split)
        return {
            "video": torch.from_numpy(clip.video),  # (17, 64, 64, 3) uint8
            "audio": torch.from_numpy(clip.audio),  # (34000,) float32
            "k": clip.params.k,
            "index": index,
        }


DEFAULT_CACHE_MB = 2048  # decoded clips kept in memory per process: about 6000 clips of 17 frames at 64x64


class ClipDataset(Dataset):
    """Clips of a split of a folder indexed by ``avdit prepare``, decoded from the source files on demand.

    A clip that does not read (a file changed or damaged since ``prepare``) never ends a run: it is logged once,
    counted in ``bad_clips`` ((file, start) -> reason, per process) and the next readable clip is returned.

    Decoded clips are kept in memory up to ``cache_mb`` (per process), so a run that goes over the folder more than
    once decodes each clip once: real files cost far more to seek and decode than the clips they give.

    ``modality`` "video" or "audio": items hold that one only, and the other is not decoded (an audio codec's
    training would spend most of its reading on frames it never uses).
    """

    def __init__(self, index_dir: str | Path, split: str = "train", cache_mb: int = DEFAULT_CACHE_MB,
                 modality: str | None = None):
        if modality not in (None, "video", "audio"):
            raise ValueError(f"modality must be 'video', 'audio' or None (both), got {modality!r}")
        self.index_dir = Path(index_dir)
        self.modality = modality
        self.settings, self.source, self.clips = index_clips(index_dir, split)
        self.bad_clips: dict[tuple[str, float], str] = {}
        self.cache: dict[int, tuple[torch.Tensor | None, torch.Tensor | None]] = {}  # (video, audio); None: not read
        self.cache_bytes, self.cache_limit = 0, cache_mb * 2**20

    def __len__(self) -> int:
        return len(self.clips)

    def _read(self, index: int) -> dict:
        name, start = self.clips[index]
        if index in self.cache:
            video, audio = self.cache[index]
        else:
            s = self.settings
            clip = read_clip(self.source / name, s.fps, s.sample_rate, s.size, start=start, duration=s.duration,
                             video=self.modality != "audio", audio=self.modality != "video")
            video, audio = (None if x is None else torch.from_numpy(x) for x in (clip.video, clip.audio))
            size = sum(x.nbytes for x in (video, audio) if x is not None)  # (T, H, W, 3) uint8, (S,) float32
            if self.cache_bytes + size <= self.cache_limit:
                self.cache[index] = video, audio
                self.cache_bytes += size
        read = {"video": video, "audio": audio}
        return {**{key: x for key, x in read.items() if x is not None}, "file": name, "start": start}

    def __getitem__(self, index: int) -> dict:
        if not -len(self.clips) <= index < len(self.clips):
            raise IndexError(f"clip {index} out of range for {len(self.clips)} clips")
        for step in range(len(self.clips)):
            k = (index + step) % len(self.clips)
            if self.clips[k] in self.bad_clips:
                continue
            try:
                return self._read(k)
            except MediaError as err:
                self.bad_clips[self.clips[k]] = err.problem
                logger.warning("skipping clip %s at %s s: %s", self.clips[k][0], self.clips[k][1], err.problem)
        raise RuntimeError(f"no clip of {self.source} (indexed in {self.index_dir}) can be read; "
                           f"{len(self.bad_clips)} failed, e.g. {next(iter(self.bad_clips.items()), None)}")


class BouncingTonesFolder(Dataset):
    """The mp4 clips written by ``avdit data bouncing-tones`` (read back as a user's files would be)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta = json.loads((self.folder / METADATA).read_text())
        self.split, self.clips = meta["split"], meta["clips"]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        entry = self.clips[index]
        clip = read_clip(self.folder / entry["file"], bt.FPS, bt.SAMPLE_RATE, (bt.SIZE, bt.SIZE),
                         duration=bt.DURATION)
        return {"video": torch.from_numpy(clip.video), "audio": torch.from_numpy(clip.audio), "k": entry["k"],
                "index": index}


BOUNCING_TONES = "bouncing-tones"


def open_dataset(data: str | Path, split: str = "train", size: int | None = None, seed: int = 0,
                 cache_mb: int = DEFAULT_CACHE_MB, modality: str | None = None) -> Dataset:
    """``bouncing-tones`` (made in memory; ``size`` clips), a folder from ``avdit data bouncing-tones``, or a
    folder prepared by ``avdit prepare`` (its decoded clips cached up to ``cache_mb``; 0 for one pass; ``modality``:
    decode only "video" or "audio", ``ClipDataset``). A Bouncing Tones folder holds one split: its held-out clips are
    the in-memory test split."""
    if str(data) == BOUNCING_TONES:
        return BouncingTonesDataset(size or (1_000_000 if split == "train" else 256), seed=seed, split=split)
    folder = Path(data)
    if (folder / METADATA).exists():
        dataset = BouncingTonesFolder(folder)
        if dataset.split != split:
            return BouncingTonesDataset(size or 256, seed=seed, split=split)
        return dataset
    if (folder / INDEX).exists():
        return ClipDataset(folder, split, cache_mb, modality)
    raise FileNotFoundError(f"{folder}: not '{BOUNCING_TONES}', a Bouncing Tones folder ({METADATA}) or a "
                            f"prepared folder ({INDEX}); make one with `avdit data bouncing-tones` or `avdit prepare`")


def dataset_geometry(dataset: Dataset) -> ClipLayout:
    """The clip geometry of a dataset from ``open_dataset``: a prepared folder's own, else Bouncing Tones'."""
    settings = getattr(dataset, "settings", None)  # a prepared folder
    return settings.geometry() if settings is not None else GEOMETRIES[BOUNCING_TONES]


def is_bouncing_tones(data: str | Path) -> bool:
    """Whether ``data`` names Bouncing Tones: made in memory, or a folder from ``avdit data bouncing-tones``."""
    return str(data) == BOUNCING_TONES or (Path(data) / METADATA).exists()
