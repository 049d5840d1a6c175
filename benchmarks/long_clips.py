"""Long clips on Bouncing Tones: do 8-s clips rolled from 2.125-s windows hold together?

    python benchmarks/long_clips.py [--num 48] [--duration 8] [--steps 12] [--sampler dpmpp2m] [--lags 0,2]
                                    [--checkpoint DIR] [--order ORDER] [--out runs/long_clips] [--docs docs/results]

Held-out Bouncing Tones clips are made ``--duration`` long (the same bounce going on). For each task and
``--pyramid-lag``: av_continue is given the first window only and continues its own output; a2v and v2a are given
the whole long audio or video, which slides along; joint is given nothing. ``avdit.eval.long_clips`` scores each
clip per 2.125-s window: identity held in every window, sync per window against the first window's, and the
residual of one bounce fitted through all frames against the windows' own (a jump at a seam shows there). The real
long clips are scored the same way as the reference. Writes DOCS/long_clips.md; OUT/results.json keeps finished
rows, so a rerun goes on where it stopped.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from avdit.utils.atomic import atomic_path, write_json
from avdit.data import bouncing_tones as bt
from avdit.diffusion import DEFAULT_SAMPLING
from avdit.eval.long_clips import long_clip_measures, summarise_long
from avdit.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from common import resumable_record  # noqa: E402

TASKS = ("av_continue", "a2v", "v2a", "joint")
COLUMNS = (("identity_held", "identity held in every window ↑", "{:.0%}"),
           ("sync_error_ms", "sync impact→onset ms ↓", "{:.0f}"),
           ("onset_sync_error_ms", "sync onset→impact ms ↓", "{:.0f}"),
           ("first_window_onset_sync_error_ms", "first window onset→impact ms", "{:.0f}"),
           ("onset_f1", "onset F1 ↑", "{:.2f}"),
           ("window_trajectory_rms_px", "bounce residual per window px", "{:.2f}"),
           ("clip_trajectory_rms_px", "bounce residual over the clip px ↓", "{:.2f}"))


def long_clips(num: int, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, 64, 64, 3) uint8 and (B, S) float32: held-out clips 0..num-1 of the test split, ``frames`` long."""
    clips = [bt.make_clip(seed, i, "test", frames=frames) for i in range(num)]
    return np.stack([c.video for c in clips]), np.stack([c.audio for c in clips])


def generate(pipe: Pipeline, task: str, video: np.ndarray, audio: np.ndarray, args, lag: int):
    """The task's long clips for every held-out clip, in batches."""
    outputs_v, outputs_a = [], []
    for first in range(0, len(video), args.batch_size):
        v, a = video[first:first + args.batch_size], audio[first:first + args.batch_size]
        if task == "av_continue":  # the first window only: the model continues its own output
            v, a = v[:, :bt.FRAMES], a[:, :bt.NUM_SAMPLES]
        given = {"av_continue": (v, a), "a2v": (None, a), "v2a": (v, None), "joint": (None, None)}[task]
        result = pipe(task, given[0], given[1], num=len(v), seed=args.seed + first, duration=args.duration,
                      sampling=DEFAULT_SAMPLING.replace(steps=args.steps, sampler=args.sampler, pyramid_lag=lag,
                                                        order=args.order))
        outputs_v.append(result.video)
        outputs_a.append(result.audio)
    return np.concatenate(outputs_v), np.concatenate(outputs_a)


def page(rows: dict, command: str) -> str:
    lines = ["# Long clips on Bouncing Tones", "",
             "Made by", "", f"    {command}", "",
             "8-s clips rolled from 2.125-s windows, each later window given the last 0.625 s of the one before "
             "(what a task gives whole slides along its input). Each clip is scored per window "
             "(`avdit.eval.long_clips`): identity held in every window, the two-way sync per window (median) beside "
             "the first window's, and one bounce fitted through all frames: a residual over the clip well above the "
             "windows' own means the disc jumps or changes its bounce at a seam.", "",
             "| task | pyramid lag | " + " | ".join(title for _, title, _ in COLUMNS) + " | clips | seconds |",
             "|---|---:|" + "---:|" * (len(COLUMNS) + 2)]
    for name, row in rows.items():
        task, lag = name.split("@")
        cells = [fmt.format(row[key]) if not np.isnan(row[key]) else "—" for key, _, fmt in COLUMNS]
        lines.append(f"| {task} | {lag} | " + " | ".join(cells) + f" | {row['clips']} | {row.get('seconds', 0):.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=48, help="held-out clips (default 48)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per clip (default 8)")
    parser.add_argument("--steps", type=int, default=12, help="sampler steps per window (default 12)")
    parser.add_argument("--sampler", default="dpmpp2m", help="sampler (default dpmpp2m)")
    parser.add_argument("--lags", default="0,2", help="pyramid lags to compare (default 0,2)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"tasks (default {','.join(TASKS)})")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--order", default=DEFAULT_SAMPLING.order,
                        help=f"where both modalities are generated, the sampler runs (default "
                             f"{DEFAULT_SAMPLING.order})")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per sampling batch (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clips and of sampling (default 0)")
    parser.add_argument("--out", default="runs/long_clips", help="folder for results.json (default runs/long_clips)")
    parser.add_argument("--docs", default="docs/results", help="folder for long_clips.md (default docs/results)")
    args = parser.parse_args(argv)
    out, docs = Path(args.out), Path(args.docs)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "docs", "tasks", "lags", "batch_size")}
    pipe = Pipeline.from_pretrained(args.checkpoint)
    settings["weights"] = pipe.weights_digest()  # rows of other weights are not reused
    record_path = out / "results.json"
    record = resumable_record(record_path, settings, "long_clips")
    frames = round(args.duration * bt.FPS)
    video, audio = long_clips(args.num, frames, args.seed)
    if "real@-" not in record["rows"]:
        record["rows"]["real@-"] = summarise_long([long_clip_measures(v, a) for v, a in zip(video, audio)])
    for task in args.tasks.split(","):
        for lag in (int(x) for x in args.lags.split(",")):
            name = f"{task}@{lag}"
            if name in record["rows"]:
                continue
            start = time.perf_counter()
            gen_v, gen_a = generate(pipe, task, video, audio, args, lag)
            row = summarise_long([long_clip_measures(v, a) for v, a in zip(gen_v, gen_a)])
            record["rows"][name] = {**row, "seconds": time.perf_counter() - start}
            write_json(record_path, record)
            print(f"{name}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)
    command = "python benchmarks/long_clips.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    docs.mkdir(parents=True, exist_ok=True)
    with atomic_path(docs / "long_clips.md", ".md") as tmp:
        Path(tmp).write_text(page(record["rows"], command.strip()))
    print(f"written to {docs / 'long_clips.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
