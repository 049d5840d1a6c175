"""Codec training speed: one optimizer step of each codec in fp32 and under bf16 autocast.

    python benchmarks/codec_train_speed.py [--batch-size 8] [--repeats 5]

Times what `avdit train-codec` does per step (forward, loss, backward, AdamW step) on Bouncing Tones-sized
clips, and prints the bf16 / fp32 speed-up measured in the same run (`avdit train-codec --precision bf16`).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import best_time  # noqa: E402

from avdit.train.codecs import CodecTrainSettings, _forward, build_codec  # noqa: E402
from avdit.data import bouncing_tones as bt  # noqa: E402


def step_seconds(kind: str, precision: str, clips: list, repeats: int) -> float:
    codec = build_codec(CodecTrainSettings(kind=kind), bt.FPS, bt.SAMPLE_RATE)
    optimizer = torch.optim.AdamW(codec.net.parameters(), lr=1e-4)
    batch = {kind: torch.from_numpy(np.stack([getattr(clip, kind) for clip in clips]))}  # uint8 video / float audio

    def step():
        _, _, _, (loss, _) = _forward(codec, batch, precision)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return best_time(step, repeats=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8, help="clips per step (default 8, train-codec's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps, best kept (default 5)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    clips = [bt.make_clip(0, i) for i in range(args.batch_size)]
    for kind in ("video", "audio"):
        fp32, bf16 = (step_seconds(kind, p, clips, args.repeats) for p in ("fp32", "bf16"))
        print(f"{kind}: fp32 {fp32:.3f} s/step, bf16 {bf16:.3f} s/step, bf16 speed-up {fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()
