"""What a distilled student saves: wall time per clip of every task, and a stream's real-time factor, with
``generate``'s defaults for the teacher (its ``default`` preset) and for the student (its ``distilled`` preset),
measured in the same run on the same inputs.

    python benchmarks/distill_speed.py --student runs/distill/student [--teacher avdit/assets/model] [--num 8]
                                       [--repeats 3] [--stream-seconds 60] [--student-steps N]

Per task: ``pipe(task, ...)`` on ``--num`` held-out Bouncing Tones clips at once (encode, sampling, decode: what
`avdit generate` does), the best of ``--repeats``, divided by ``--num``; the network passes a clip takes (counted);
then one joint and one av_continue stream of ``--stream-seconds`` s alone (what `avdit generate --duration` does).
Prints a table and the student's speed-up over the teacher.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from avdit.data import bouncing_tones as bt
from avdit.diffusion.sampling import SamplingConfig
from avdit.pipeline import Pipeline

TASKS = ("joint", "a2v", "v2a", "av_continue", "av_inpaint")


def inputs(task: str, num: int) -> dict:
    clips = [bt.make_clip(0, i, "test") for i in range(num)]
    video, audio = np.stack([c.video for c in clips]), np.stack([c.audio for c in clips])
    return {"joint": {}, "a2v": {"audio": audio}, "v2a": {"video": video}}.get(task, {"video": video, "audio": audio})


def passes_per_clip(pipe: Pipeline, task: str, sampling: SamplingConfig | None = None) -> int:
    """Network passes one clip of ``task`` takes: a guided step is one call of two (its given and its unguided input
    batched), so two passes."""
    passes = []
    forward = pipe.model.forward
    pipe.model.forward = lambda x, *a, **k: passes.append(x.batch_size) or forward(x, *a, **k)
    try:
        pipe(task, **inputs(task, 1), seed=0, sampling=sampling)
    finally:
        del pipe.model.forward
    return sum(passes)


def seconds_per_clip(pipe: Pipeline, task: str, num: int, repeats: int,
                     sampling: SamplingConfig | None = None) -> float:
    given = inputs(task, num)
    best = float("inf")
    for r in range(repeats):
        began = time.perf_counter()
        pipe(task, **given, num=num, seed=r, sampling=sampling)
        best = min(best, time.perf_counter() - began)
    return best / num


def stream_real_time(pipe: Pipeline, task: str, seconds: float, sampling: SamplingConfig | None = None) -> float:
    """Seconds of content per second of wall time, one stream alone."""
    began = time.perf_counter()
    for _ in pipe.stream(task, **inputs(task, 1), seed=0, duration=seconds, sampling=sampling):
        pass
    return seconds / (time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--student", required=True, help="checkpoint of `avdit distill`")
    parser.add_argument("--teacher", default=None, help="checkpoint of the teacher (default: the bundled model)")
    parser.add_argument("--num", type=int, default=8, help="clips per call (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="calls per task, best kept (default 3)")
    parser.add_argument("--stream-seconds", type=float, default=60.0,
                        help="seconds of each stream (default 60; 0: no streams)")
    parser.add_argument("--student-steps", type=int, default=None,
                        help="the student's DDIM steps per sampler run (default: its preset's)")
    args = parser.parse_args(argv)
    pipes = {"teacher": Pipeline.from_pretrained(args.teacher, device="cpu"),
             "student": Pipeline.from_pretrained(args.student, device="cpu")}
    how = {"teacher": None, "student": (pipes["student"].default_sampling.replace(steps=args.student_steps)
                                        if args.student_steps else None)}
    for name, pipe in pipes.items():
        print(f"{name}: {(how[name] or pipe.default_sampling).describe()}", flush=True)
    print("\n| task | teacher passes | student passes | teacher s/clip | student s/clip | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for task in TASKS:
        passes = {n: passes_per_clip(p, task, how[n]) for n, p in pipes.items()}
        took = {n: seconds_per_clip(p, task, args.num, args.repeats, how[n]) for n, p in pipes.items()}
        print(f"| {task} | {passes['teacher']} | {passes['student']} | {took['teacher']:.3f} | {took['student']:.3f} "
              f"| {took['teacher'] / took['student']:.1f}x |", flush=True)
    if not args.stream_seconds:
        return 0
    print(f"\n| stream of {args.stream_seconds:g} s | teacher x real time | student x real time | speed-up |")
    print("|---|---:|---:|---:|")
    for task in ("joint", "av_continue"):
        rt = {n: stream_real_time(p, task, args.stream_seconds, how[n]) for n, p in pipes.items()}
        print(f"| {task} | {rt['teacher']:.1f} | {rt['student']:.1f} | {rt['student'] / rt['teacher']:.1f}x |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
