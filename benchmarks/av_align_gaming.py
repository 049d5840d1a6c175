"""How the published AV-align is gamed, and what the robust score makes of the same clips.

Synthetic clips at the Landscape geometry (21 frames of 64x64 at 10 fps, 2.1 s of 16 kHz audio), a few of each
kind, scored by the published formula (``av_align_reference``) and by avdit's robust one (one-to-one matching
minus its chance level, ``av_align_robust``). A person would call only the first of them aligned. Two rows of
real clips follow as a check: Bouncing Tones test clips with their own audio and with another clip's.

    python benchmarks/av_align_gaming.py            # prints the markdown table; about 20 s on a CPU
"""

from __future__ import annotations

import argparse

import numpy as np

from avdit.eval.av_align import chance_iou, clip_peaks, matched_iou, peak_iou
from avdit.layout import BOUNCING_TONES, GEOMETRIES

LAYOUT = GEOMETRIES["landscape"]
FPS, FRAMES, SR = LAYOUT.fps, LAYOUT.frames, LAYOUT.sample_rate
SAMPLES = FRAMES * SR // FPS
SIZE = LAYOUT.height


def bounce(first: float, restitution: float, drop: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """A ball dropped from rest that first hits the floor at ``first`` s and bounces back up, losing speed.

    Returns (impact times (s) inside the clip, (T,) height above the floor in px at each frame)."""
    g = 2 * drop / first ** 2
    impacts, t, speed = [first], first, g * first * restitution
    while speed > 1 and (t := t + 2 * speed / g) < FRAMES / FPS:
        impacts.append(t)
        speed *= restitution

    def height(s: float) -> float:
        if s < first:
            return drop - g * s * s / 2
        k = np.searchsorted(impacts, s, side="right") - 1
        up, s = g * first * restitution ** (k + 1), s - impacts[k]
        return max(up * s - g * s * s / 2, 0.0)

    return np.array(impacts), np.array([height(j / FPS) for j in range(FRAMES)])


def render_ball(height: np.ndarray, floor: float = 46.0, radius: float = 12.0) -> np.ndarray:
    """(T, H, W, 3) uint8: a textured, anti-aliased disc at sub-pixel heights on a smooth background."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(float)
    background = 40 + yy * 0.5 + xx * 0.3
    video = np.empty((FRAMES, SIZE, SIZE, 3), np.uint8)
    for j, h in enumerate(height):
        cy, cx = floor - h, SIZE / 2
        disc = np.clip(radius - np.hypot(yy - cy, xx - cx) + 0.5, 0, 1)
        texture = 0.5 + 0.5 * np.cos(2 * np.pi * (yy - cy) / 8) * np.cos(2 * np.pi * (xx - cx) / 8)
        for c, (lo, hi) in enumerate(((150, 240), (50, 210), (20, 60))):
            video[j, ..., c] = np.round(background * (1 - disc) + (lo + (hi - lo) * texture) * disc)
    return video


def clicks(times, rng: np.random.Generator, amplitude: float = 0.5) -> np.ndarray:
    """(S,) float32 silence with a short decaying noise burst at each time (s) inside the clip."""
    audio = np.zeros(SAMPLES, np.float32)
    for t in times:
        start = int(t * SR)
        if 0 <= start < SAMPLES:
            n = min(800, SAMPLES - start)
            audio[start:start + n] += rng.normal(0, amplitude, n) * np.exp(-np.arange(n) / 200)
    return audio


def stutter_video(rng: np.random.Generator) -> np.ndarray:
    """Noise that changes every other frame: the flow peaks on every second frame, as a flickering model's does."""
    frames = rng.integers(0, 256, (FRAMES // 2 + 1, SIZE, SIZE, 3), dtype=np.uint8)
    return np.repeat(frames, 2, axis=0)[:FRAMES]


def noise_video(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)


def static_video(rng: np.random.Generator) -> np.ndarray:
    return np.repeat(rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8), FRAMES, axis=0)


def random_times(rng: np.random.Generator, rate: float = 4.0) -> np.ndarray:
    return np.sort(rng.uniform(0.05, FRAMES / FPS - 0.1, rng.poisson(rate * FRAMES / FPS) + 1))


def ball_with_clicks(offset: float = 0.0, random: bool = False):
    """A bouncing-ball clip maker: a click at each impact (+ ``offset`` s), or as many clicks at random times."""
    def make(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        impacts, height = bounce(first=rng.uniform(0.4, 0.7), restitution=rng.uniform(0.6, 0.8))
        times = random_times(rng, rate=len(impacts) * FPS / FRAMES) if random else impacts + offset
        return render_ball(height), clicks(times, rng)
    return make


def crackle(rng: np.random.Generator) -> np.ndarray:
    """White noise whose loudness jumps every 25 ms: onsets all through the clip."""
    loudness = np.repeat(rng.uniform(0.05, 0.5, SAMPLES // 400 + 1), 400)[:SAMPLES]
    return (rng.normal(0, 1, SAMPLES) * loudness).astype(np.float32)


CASES = {  # name: (aligned as a person would judge it, clip maker: rng -> (video (T, H, W, 3) uint8, audio (S,)))
    "bouncing ball, a click at each impact": (True, ball_with_clicks()),
    "bouncing ball, clicks 0.25 s late": (False, ball_with_clicks(offset=0.25)),
    "bouncing ball, clicks at random times": (False, ball_with_clicks(random=True)),
    "stutter video, random clicks": (False, lambda rng: (stutter_video(rng), clicks(random_times(rng), rng))),
    "stutter video, clicks every 0.1 s": (False, lambda rng: (stutter_video(rng), clicks(
        np.arange(0.05, FRAMES / FPS - 0.1, 0.1) + rng.uniform(0, 0.05), rng))),
    "noise video, noise audio": (False, lambda rng: (noise_video(rng), crackle(rng))),
    "static video, silence": (False, lambda rng: (static_video(rng), np.zeros(SAMPLES, np.float32))),
    "static video, random clicks": (False, lambda rng: (static_video(rng), clicks(random_times(rng), rng))),
}


def mean_scores(peaks: list[tuple[np.ndarray, np.ndarray]], fps: float, frames: int) -> dict[str, float]:
    """Means over clips, given as (audio peak times, video peak times): peak counts, the reference score and
    the robust one with its two parts."""
    rows = []
    for a, v in peaks:
        one_to_one, chance = matched_iou(a, v, fps), chance_iou(a, v, fps, frames)
        rows.append({"audio peaks": len(a), "video peaks": len(v), "reference": peak_iou(a, v, fps),
                     "one-to-one IoU": one_to_one, "chance": chance, "robust": one_to_one - chance})
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}


def score_case(case: str, clips: int = 16, seed: int = 0) -> dict[str, float]:
    """``mean_scores`` of ``clips`` synthetic clips of one kind in CASES."""
    rng = np.random.default_rng(seed)
    return mean_scores([clip_peaks(*CASES[case][1](rng), FPS, SR) for _ in range(clips)], FPS, FRAMES)


def bouncing_tones_scores(clips: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Real aligned clips as a check: Bouncing Tones test clips (8 fps) with their own audio, and each with the
    next clip's audio (as misaligned as real clips get)."""
    from avdit.eval.evaluate import held_out

    video, audio, _ = held_out("bouncing-tones", clips, seed)
    own = [clip_peaks(v, a, BOUNCING_TONES.fps, BOUNCING_TONES.sample_rate) for v, a in zip(video, audio)]
    other = [(own[(i + 1) % clips][0], own[i][1]) for i in range(clips)]
    return {"Bouncing Tones test clips, own audio": mean_scores(own, BOUNCING_TONES.fps, BOUNCING_TONES.frames),
            "Bouncing Tones test clips, the next clip's audio": mean_scores(other, BOUNCING_TONES.fps,
                                                                            BOUNCING_TONES.frames)}


COLUMNS = ("audio peaks", "video peaks", "reference", "one-to-one IoU", "chance", "robust")


def table_rows(scores: dict[str, dict[str, float]], aligned: dict[str, bool]) -> list[str]:
    return [f"| {case} | {'yes' if aligned[case] else 'no'} | "
            + " | ".join(f"{row[c]:.1f}" if "peaks" in c else f"{row[c]:.3f}" for c in COLUMNS) + " |"
            for case, row in scores.items()]


def table(clips: int = 16, seed: int = 0, real_clips: int = 96) -> str:
    lines = ["| clips | aligned | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---:|" * len(COLUMNS)]
    lines += table_rows({case: score_case(case, clips, seed) for case in CASES},
                        {case: aligned for case, (aligned, _) in CASES.items()})
    if real_clips:
        real = bouncing_tones_scores(real_clips, seed)
        lines += table_rows(real, dict(zip(real, (True, False))))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=16, help="synthetic clips of each kind; the table shows means")
    parser.add_argument("--real-clips", type=int, default=96,
                        help="Bouncing Tones test clips for the two real rows (0: leave them out)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every kind's clips")
    args = parser.parse_args(argv)
    print(table(args.clips, args.seed, args.real_clips))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
