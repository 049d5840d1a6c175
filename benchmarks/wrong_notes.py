"""Wrong notes: how often one window plays a class its picture does not show, and whether the model can tell.

    python benchmarks/wrong_notes.py [--clips 40] [--first 0] [--windows 27] [--guidance 0,1,3]
                                     [--score-clip 1] [--score-windows 135] [--score-seeds 4] [--checkpoint DIR]

A stream that loses its subject now loses it to a wrong note: one window whose plucks are a neighbouring class
(docs/streams.md). This measures the error where it arises, in one window, without a stream around it.

Rate: v2a, one window at a time, along held-out clips as long as ``--windows`` windows (the same bounce going on),
windows 16 frames apart as a stream's measures are. The share of windows whose pitch class (``pitch_class``) is not
the clip's, for each free-guidance scale of ``--guidance`` (the first is the baseline the ratio is against).

Can the model's own likelihood tell a wrong note? On ``--score-clip``'s windows, ``--score-seeds`` candidates each
(with generation's defaults). Each candidate's generated audio is noised to levels 100, 300, 500 and 700 (two noise
draws each) and scored by the network's noise-prediction error given the video (``cond``) and with the video
replaced by noise at T, as free guidance drops it (``uncond``); ``cond - uncond`` estimates the pointwise mutual
information of audio and video (lower: the picture explains the sound better). Beside them, what a stream keeps by
(``avdit.diffusion.sound_choice``): how unlike the first window's sound (window 0's first candidate) a candidate's
made part sounds, 1 - the cosine similarity of their spectra. Reports each score's AUC for telling a wrong note from
a right one (0.5: no better than chance), and the wrong-note rate of windows 1 on when each window keeps, of K
candidates, the one the score likes best, over every K-subset of the seeds, against K = 1.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from avdit.data import bouncing_tones as bt
from avdit.diffusion import DEFAULT_SCHEDULE, generate_latents
from avdit.diffusion.denoiser import eps_denoiser
from avdit.diffusion.schedule import q_sample
from avdit.diffusion.sound_choice import unlike
from avdit.eval.bt_analysis import pitch_class
from avdit.eval.long_clips import WINDOW_HOP, window_starts
from avdit.latents import AV
from avdit.layout import AUDIO, VIDEO, M
from avdit.pipeline import Pipeline
from avdit.tasks import get_task

SCORE_LEVELS = (100, 300, 500, 700)
SCORE_DRAWS = 2  # noise draws per level


def clip_windows(index: int, windows: int) -> tuple[np.ndarray, int]:
    """The windows of held-out clip ``index`` made ``windows`` windows long: (windows, 17, 64, 64, 3) uint8, and
    its class."""
    clip = bt.make_clip(0, index, "test", frames=WINDOW_HOP * windows + 1)
    return np.stack([clip.video[s:s + bt.FRAMES] for s in window_starts(clip.video.shape[0])]), clip.params.k


def wrong_rate(pipe: Pipeline, first: int, clips: int, windows: int, guidance: float) -> dict:
    """v2a one window at a time along each clip: how many windows play another class than the clip's."""
    wrong, per_clip = 0, {}
    for index in range(first, first + clips):
        video, k = clip_windows(index, windows)
        made = pipe(task="v2a", video=video, num=windows, seed=index,
                    sampling=pipe.default_sampling.replace(guidance=guidance))
        off = sum(pitch_class(a) != k for a in made.audio)
        wrong += off
        if off:
            per_clip[index] = off
    return {"guidance": guidance, "wrong": wrong, "windows": clips * windows, "per_clip": per_clip}


@torch.no_grad()
def scored_candidates(pipe: Pipeline, index: int, windows: int, seeds: int) -> list[dict]:
    """v2a candidates of every window of clip ``index``, one per seed: whether each is a wrong note, and its scores
    (see the module doc)."""
    model, layout = pipe.model, pipe.layout
    denoiser = eps_denoiser(model, layout, DEFAULT_SCHEDULE)
    task = get_task("v2a", layout.num_segments)
    made_cells = layout.cells_to_latents((~task.given)[None]).audio  # (1, Ca, Ta) bool: the generated audio
    video, k = clip_windows(index, windows)
    clean = pipe.codecs.encode(torch.from_numpy(video), torch.zeros(windows, layout.num_samples))
    rows = []
    for seed in range(seeds):
        out = generate_latents(model, clean, task.given, layout, pipe.default_sampling,
                               generator=torch.Generator().manual_seed(seed))
        _, audio = pipe.codecs.decode(out)
        draws = torch.Generator().manual_seed(1000 + seed)
        cond, uncond = torch.zeros(windows), torch.zeros(windows)
        for level in SCORE_LEVELS:
            for _ in range(SCORE_DRAWS):
                eps = torch.randn(out.audio.shape, generator=draws)  # (B, Ca, Ta)
                noisy = torch.where(made_cells, q_sample(out.audio, torch.tensor(level), eps), out.audio)
                levels = torch.zeros(windows, M, layout.num_segments, dtype=torch.long)  # (B, M, N)
                levels[:, AUDIO] = torch.where(task.given[AUDIO], 0, level)
                dropped = levels.clone()
                dropped[:, VIDEO] = DEFAULT_SCHEDULE.T  # the video replaced by noise at T
                video_noise = torch.randn(out.video.shape, generator=draws)
                predicted = denoiser(AV(torch.cat([out.video, video_noise]), torch.cat([noisy, noisy])),
                                     torch.cat([levels, dropped]))
                error = ((predicted.audio.float() - torch.cat([eps, eps])) ** 2 * made_cells).flatten(1).sum(1)
                error = error / made_cells.sum()
                cond, uncond = cond + error[:windows], uncond + error[windows:]
        if seed == 0:
            first_sound = audio[:1]  # (1, S): what a stream along this clip would hold its windows to
        start = layout.segment_samples(1).stop  # the part of a window a rolled window makes
        unlikeness = unlike(audio[:, start:], first_sound.expand(windows, -1), bt.SAMPLE_RATE)  # (B,)
        rows += [{"window": i, "seed": seed, "wrong": bool(pitch_class(audio[i].numpy()) != k),
                  "cond": float(cond[i]), "pmi": float(cond[i] - uncond[i]), "unlike": float(unlikeness[i])}
                 for i in range(windows)]
        print(f"  scored seed {seed + 1}/{seeds}", flush=True)
    return rows


def auc(rows: list[dict], key: str) -> float:
    """P(a wrong note scores higher than a right one) (ties half)."""
    wrong = np.array([r[key] for r in rows if r["wrong"]])
    right = np.array([r[key] for r in rows if not r["wrong"]])
    if not wrong.size or not right.size:
        return float("nan")
    return float((wrong[:, None] > right[None]).mean() + 0.5 * (wrong[:, None] == right[None]).mean())


def kept_best(rows: list[dict], key: str, k: int) -> float:
    """The wrong-note rate when each window keeps, of k candidates, the one with the lowest ``key``, over every
    k-subset of the seeds."""
    by_window: dict[int, list[dict]] = {}
    for r in (r for r in rows if r["window"] > 0):  # window 0 holds the reference
        by_window.setdefault(r["window"], []).append(r)
    seeds = sorted({r["seed"] for r in rows})
    kept = [min((c for c in candidates if c["seed"] in subset), key=lambda c: c[key])["wrong"]
            for subset in itertools.combinations(seeds, k) for candidates in by_window.values()]
    return float(np.mean(kept))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=40, help="held-out clips for the rate (default 40)")
    parser.add_argument("--first", type=int, default=0, help="the first of them (default 0)")
    parser.add_argument("--windows", type=int, default=27, help="windows per clip (default 27: about a minute)")
    parser.add_argument("--guidance", default="1,0,3", help="free-guidance scales, the first the baseline")
    parser.add_argument("--score-clip", type=int, default=1, help="the clip whose candidates are scored (default 1)")
    parser.add_argument("--score-windows", type=int, default=135, help="its windows (default 135: 4.5 min)")
    parser.add_argument("--score-seeds", type=int, default=4, help="candidates per window (default 4; 0: skip)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the bundled model)")
    args = parser.parse_args()
    pipe = Pipeline.from_pretrained(args.checkpoint)

    began = time.perf_counter()
    rates = [wrong_rate(pipe, args.first, args.clips, args.windows, float(g)) for g in args.guidance.split(",")]
    base = rates[0]["wrong"] / rates[0]["windows"]
    print(f"\nv2a one window at a time, held-out clips {args.first}-{args.first + args.clips - 1}, "
          f"{args.windows} windows each ({time.perf_counter() - began:.0f} s)\n")
    print("| free guidance | wrong notes | rate | vs the first row | clips with any (wrong windows) |")
    print("|---:|---:|---:|---:|---|")
    for r in rates:
        rate = r["wrong"] / r["windows"]
        ratio = f"{rate / base:.2f}x" if base else "-"
        clips = ", ".join(f"{c} ({n})" for c, n in r["per_clip"].items()) or "none"
        print(f"| {r['guidance']:g} | {r['wrong']} of {r['windows']} | {rate:.4f} | {ratio} | {clips} |")

    if args.score_seeds:
        rows = scored_candidates(pipe, args.score_clip, args.score_windows, args.score_seeds)
        wrong = sum(r["wrong"] for r in rows)
        print(f"\nclip {args.score_clip}: {len(rows)} candidates ({args.score_windows} windows x {args.score_seeds} "
              f"seeds), {wrong} wrong notes; windows 1 on: {kept_best(rows, 'cond', 1):.4f} with one candidate\n")
        print("| score | AUC: wrong above right | " + " | ".join(f"kept best of {k}" for k in
                                                              range(2, args.score_seeds + 1)) + " |")
        print("|---|---:|" + "---:|" * (args.score_seeds - 1))
        for key, name in (("cond", "error given the video"), ("pmi", "error given the video - given nothing"),
                          ("unlike", "spectrum unlike the first window's")):
            kept = " | ".join(f"{kept_best(rows, key, k):.4f}" for k in range(2, args.score_seeds + 1))
            print(f"| {name} | {auc(rows, key):.2f} | {kept} |")


if __name__ == "__main__":
    main()
