"""Bouncing Tones on disk: N mp4 clips and a metadata.json with every clip's parameters and impact times."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from avdit.utils.atomic import write_json
from avdit.data import bouncing_tones as bt
from avdit.media import write_mp4

METADATA = "metadata.json"


def clip_name(index: int) -> str:
    return f"clip_{index:06d}.mp4"


def write_bouncing_tones(out: str | Path, n: int, seed: int = 0, split: str = "train",
                         progress: bool = True) -> Path:
    """Write clips 0..n-1 of a split as mp4 into ``out`` and then ``out/metadata.json``; returns its path.

    Every file is written atomically; rerunning after an interruption, or with a larger ``n``, skips clips
    already on disk (clip i depends only on (seed, split, i), so the result is the same).
    """
    out = Path(out)
    if n < 1:
        raise ValueError(f"n={n}: give at least 1")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder")
    metadata_path = out / METADATA
    if metadata_path.exists():  # growing or re-running the same dataset is fine; mixing two is not
        existing = json.loads(metadata_path.read_text())
        if (existing.get("seed"), existing.get("split")) != (seed, split):
            raise FileExistsError(f"{out} already holds Bouncing Tones with seed={existing.get('seed')}, "
                                  f"split={existing.get('split')}; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for index in tqdm(range(n), desc=f"bouncing tones ({split})", unit="clip", disable=not progress):
        params = bt.sample_params(bt.clip_rng(seed, index, split))
        path = out / clip_name(index)
        if not path.exists():
            clip = bt.make_clip(seed, index, split)
            write_mp4(path, clip.video, clip.audio, bt.FPS, bt.SAMPLE_RATE)
        clips.append({"file": path.name, "index": index, **params.to_dict()})
    write_json(metadata_path, {
        "dataset": "bouncing-tones", "version": 1, "seed": seed, "split": split, "n": n,
        "fps": bt.FPS, "frames": bt.FRAMES, "size": [bt.SIZE, bt.SIZE], "sample_rate": bt.SAMPLE_RATE,
        "num_samples": bt.NUM_SAMPLES, "clips": clips,
    })
    return metadata_path
