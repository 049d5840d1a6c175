"""A study: teacher pairs on the windows a student's own streams give it (on-policy distillation, DAgger-style).

    python benchmarks/onpolicy_pairs.py --student runs/distill2/student/dmd --run runs/distill2 --out runs/onpolicy
                                        [--streams 64] [--windows 16] [--teacher DIR]

A stream's rolled window is given segment 0 from its first window (the anchor) and segment 1 from the last 0.5 s it
made itself, re-encoded; the student was distilled on teacher pairs of training clips only, where segment 0 is the
moment before segment 1 and segment 1 is real. Here the student rolls ``--streams`` av_continue streams from training
clips and as many joint streams, ``--windows`` rolled windows each, with its own preset; the given latents of every
rolled window are kept, and the teacher (its own sampling, 12 DPM-Solver++(2M) steps x 5 runs) samples the window's
segments 2-4 from noise z as ``avdit distill``'s pairs are made. OUT/pairs then lists the pairs of RUN/student/pairs
(linked) and these ("stream" in the index's task names), and OUT holds the student's checkpoint and its DMD state, so

    python -c "from avdit.train.dmd import *; dmd_finetune('runs/onpolicy', DMDSettings(steps=2600))"

goes on with the DMD stage from where RUN's stopped, on both kinds of windows. docs/distillation.md has what it gave.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from avdit.codecs.shards import SHARD_INDEX
from avdit.data import bouncing_tones as bt
from avdit.diffusion.sampling import SamplingConfig
from avdit.latents import AV
from avdit.pipeline import Pipeline, bundled_model_dir
from avdit.tasks.grid import get_task
from avdit.train.pairs import write_pair_shard
from avdit.utils.atomic import atomic_path, write_json

sys.path.insert(0, str(Path(__file__).parent))
from common import link_pairs  # noqa: E402

FIRST_TRAIN_CLIP = 20_000  # av_continue starts: training clips past those `avdit encode --num 8192` took


def rolled_windows(pipe: Pipeline, task: str, num: int, windows: int, seed: int) -> AV:
    """The given latents (num * windows, ...) of the rolled windows of ``num`` streams of ``task``, ``windows``
    rolled windows each, as ``pipe.stream`` makes them with its default sampling."""
    layout = pipe.layout
    kept: list[AV] = []
    encode = pipe.codecs.encode
    rolling = [False]

    def recording(video, audio, batch=1):
        out = encode(video, audio, batch)
        if rolling[0]:
            kept.append(out.map(lambda p: p.detach().float().cpu()))
        return out

    if task == "av_continue":
        clips = [bt.make_clip(0, FIRST_TRAIN_CLIP + seed + i, "train") for i in range(num)]
        video = np.stack([c.video for c in clips])  # (num, T, H, W, 3)
        audio = np.stack([c.audio for c in clips])  # (num, S)
    else:
        video = audio = None
    duration = float(layout.duration) + windows * (layout.frames - layout.segment_frames(1).stop) / layout.fps
    pipe.codecs.encode = recording
    try:
        for k, _ in enumerate(pipe.stream(task, video, audio, num=num, seed=seed, duration=duration)):
            rolling[0] = k == 0 or rolling[0]  # from the first rolled window on
    finally:
        del pipe.codecs.encode
    if len(kept) != windows:
        raise RuntimeError(f"{task}: {len(kept)} rolled windows recorded, {windows} expected")
    return AV(torch.cat([w.video for w in kept]), torch.cat([w.audio for w in kept]))


def label(teacher: Pipeline, given_latents: AV, out: Path, first_shard: int, chunk: int, task_index: int,
          seed: int) -> list[dict]:
    """Teacher pairs of the av_continue grid on ``given_latents``, in shards of ``chunk`` from ``first_shard``
    (``avdit.train.pairs.write_pair_shard``; a shard written is kept)."""
    given = get_task("av_continue", teacher.layout.num_segments).given  # (M, N): segments 0-1 of both
    sampling = SamplingConfig.preset("default")
    shards = []
    for k, start in enumerate(tqdm(range(0, given_latents.batch_size, chunk), desc="teacher labels", unit="shard")):
        name = f"shard_{first_shard + k:05d}.safetensors"
        part = given_latents.map(lambda p: p[start:start + chunk])
        shards.append({"file": name, "clips": part.batch_size})
        if not (out / name).exists():
            write_pair_shard(teacher, part, given, task_index, sampling,
                             torch.Generator().manual_seed(seed * 100_003 + k), out / name)
    return shards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--student", required=True, help="the student checkpoint that rolls the streams")
    parser.add_argument("--run", required=True, help="the `avdit distill` run whose pairs are kept (RUN/student)")
    parser.add_argument("--out", required=True, help="folder of the new run (pairs, student, dmd state)")
    parser.add_argument("--teacher", default=None, help="the teacher (default: the bundled model)")
    parser.add_argument("--streams", type=int, default=64, help="streams per task (default 64)")
    parser.add_argument("--windows", type=int, default=16, help="rolled windows per stream (default 16)")
    parser.add_argument("--tasks", default="av_continue,joint", help="the tasks of the streams")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    out, run = Path(args.out), Path(args.run)
    pairs_out = out / "pairs"
    pairs_out.mkdir(parents=True, exist_ok=True)
    index = link_pairs(run / "student" / "pairs", pairs_out)  # the run's own pairs, linked
    cache = out / "rolled.safetensors"
    if cache.exists():
        held = load_file(cache)
        windows = AV(held["video"], held["audio"])
        print(f"read {windows.batch_size} rolled windows from {cache}")
    else:
        began = time.perf_counter()
        student = Pipeline.from_pretrained(args.student)
        parts = [rolled_windows(student, task, args.streams, args.windows, args.seed)
                 for task in args.tasks.split(",")]
        windows = AV(torch.cat([p.video for p in parts]), torch.cat([p.audio for p in parts]))
        with atomic_path(cache, ".safetensors") as tmp:
            save_file({"video": windows.video.contiguous(), "audio": windows.audio.contiguous()}, tmp)
        print(f"rolled {windows.batch_size} windows in {time.perf_counter() - began:.0f} s", flush=True)
        del student
    teacher = Pipeline.from_pretrained(args.teacher or bundled_model_dir())
    names = [*index["task_names"], "stream"]
    began = time.perf_counter()
    shards = label(teacher, windows, pairs_out, len(index["shards"]), index["shards"][0]["clips"],
                   names.index("stream"), args.seed)
    print(f"labelled {windows.batch_size} windows in {time.perf_counter() - began:.0f} s", flush=True)
    write_json(pairs_out / SHARD_INDEX, {**index, "shards": [*index["shards"], *shards], "task_names": names,
                                         "pairs": index["pairs"] + windows.batch_size,
                                         "onpolicy": {**vars(args)}})
    for name in ("model.json", "model.safetensors"):  # the student the DMD stage goes on from
        shutil.copy2(Path(args.student) / name, out / name)
    (out / "dmd").mkdir(exist_ok=True)
    state = Path(args.student) / "state.pt"
    if state.exists() and not (out / "dmd" / "state.pt").exists():
        shutil.copy2(state, out / "dmd" / "state.pt")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
