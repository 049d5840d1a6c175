"""How fast the bundled codecs encode and decode on this machine, and what that and coding only what a task needs
save per clip of every task, against the way they ran before (baseline), in the same run.

    python benchmarks/codec_speed.py [--batches 1 8 32] [--task-batches 1 8] [--rounds 5] [--checkpoint DIR]

Before: every (1 x 3 x 3) and (3 x 1 x 1) convolution of the video codec ran as a 3-D convolution, the sharpening
head took every frame of the batch at once, a batch went through each codec whole, and the audio codec's
convolutions ran as 1-D convolutions. Now (``avdit.codecs``): the video codec's convolutions run as 2-D convolutions
over frames (``SpaceConv``, ``CausalTimeConv``), the head takes ``FRAMES_AT_ONCE`` frames at a time, a batch goes
through in parts of ``CPU_BATCH`` clips, and the audio codec's convolutions run as (1 x k) 2-D convolutions in
channels-last memory (``avdit.codecs.audio.Conv1d``, ``ConvTranspose1d``). Both ways compute the
same function; the benchmark checks that their outputs agree.

Per task (``Pipeline``, generate's defaults, held-out clips): before, the pipeline also encoded a modality the task
gives no cell of (zeros: joint's both, a2v's video, v2a's audio) and decoded the modality a task gives whole (a2v's
audio, v2a's video) back from its latents; now it does neither (``CodecPair.encode``, ``Pipeline._clips``) and
returns the given modality as it was read.

Prints ms per clip (the median of ``--rounds`` rounds, the two ways in turns) and the speed-up.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

from avdit.codecs import audio as audio_module
from avdit.codecs import codec as codec_module
from avdit.codecs import video as video_module
from avdit.data import bouncing_tones as bt
from avdit.pipeline import Pipeline

TASKS = ("joint", "a2v", "v2a", "av_continue", "av_inpaint")


def conv3d_time(self: video_module.CausalTimeConv, x: torch.Tensor) -> torch.Tensor:
    """CausalTimeConv as it ran before: a 3-D convolution."""
    x = torch.cat([x[:, :, :1].expand(-1, -1, self.pad, -1, -1), x], dim=2)
    return self.conv(x)


def every_input(given_inputs):
    """Pipeline._given_inputs as it was before: zeros read for a modality the task gives no cell of, so that it is
    encoded too."""
    def read(self, task, video, audio, offset):
        v, a = given_inputs(self, task, video, audio, offset)
        batch = (v if v is not None else a).shape[0] if (v, a) != (None, None) else 1
        layout = self.layout
        return (torch.zeros(batch, layout.frames, layout.height, layout.width, 3, dtype=torch.uint8) if v is None
                else v, torch.zeros(batch, layout.num_samples) if a is None else a)
    return read


@contextlib.contextmanager
def baseline():
    """The codecs and the pipeline as they ran before this benchmark's change (see the module doc)."""
    saved = (video_module.SpaceConv.forward, video_module.CausalTimeConv.forward, video_module.FRAMES_AT_ONCE,
             codec_module.CPU_BATCH, Pipeline._given_inputs, Pipeline._clips, audio_module.Conv1d.forward,
             audio_module.ConvTranspose1d.forward)
    video_module.SpaceConv.forward = nn.Conv3d.forward
    audio_module.Conv1d.forward, audio_module.ConvTranspose1d.forward = nn.Conv1d.forward, nn.ConvTranspose1d.forward
    video_module.CausalTimeConv.forward = conv3d_time
    video_module.FRAMES_AT_ONCE = codec_module.CPU_BATCH = sys.maxsize
    Pipeline._given_inputs = every_input(saved[4])
    Pipeline._clips = lambda self, out, inputs, sound=None: saved[5](self, out, {}, sound)  # every modality decoded
    try:
        yield
    finally:
        (video_module.SpaceConv.forward, video_module.CausalTimeConv.forward, video_module.FRAMES_AT_ONCE,
         codec_module.CPU_BATCH, Pipeline._given_inputs, Pipeline._clips, audio_module.Conv1d.forward,
         audio_module.ConvTranspose1d.forward) = saved


def in_turns(run, batch: int, rounds: int) -> tuple[float, float]:
    """Median ms per clip of ``run`` before and now, ``rounds`` times each, in turns."""
    run()  # warm up
    times = {"before": [], "now": []}
    for _ in range(rounds):
        with baseline():
            times["before"].append(ms_per_clip(run, batch))
        times["now"].append(ms_per_clip(run, batch))
    return statistics.median(times["before"]), statistics.median(times["now"])


def ms_per_clip(run, batch: int) -> float:
    began = time.perf_counter()
    run()
    return (time.perf_counter() - began) * 1000 / batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32], help="clips at once (default 1 8 32)")
    parser.add_argument("--task-batches", type=int, nargs="*", default=[1, 8],
                        help="clips at once per task (default 1 8; none: skip the tasks)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the two ways in turns (default 5)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint and its codecs (default: the bundled model)")
    args = parser.parse_args(argv)
    pipe = Pipeline.from_pretrained(args.checkpoint)
    codecs = pipe.codecs
    clips = [bt.make_clip(0, i, "test") for i in range(max(args.batches + args.task_batches))]
    video = torch.from_numpy(np.stack([c.video for c in clips]))  # (B, 17, 64, 64, 3) uint8
    audio = torch.from_numpy(np.stack([c.audio for c in clips]))  # (B, 34000)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per clip, median of {args.rounds} rounds\n")
    print("| clips at once | part | before | now | speed-up |\n|---:|---|---:|---:|---:|")
    with torch.inference_mode():
        for batch in args.batches:
            v, a = video[:batch], audio[:batch]
            latents = codecs.encode(v, a)
            with baseline():
                before = codecs.encode(v, a), codecs.decode(latents)
            now = codecs.encode(v, a), codecs.decode(latents)
            # the same function: latents to float rounding, pixels to one grey level, samples to 1e-4
            assert torch.allclose(before[0].video, now[0].video, atol=1e-3), "video latents differ"
            assert (before[1][0].int() - now[1][0].int()).abs().max() <= 1, "decoded frames differ"
            assert torch.allclose(before[1][1], now[1][1], atol=1e-4), "decoded audio differs"
            parts = {"video encode": lambda: codecs.video.encode(v), "video decode": lambda: codecs.video.decode(
                latents.video), "audio encode": lambda: codecs.audio.encode(a),
                "audio decode": lambda: codecs.audio.decode(latents.audio, a.shape[1])}
            for name, run in parts.items():
                b, n = in_turns(run, batch, args.rounds)
                print(f"| {batch} | {name} | {b:.1f} | {n:.1f} | {b / n:.2f}x |", flush=True)
        if args.task_batches:
            print("\n| clips at once | task (generate's defaults) | before | now | speed-up |\n|---:|---|---:|---:|---:|")
        for batch in args.task_batches:
            given = {"joint": {}, "a2v": {"audio": audio[:batch].numpy()}, "v2a": {"video": video[:batch].numpy()}}
            for task in TASKS:
                inputs = given.get(task, {"video": video[:batch].numpy(), "audio": audio[:batch].numpy()})
                with baseline():
                    before = pipe(task, **inputs, num=batch, seed=0)
                now = pipe(task, **inputs, num=batch, seed=0)
                for m, old, new in zip(("video", "audio"), before.latents, now.latents):  # the same clips made
                    assert torch.allclose(old, new, atol=1e-2), f"{task}: the {m} latents differ"
                b, n = in_turns(lambda: pipe(task, **inputs, num=batch, seed=0), batch, args.rounds)
                print(f"| {batch} | {task} | {b:.0f} | {n:.0f} | {b / n:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
