"""How precisely one window keeps the disc it is given: the bound a stream of hundreds of windows works against.

    python benchmarks/window_precision.py [--num 40] [--first 500] [--checkpoint DIR] [--variant NAME ...]
                                          [--codec-streams 20] [--codec-seconds 60] [--from-level T ...]
                                          [--seeds N]

av_continue on held-out Bouncing Tones clips ``--first``..: each clip's one window is given frames 0-4 (0.625 s) and
makes frames 5-16. Per clip, the disc's mean size (``disc_area``, px^2) over the made frames against the given
frames (decoded as the window returns them): the median ratio, and the share of clips whose ratio is more than 5 %
and 10 % off (10 % is where ``benchmarks/streams.py`` calls a stream's ball lost); and the frame-to-frame variation of
the size (coefficient of variation) in the made frames, the given frames and the source clip. Variants change one
sampling setting from generation's defaults.

Beside it, the codecs alone (``--codec-streams``): long held-out clips (the same bounce going on) cut into windows,
each window encoded and decoded on its own and the new frames joined as a stream joins them; what
``benchmarks/streams.py`` measures of them is what a model that made every window exactly would get.

Where the error arises (``--from-level``): the made cells start from the clips' own latents noised to level T0
(SDEdit) instead of pure noise, and go down to 0 in 12 DDIM steps, both modalities in one run (guidance 1;
``avdit.train.made_decoder.made_latents``); at T0 =
1000 that is plain sampling. The levels at which the size error grows are those where the network loses the disc's
precise size. Beside it, the made frames' latents given white noise of a few rms instead: how sensitive the
decoder is to an error of that size.

Set by the context, or by the noise (``--seeds N``): the same clips made with N seeds. Where a clip's size error
correlates across seeds, its context (the given frames) sets it, and no average over noise draws removes it.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from avdit.data import bouncing_tones as bt
from avdit.diffusion import DEFAULT_SAMPLING
from avdit.eval.bt_analysis import disc_area
from avdit.eval.long_clips import WINDOW_HOP, stream_windows, time_held
from avdit.pipeline import Pipeline
from avdit.tasks import get_task
from avdit.train.made_decoder import made_latents

VARIANTS = {"defaults": {}, "guidance0": {"guidance": 0.0}, "steps25": {"steps": 25},
            "ddpm50": {"sampler": "ddpm", "steps": 50}}


def sizes(video: np.ndarray) -> np.ndarray:
    """(B, T) the disc's size in each frame, px^2; video (B, T, H, W, 3) uint8."""
    return np.stack([disc_area(v) for v in video])


def variation(size: np.ndarray) -> float:
    """The median over clips of the frame-to-frame coefficient of variation of (B, T) sizes."""
    return float(np.median(size.std(1) / size.mean(1)))


def precision_row(name: str, made: np.ndarray, given_frames: int) -> str:
    """A table row of (B, T) sizes: made / given size (median, share > 5 % and > 10 % off) and the made frames'
    frame-to-frame CV."""
    ratio = made[:, given_frames:].mean(1) / made[:, :given_frames].mean(1)
    return (f"| {name} | {np.median(ratio):.3f} | {np.mean(np.abs(ratio - 1) > 0.05):.0%} | "
            f"{np.mean(np.abs(ratio - 1) > 0.1):.0%} | {variation(made[:, given_frames:]):.3f} |")


def error_levels(pipe: Pipeline, video: np.ndarray, audio: np.ndarray, starts: list[int]) -> None:
    """Print where the size error arises: sampling from the clips' latents noised to each start level, and the
    decoder given white noise on the made frames' latents."""
    given_frames = pipe.layout.segment_frames(1).stop
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        latents = pipe.codecs.encode(torch.from_numpy(video), torch.from_numpy(audio).float())
        grid = get_task("av_continue", pipe.layout.num_segments).given.expand(video.shape[0], -1, -1)  # (B, M, N)
        made_cells = pipe.layout.cells_to_latents(~grid).video  # (B, 1, Tv, 1, 1) bool
        print("\n| made from | made / given size, median | clips > 5 % off | clips > 10 % off | frame-to-frame CV, "
              "made | latent error, rms |\n|---|---:|---:|---:|---:|---:|")
        rows = [(f"level {t}", made_latents(pipe, latents, grid, torch.full((video.shape[0],), t), 12, generator))
                for t in starts]
        rows += [(f"the clip's latents + white noise {rms:g} rms", latents._replace(video=latents.video + torch.where(
            made_cells, rms * torch.randn(latents.video.shape, generator=generator), 0.0))) for rms in (0.1, 0.3)]
        for name, made in rows:
            error = (made.video - latents.video)[made_cells.expand_as(latents.video)].pow(2).mean().sqrt()
            print(precision_row(name, sizes(pipe.codecs.decode(made)[0].numpy()), given_frames)
                  + f" {float(error):.2f} |", flush=True)
    print(f"(the clips' latents have a spread of {float(latents.video.std()):.2f})")


def seed_agreement(pipe: Pipeline, video: np.ndarray, audio: np.ndarray, seeds: int) -> None:
    """Print how much of a window's size error its context sets: the same clips made with ``seeds`` seeds
    (generation's defaults); the correlation across seeds of each clip's made / given size error (set by the context
    where high), and of each made frame's size about its clip's mean (the frame-to-frame flicker)."""
    given_frames = pipe.layout.segment_frames(1).stop
    made = np.stack([sizes(pipe(task="av_continue", video=video, audio=audio, num=video.shape[0], seed=seed).video)
                     for seed in range(seeds)])  # (seeds, B, T)
    error = made[:, :, given_frames:].mean(2) / made[:, :, :given_frames].mean(2) - 1  # (seeds, B)
    flicker = made[:, :, given_frames:] - made[:, :, given_frames:].mean(2, keepdims=True)  # (seeds, B, T - given)
    pairs = np.triu_indices(seeds, 1)
    mean_corr = lambda x: float(np.corrcoef(x.reshape(seeds, -1))[pairs].mean())  # noqa: E731
    print(f"\n{seeds} seeds: each clip's size error correlates {mean_corr(error):.2f} across seeds (its mean over "
          f"seeds holds {error.mean(0).var() / error.var():.0%} of the variance); each made frame's size about its "
          f"clip's mean, {mean_corr(flicker):.2f}")


def codec_stream(pipe: Pipeline, clip: bt.BTClip) -> tuple[np.ndarray, np.ndarray]:
    """A long clip with every window (17 frames, one frame shared with the next) through the codecs on its own."""
    per_frame = bt.SAMPLES_PER_FRAME
    frames, videos, audios = clip.video.shape[0], [], []
    for start in range(0, frames - 1, WINDOW_HOP):
        video = clip.video[start:start + bt.FRAMES]
        audio = clip.audio[start * per_frame:(start + bt.FRAMES) * per_frame]
        if video.shape[0] < bt.FRAMES:  # the last window: padded, only its own frames kept
            video = np.concatenate([video, np.repeat(video[-1:], bt.FRAMES - video.shape[0], 0)])
        audio = np.pad(audio, (0, bt.NUM_SAMPLES - audio.shape[0]))
        decoded_v, decoded_a = pipe.codecs.decode(pipe.codecs.encode(torch.from_numpy(video[None]),
                                                                     torch.from_numpy(audio[None]).float()))
        keep = min(WINDOW_HOP, frames - start)
        videos.append(decoded_v[0, :keep].numpy())
        audios.append(decoded_a[0, :keep * per_frame].numpy())
    return np.concatenate(videos), np.concatenate(audios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=40, help="held-out clips (default 40)")
    parser.add_argument("--first", type=int, default=500, help="the first of them (default 500)")
    parser.add_argument("--variant", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the bundled model)")
    parser.add_argument("--codecs", default=None, help="codec folder (default: the ones the checkpoint names)")
    parser.add_argument("--codec-streams", type=int, default=20, help="long clips through the codecs (0: skip)")
    parser.add_argument("--codec-seconds", type=float, default=60.0, help="seconds of each (default 60)")
    parser.add_argument("--from-level", type=int, nargs="*", default=[],
                        help="where the error arises: sample from the clips' latents noised to these levels (SDEdit)")
    parser.add_argument("--seeds", type=int, default=0,
                        help="with 2 or more: how much of the size error the context sets, across this many seeds")
    args = parser.parse_args(argv)
    pipe = Pipeline.from_pretrained(args.checkpoint, codecs=args.codecs)
    clips = [bt.make_clip(0, args.first + i, "test") for i in range(args.num)]
    video, audio = np.stack([c.video for c in clips]), np.stack([c.audio for c in clips])
    source_cv = variation(sizes(video))
    print("| variant | made / given size, median | clips > 5 % off | clips > 10 % off | frame-to-frame CV made | "
          "given | source | s |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.variant:
        began = time.perf_counter()
        result = pipe(task="av_continue", video=video, audio=audio, num=args.num, seed=0,
                      sampling=DEFAULT_SAMPLING.replace(**VARIANTS[name]))
        took = time.perf_counter() - began
        size = sizes(result.video)  # (B, 17)
        given_frames = pipe.layout.segment_frames(1).stop  # av_continue gives segments 0-1: frames 0-4
        print(precision_row(name, size, given_frames)
              + f" {variation(size[:, :given_frames]):.3f} | {source_cv:.3f} | {took:.0f} |", flush=True)
    if args.from_level:
        error_levels(pipe, video, audio, args.from_level)
    if args.seeds > 1:
        seed_agreement(pipe, video, audio, args.seeds)
    if args.codec_streams:
        held, spread = 0, []
        for i in range(args.codec_streams):
            clip = bt.make_clip(0, args.first + i, "test", frames=round(args.codec_seconds * bt.FPS) + 1)
            windows = stream_windows(*codec_stream(pipe, clip))
            held += time_held(windows)["lost_s"] is None
            spread += [w["size_px2"] / windows[0]["size_px2"] for w in windows]
        print(f"\nthe codecs alone: {held}/{args.codec_streams} streams of {args.codec_seconds:g} s held on every "
              f"criterion; window size / first window's {min(spread):.3f}-{max(spread):.3f}, sd {np.std(spread):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
