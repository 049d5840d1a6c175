"""Bouncing Tones v1: the procedural audiovisual benchmark of docs/bouncing-tones.md, implemented exactly.

One clip: a coloured disc bouncing on a floor (17 frames, 8 fps, 64x64) and a plucked tone at every floor
impact (16 kHz mono, 34,000 samples). Colour class k <-> pitch class k; impacts in the video are onsets in
the audio. numpy only, deterministic for a seed; clip ``i`` of a split with seed ``s`` depends on
(s, split, i) alone, so clips can be made in any order, in memory or on disk.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import asdict, dataclass

import numpy as np

FPS = 8
FRAMES = 17
SIZE = 64
SAMPLE_RATE = 16000
DURATION = FRAMES / FPS  # 2.125 s
NUM_SAMPLES = 34000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 2000: the audio of one frame period
NUM_CLASSES = 8
BACKGROUND = (16, 16, 16)
NOISE_SD = 0.003
PLUCK_AMPLITUDE = 0.6
PLUCK_DECAY = 0.1  # seconds
PLUCK_SPAN = 3.0  # seconds of pluck rendered after an impact: exp(-30) ~ 1e-13 of its amplitude left there


@dataclass(frozen=True)
class BTParams:
    """Per-clip parameters (each drawn independently and uniformly) and the impact times they imply."""

    k: int  # identity class in {0..7}
    radius: float  # px, [5, 9]
    x: float  # px, horizontal centre, [14, 50]
    period: float  # s, [0.5, 1.0]
    phase: float  # [0, 1)
    height: float  # px, [18, 34]

    @property
    def impacts(self) -> list[float]:
        """Times t in [0, 2.125) with t / P + phase an integer: the disc touches the floor."""
        return self.impacts_within(DURATION)

    def impacts_within(self, duration: float) -> list[float]:
        """Impact times in [0, duration) s."""
        first = math.ceil(self.phase)  # smallest integer j with (j - phase) * P >= 0
        times = []
        j = first
        while (t := (j - self.phase) * self.period) < duration:
            times.append(t)
            j += 1
        return times

    @property
    def f0(self) -> float:
        """Pitch of class k: 220 * 2^(3k / 12) Hz."""
        return 220.0 * 2 ** (3 * self.k / 12)

    @property
    def rgb(self) -> tuple[int, int, int]:
        """Colour of class k: HSV(k / 8, 1, 1), as uint8."""
        return tuple(round(255 * c) for c in colorsys.hsv_to_rgb(self.k / NUM_CLASSES, 1.0, 1.0))

    def centre_y(self, t: np.ndarray | float) -> np.ndarray | float:
        """Disc centre row (px, pixel centres at i + 0.5): (58 - r) - H |sin(pi (t / P + phase))|."""
        return (58 - self.radius) - self.height * np.abs(np.sin(np.pi * (np.asarray(t) / self.period + self.phase)))

    def to_dict(self) -> dict:
        return {**asdict(self), "impacts": self.impacts, "f0": self.f0, "rgb": list(self.rgb)}


SPLITS = ("train", "test")


def clip_rng(seed: int, index: int, split: str = "train") -> np.random.Generator:
    """The random stream of clip ``index`` of ``split`` in a dataset with ``seed`` (splits never share a clip)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.random.default_rng([seed, SPLITS.index(split), index])


def sample_params(rng: np.random.Generator) -> BTParams:
    return BTParams(
        k=int(rng.integers(0, NUM_CLASSES)),
        radius=float(rng.uniform(5, 9)),
        x=float(rng.uniform(14, 50)),
        period=float(rng.uniform(0.5, 1.0)),
        phase=float(rng.uniform(0, 1)),
        height=float(rng.uniform(18, 34)),
    )


def render_video(params: BTParams, frames: int = FRAMES) -> np.ndarray:
    """(T, 64, 64, 3) uint8, T = ``frames`` (17): frame j shows time j / 8 s; anti-aliased disc over the
    background."""
    centres = np.arange(SIZE) + 0.5
    rows, cols = centres[:, None], centres[None, :]  # (64, 1), (1, 64)
    times = np.arange(frames) / FPS
    y = params.centre_y(times)[:, None, None]  # (T, 1, 1)
    distance = np.sqrt((cols - params.x) ** 2 + (rows - y) ** 2)  # (T, 64, 64)
    coverage = np.clip(params.radius + 0.5 - distance, 0.0, 1.0)[..., None]  # (T, 64, 64, 1)
    background = np.array(BACKGROUND, dtype=np.float64)
    colour = np.array(params.rgb, dtype=np.float64)
    video = background * (1 - coverage) + colour * coverage  # (T, 64, 64, 3)
    return np.round(video).astype(np.uint8)


def render_audio(params: BTParams, rng: np.random.Generator, num_samples: int = NUM_SAMPLES) -> np.ndarray:
    """(S,) float32, S = ``num_samples`` (34000): a decaying two-partial pluck at every impact, Gaussian noise
    (sd 0.003), clipped."""
    t = np.arange(num_samples) / SAMPLE_RATE
    audio = np.zeros(num_samples, dtype=np.float64)
    for impact in params.impacts_within(num_samples / SAMPLE_RATE):
        # from the impact on, for PLUCK_SPAN s (longer than a clip: exact there; past it the pluck is below 1e-12,
        # so a clip of minutes costs a span per impact, not its whole length)
        first = max(0, int(impact * SAMPLE_RATE) - 1)  # a sample early: ``on`` picks t >= impact exactly
        span = slice(first, first + int(PLUCK_SPAN * SAMPLE_RATE))
        u = t[span] - impact
        on = u >= 0
        pluck = np.sin(2 * np.pi * params.f0 * u[on]) + 0.3 * np.sin(4 * np.pi * params.f0 * u[on])
        audio[span][on] += PLUCK_AMPLITUDE * np.exp(-u[on] / PLUCK_DECAY) * pluck
    audio += rng.normal(0.0, NOISE_SD, num_samples)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class BTClip:
    params: BTParams
    video: np.ndarray  # (17, 64, 64, 3) uint8 (more frames for a longer clip)
    audio: np.ndarray  # (34000,) float32 (more for a longer clip)


def make_clip(seed: int, index: int, split: str = "train", frames: int = FRAMES) -> BTClip:
    """Clip ``index`` of a Bouncing Tones split with ``seed`` (parameters first, then the audio noise).
    ``frames`` > 17 makes the same bounce go on for longer (``frames`` / 8 s), to measure long generation."""
    rng = clip_rng(seed, index, split)
    params = sample_params(rng)
    return BTClip(params, render_video(params, frames), render_audio(params, rng, round(frames / FPS * SAMPLE_RATE)))
