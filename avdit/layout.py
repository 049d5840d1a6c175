"""Where every latent time step sits in seconds, and which task segment it belongs to.

A clip is a grid of M = 2 modalities (0 = video, 1 = audio) x N time segments. The segments follow the causal
video latent: segment 0 is the first frame (encoded on its own), then every ``video_temporal_stride`` frames
make one latent frame; ``latent_frames_per_segment`` latent frames make one segment. Audio latents tile the
clip from time 0, one per ``audio_hop`` samples (the codec pads the end of the clip to a whole latent), and each
belongs to the segment that holds its centre: where the hop divides the segment boundaries (avdit's own codecs at
the named geometries) every latent lies inside its segment; otherwise (Stable Audio's hop of 2048 samples at
44.1 kHz) a latent astride a boundary goes to the side holding most of it. This module is the one place where
that mapping is computed; the codecs provide the strides, the model and the diffusion code ask the layout.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import torch

from avdit.latents import AV

VIDEO, AUDIO = 0, 1
MODALITIES = ("video", "audio")
M = len(MODALITIES)


class LayoutError(ValueError):
    """A clip geometry that cannot be cut into the task grid."""


@dataclass(frozen=True)
class ClipLayout:
    """Clip geometry (pixels, samples) and the codecs' strides; everything else is derived.

    The geometry comes from the data (``GEOMETRIES`` names the paper's and Bouncing Tones'); the strides come from
    the codecs (``CodecPair.layout``) and default to avdit's own: a causal video codec with temporal stride 4 and
    spatial stride 8, an audio codec with hop 400 (40 latents per second at 16 kHz). Pretrained codecs bring
    others (``avdit.codecs.adapters``): temporal stride 4 or 8, spatial 8 to 32, hops of 320 to 2048 samples.
    """

    fps: int
    frames: int
    height: int
    width: int
    sample_rate: int
    video_temporal_stride: int = 4
    video_spatial_stride: int = 8
    audio_hop: int = 400
    latent_frames_per_segment: int = 1

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value <= 0:
                raise LayoutError(f"ClipLayout.{field.name} must be a positive integer, got {value!r}")
        if (self.frames - 1) % self.video_temporal_stride:
            raise LayoutError(
                f"a causal video codec with temporal stride {self.video_temporal_stride} needs 1 + "
                f"{self.video_temporal_stride}k frames; {self.frames} frames at {self.fps} fps do not fit. Durations "
                f"that work: {self._working_durations()}"
            )
        if self.height % self.video_spatial_stride or self.width % self.video_spatial_stride:
            raise LayoutError(
                f"frame size {self.height}x{self.width} is not a multiple of the video codec's spatial "
                f"stride {self.video_spatial_stride}"
            )
        if (self.video_latent_frames - 1) % self.latent_frames_per_segment:
            raise LayoutError(
                f"{self.video_latent_frames - 1} latent frames after the first cannot be grouped "
                f"{self.latent_frames_per_segment} per segment"
            )
        if self.duration * self.sample_rate % 1:
            raise LayoutError(
                f"{self.frames} frames at {self.fps} fps is not a whole number of audio samples at "
                f"{self.sample_rate} Hz. Durations that work: {self._working_durations()}"
            )
        held = [self.audio_segments.count(n) for n in range(self.num_segments)]
        if 0 in held:
            raise LayoutError(
                f"segment {held.index(0)} ({float(self.segment_bounds[held.index(0)]):g} s to "
                f"{float(self.segment_bounds[held.index(0) + 1]):g} s) holds no audio latent of "
                f"{float(1 / self.audio_latent_rate) * 1000:.1f} ms: choose longer segments "
                "(latent_frames_per_segment, a lower fps) or an audio codec with a smaller hop"
            )

    def _working_durations(self) -> str:
        return working_durations(self.fps, self.video_temporal_stride, float(self.duration),
                                 sample_rate=self.sample_rate)

    # -- pixels and samples -------------------------------------------------------------------------------
    @property
    def duration(self) -> Fraction:
        """Clip length in seconds (exact): frame j shows time j / fps and lasts 1 / fps."""
        return Fraction(self.frames, self.fps)

    @property
    def num_samples(self) -> int:
        return int(self.duration * self.sample_rate)

    # -- latents ------------------------------------------------------------------------------------------
    @property
    def video_latent_frames(self) -> int:
        return 1 + (self.frames - 1) // self.video_temporal_stride

    @property
    def video_latent_size(self) -> tuple[int, int]:
        return self.height // self.video_spatial_stride, self.width // self.video_spatial_stride

    @property
    def audio_latents(self) -> int:
        """Audio latents of the clip: the last is padded by the codec when the hop does not divide the samples."""
        return math.ceil(self.num_samples / self.audio_hop)

    @property
    def audio_latent_rate(self) -> Fraction:
        """Audio latents per second."""
        return Fraction(self.sample_rate, self.audio_hop)

    @cached_property
    def video_latent_spans(self) -> tuple[tuple[Fraction, Fraction], ...]:
        """(start, end) in seconds of the frames behind each video latent frame."""
        spans = [(Fraction(0), Fraction(1, self.fps))]
        for k in range(1, self.video_latent_frames):
            first = 1 + (k - 1) * self.video_temporal_stride
            spans.append((Fraction(first, self.fps), Fraction(first + self.video_temporal_stride, self.fps)))
        return tuple(spans)

    @cached_property
    def audio_latent_spans(self) -> tuple[tuple[Fraction, Fraction], ...]:
        step = 1 / self.audio_latent_rate
        return tuple((j * step, (j + 1) * step) for j in range(self.audio_latents))

    # -- the task grid ------------------------------------------------------------------------------------
    @property
    def num_segments(self) -> int:
        return 1 + (self.video_latent_frames - 1) // self.latent_frames_per_segment

    @cached_property
    def segment_bounds(self) -> tuple[Fraction, ...]:
        """N + 1 boundaries in seconds: segment n is [bounds[n], bounds[n + 1])."""
        spans = self.video_latent_spans
        bounds = [Fraction(0), spans[0][1]]
        for n in range(1, self.num_segments):
            bounds.append(spans[n * self.latent_frames_per_segment][1])
        return tuple(bounds)

    def segment_of_time(self, seconds: Fraction) -> int:
        for n in range(self.num_segments):
            if self.segment_bounds[n] <= seconds < self.segment_bounds[n + 1]:
                return n
        raise LayoutError(f"{float(seconds)} s is outside the clip [0, {float(self.duration)}) s")

    @cached_property
    def video_segments(self) -> tuple[int, ...]:
        """Segment index of each video latent frame (length video_latent_frames)."""
        return tuple(self.segment_of_time(start) for start, _ in self.video_latent_spans)

    @cached_property
    def audio_segments(self) -> tuple[int, ...]:
        """Segment index of each audio latent step (length audio_latents): the segment holding its centre (the
        last segment for a padded last latent whose centre lies past the clip's end)."""
        bounds, last = self.segment_bounds, self.num_segments - 1
        return tuple(min(bisect.bisect_right(bounds, (start + end) / 2) - 1, last)
                     for start, end in self.audio_latent_spans)

    def segment_samples(self, n: int) -> slice:
        """Audio samples of segment n."""
        lo, hi = self.segment_bounds[n], self.segment_bounds[n + 1]
        return slice(int(lo * self.sample_rate), int(hi * self.sample_rate))

    def segment_frames(self, n: int) -> slice:
        """Video frames of segment n."""
        lo, hi = self.segment_bounds[n], self.segment_bounds[n + 1]
        return slice(int(lo * self.fps), int(hi * self.fps))

    # -- latent shapes and the grid -> element map --------------------------------------------------------
    def video_latent_shape(self, channels: int) -> tuple[int, int, int, int]:
        """(Cv, Tv, h, w) of one clip's video latent."""
        return (channels, self.video_latent_frames, *self.video_latent_size)

    def audio_latent_shape(self, channels: int) -> tuple[int, int]:
        """(Ca, Ta) of one clip's audio latent."""
        return (channels, self.audio_latents)

    def cells_to_latents(self, grid: torch.Tensor) -> AV:
        """Spread a per-cell grid (B, M, N) over latent time steps, shaped to broadcast against the latents.

        Returns video (B, 1, Tv, 1, 1) and audio (B, 1, Ta); any dtype (noise levels, masks).
        """
        if grid.dim() != 3 or grid.shape[1:] != (M, self.num_segments):
            raise LayoutError(f"expected a grid (B, {M}, {self.num_segments}), got {tuple(grid.shape)}")
        video_index = torch.tensor(self.video_segments, device=grid.device)
        audio_index = torch.tensor(self.audio_segments, device=grid.device)
        video = grid[:, VIDEO, video_index]  # (B, Tv)
        audio = grid[:, AUDIO, audio_index]  # (B, Ta)
        return AV(video[:, None, :, None, None], audio[:, None, :])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ClipLayout":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise LayoutError(f"unknown ClipLayout fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


COMMON_FPS = (5, 6, 8, 10, 12, 15, 16, 20, 24, 25, 30)  # the frame rates an error may suggest


def working_durations(fps: int, temporal_stride: int = 4, near: float = 2.0, count: int = 4,
                      sample_rate: int | None = None) -> str:
    """'1.7 s (17 frames), 2.1 s (21 frames), ...': the clip lengths near ``near`` seconds that a causal video
    codec can cut into the task grid at ``fps`` (1 + stride * k frames: the first frame alone, then segments) and,
    given ``sample_rate``, that hold a whole number of audio samples."""
    closest = max(1, round((near * fps - 1) / temporal_stride))
    fits = [k for k in range(1, closest + 2 * fps + count + 1)  # whole samples repeat with a period of fps in k
            if sample_rate is None or (1 + temporal_stride * k) * sample_rate % fps == 0]
    ks = sorted(sorted(fits, key=lambda k: abs(k - closest))[:count + 1])
    if not ks:
        rates = [f for f in COMMON_FPS if sample_rate % f == 0]
        return (f"none at {fps} fps, where no clip of 1 + {temporal_stride}k frames holds whole samples at "
                f"{sample_rate} Hz; frame rates that do: {', '.join(map(str, rates))}")
    return ", ".join(f"{(1 + temporal_stride * k) / fps:g} s ({1 + temporal_stride * k} frames)" for k in ks)


# Named clip geometries. The paper's (Sec. 5, App. D): Monologues at 8 fps, 128x128, 2.125 s (17 frames);
# Landscape and AIST++ at 64x64 and 10 fps (as in MM-Diffusion), cut to 21 frames (2.1 s) for the causal codec.
# Bouncing Tones is the project's built-in benchmark (docs/bouncing-tones.md).
GEOMETRIES: dict[str, ClipLayout] = {
    "bouncing-tones": ClipLayout(fps=8, frames=17, height=64, width=64, sample_rate=16000),
    "monologues": ClipLayout(fps=8, frames=17, height=128, width=128, sample_rate=16000),
    "landscape": ClipLayout(fps=10, frames=21, height=64, width=64, sample_rate=16000),
    "aist++": ClipLayout(fps=10, frames=21, height=64, width=64, sample_rate=16000),
}
BOUNCING_TONES = GEOMETRIES["bouncing-tones"]


def get_geometry(name: str) -> ClipLayout:
    if name not in GEOMETRIES:
        raise LayoutError(f"unknown geometry {name!r}; known: {', '.join(GEOMETRIES)}")
    return GEOMETRIES[name]


def same_geometry(a: ClipLayout, b: ClipLayout) -> bool:
    """Whether two layouts take the same clips (fps, frames, size, sample rate), whatever their codecs' strides."""
    return (a.fps, a.frames, a.height, a.width, a.sample_rate) == (b.fps, b.frames, b.height, b.width, b.sample_rate)
