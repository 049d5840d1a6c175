"""Why streams lose their subject, and what holds it: one variant of generation's settings per run, on the same
held-out starts, with each 2-s window's colour and pitch class and the disc's size printed, and per variant the
streams held on every criterion of ``benchmarks/streams.py`` (class, size and brightness within 10 %), those that
keep their subject, and sync (each stream's median over every 4th window, the median over streams) against the
first windows'.

    python benchmarks/stream_drift.py [--variant NAME ...] [--seconds 20] [--starts 6] [--first 100]
                                      [--seed 0] [--checkpoint DIR] [--codecs DIR]

Variants: ``defaults`` (both anchors: the first window's segment 0 given to every window, and its video spread held);
``spread`` (``anchor_segment=False``: the spread held only); ``free`` (neither: how earlier versions rolled); each
changing one thing from ``free``: ``video-first`` (2 sampler runs instead of 5); ``ddpm`` (25 stochastic steps);
``guidance3``; ``history100`` / ``history300`` / ``history500`` (the carried segments seen at that noise level:
Diffusion Forcing's noisy history); and each changing one thing from ``defaults``: ``anchored-guidance2.5``
(guidance 2.5), ``same-noise`` (every rolled window starts from the first window's noise, as FreeNoise reuses
noise along a long video), ``anchor-guidance1`` / ``anchor-guidance3`` / ``anchor-guidance5`` (anchor guidance at
that scale; off in the defaults) and ``anchor-guidance2-only`` (anchor guidance 2 and no other guidance: as many
network passes as the defaults). av_continue from held-out Bouncing Tones clips ``--first``.. (test split).
docs/streams.md has what each gave.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from avdit.data import bouncing_tones as bt
from avdit.diffusion import DEFAULT_SAMPLING
from avdit.eval.long_clips import stream_windows, time_held
from avdit.pipeline import Pipeline

FREE = {"anchor_spread": False, "anchor_segment": False}
VARIANTS = {"defaults": {}, "spread": {"anchor_segment": False}, "free": FREE,
            "video-first": {**FREE, "order": "video-first"},
            "ddpm": {**FREE, "sampler": "ddpm", "steps": 25}, "guidance3": {**FREE, "guidance": 3.0},
            "history100": {**FREE, "history_level": 100}, "history300": {**FREE, "history_level": 300},
            "history500": {**FREE, "history_level": 500}, "anchored-guidance2.5": {"guidance": 2.5},
            "same-noise": {}, "anchor-guidance1": {"anchor_guidance": 1.0},
            "anchor-guidance3": {"anchor_guidance": 3.0}, "anchor-guidance5": {"anchor_guidance": 5.0},
            "anchor-guidance2-only": {"anchor_guidance": 2.0, "guidance": 0.0}}
SAME_NOISE = ("same-noise",)  # variants whose rolled windows redraw the first window's noise


class SameNoisePipeline(Pipeline):
    """Every rolled window (the sampler calls that carry history) draws the noise the first window drew."""

    seed = 0

    def _sample(self, task, clean, sampling, generator: torch.Generator, history=None):
        if history is not None:
            generator.manual_seed(self.seed)
        return super()._sample(task, clean, sampling, generator, history)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per stream (default 20)")
    parser.add_argument("--starts", type=int, default=6, help="held-out clips continued (default 6)")
    parser.add_argument("--first", type=int, default=100, help="the first of them (default 100: clips 100, 101, ...)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling (default 0)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--codecs", default=None, help="codec folder (default: the ones the checkpoint names)")
    args = parser.parse_args(argv)
    plain = Pipeline.from_pretrained(args.checkpoint, codecs=args.codecs)
    same = SameNoisePipeline(plain.model, plain.codecs, plain.info, plain.device)
    same.seed = args.seed
    clips = [bt.make_clip(0, args.first + i, "test") for i in range(args.starts)]
    video, audio = np.stack([c.video for c in clips]), np.stack([c.audio for c in clips])
    for name in args.variant:
        pipe = same if name in SAME_NOISE else plain
        began = time.perf_counter()
        result = pipe(task="av_continue", video=video, audio=audio, num=args.starts, seed=args.seed,
                      duration=args.seconds, sampling=DEFAULT_SAMPLING.replace(**VARIANTS[name]))
        took = time.perf_counter() - began
        subject_held = all_held = 0
        stream_sync, first_sync = [], []  # each stream's median sync (every 4th window); the first windows'
        print(f"{name} {VARIANTS[name]}: {args.starts} x {args.seconds:g} s in {took:.0f} s")
        for k, (v, a) in enumerate(zip(result.video, result.audio)):
            windows = stream_windows(v, a, sync_every=4)
            held = time_held(windows)
            subject_held += held["subject_lost_s"] is None
            all_held += held["lost_s"] is None
            syncs = [[w[key] for key in ("sync_error_ms", "onset_sync_error_ms") if not math.isnan(w[key])]
                     for w in windows]
            first_sync += syncs[0]
            stream_sync.append(float(np.median([s for row in syncs for s in row])))
            cells = {key: "".join(str(w[key]) if w[key] >= 0 else "-" for w in windows) for key in ("colour", "pitch")}
            size = " ".join(f"{w['size_px2'] / windows[0]['size_px2']:.2f}" for w in windows[::2])
            print(f"  clip {args.first + k} (class {clips[k].params.k}): colour {cells['colour']} "
                  f"pitch {cells['pitch']} "
                  f"subject lost at {held['subject_lost_s']} s, ball lost at {held['ball_lost_s']} s; size vs first "
                  f"window {size}")
        print(f"  {name}: held on every criterion {all_held}/{args.starts}, subject held {subject_held}/{args.starts}, "
              f"sync {np.median(stream_sync):.1f} ms (median over streams of each one's median) against "
              f"{np.median(first_sync):.1f} ms in the first windows", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
