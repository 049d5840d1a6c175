"""Why streams lost their subject, and what holds it: one variant of generation's settings per run, on the same
held-out starts, with each 2-s window's colour and pitch class and the disc's size and brightness printed.

    python benchmarks/stream_drift.py [--variant NAME ...] [--seconds 20] [--starts 6] [--first 100]

Variants: ``defaults`` (both anchors: the first window's segment 0 given to every window, and its latent spread held);
``spread`` (``anchor_segment=False``: the spread held only); ``free`` (neither: how earlier versions rolled); and, each
changing one thing from ``free``: ``video-first`` (2 sampler runs instead of 5); ``ddpm`` (25 stochastic steps);
``guidance3``; ``history100`` / ``history300`` / ``history500`` (the carried segments seen at that noise level:
Diffusion Forcing's noisy history). av_continue from held-out Bouncing Tones clips 100.. (test split).
docs/streams.md has what each gave.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from avdit.data import bouncing_tones as bt
from avdit.eval.long_clips import stream_windows, time_held
from avdit.pipeline import Pipeline
from avdit.diffusion import DEFAULT_SAMPLING

FREE = {"anchor_spread": False, "anchor_segment": False}
VARIANTS = {"defaults": {}, "spread": {"anchor_segment": False}, "free": FREE,
            "video-first": {**FREE, "order": "video-first"},
            "ddpm": {**FREE, "sampler": "ddpm", "steps": 25}, "guidance3": {**FREE, "guidance": 3.0},
            "history100": {**FREE, "history_level": 100}, "history300": {**FREE, "history_level": 300},
            "history500": {**FREE, "history_level": 500}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per stream (default 20)")
    parser.add_argument("--starts", type=int, default=6, help="held-out clips continued (default 6)")
    parser.add_argument("--first", type=int, default=100, help="the first of them (default 100: clips 100, 101, ...)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the bundled model)")
    args = parser.parse_args(argv)
    pipe = Pipeline.from_pretrained(args.checkpoint)
    clips = [bt.make_clip(0, args.first + i, "test") for i in range(args.starts)]
    video, audio = np.stack([c.video for c in clips]), np.stack([c.audio for c in clips])
    for name in args.variant:
        began = time.perf_counter()
        result = pipe(task="av_continue", video=video, audio=audio, num=args.starts, seed=0, duration=args.seconds,
                      sampling=DEFAULT_SAMPLING.replace(**VARIANTS[name]))
        took = time.perf_counter() - began
        held = 0
        print(f"{name} {VARIANTS[name]}: {args.starts} x {args.seconds:g} s in {took:.0f} s")
        for k, (v, a) in enumerate(zip(result.video, result.audio)):
            windows = stream_windows(v, a, sync_every=10**9)
            lost = time_held(windows)["subject_lost_s"]
            held += lost is None
            cells = lambda key: "".join(str(w[key]) if w[key] >= 0 else "-" for w in windows)  # noqa: E731
            size = " ".join(f"{w['size_px2'] / windows[0]['size_px2']:.2f}" for w in windows[::2])
            print(f"  clip {args.first + k} (class {clips[k].params.k}): colour {cells('colour')} pitch {cells('pitch')} "
                  f"subject lost at {lost} s; size vs first window {size}")
        print(f"  subject held {held}/{args.starts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
