"""AVDiT configuration: a typed dataclass and named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import math

from avdit.diffusion.denoiser import PREDICTIONS
from avdit.layout import BOUNCING_TONES, GEOMETRIES, ClipLayout


class ConfigError(ValueError):
    """A model configuration that cannot be built."""


@dataclass(frozen=True)
class AVDiTConfig:
    """The network over (video, audio) latent tokens. Latent shapes come from ``layout``."""

    layout: ClipLayout  # the clip geometry and codec strides (from the codecs / latents)
    video_channels: int = 8  # Cv of the video codec
    audio_channels: int = 16  # Ca of the audio codec
    video_patch: int = 2  # p: a video token is 1 x p x p latents
    audio_patch: int = 5  # q: an audio token is q consecutive latents
    width: int = 256  # D
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    timesteps: int = 1000  # T of the noise levels the model is conditioned on
    prediction: str = "eps"  # what the head predicts: "eps", or "v" (turned into eps by diffusion.denoiser)
    self_condition: bool = False  # input doubles with the previous x0 estimate
    time_rope: bool = False  # also rotate queries and keys by token time (RoPE on half of each head's dims)
    grad_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ConfigError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        if self.width % self.heads:
            raise ConfigError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.width % 4:
            raise ConfigError(f"width {self.width} must be a multiple of 4 (positional embedding split)")
        if self.time_rope and (self.width // self.heads) % 4:
            raise ConfigError(f"time_rope needs a head width (width / heads = {self.width // self.heads}) that is a "
                              "multiple of 4: it rotates half of each head's dims in pairs")
        h, w = self.layout.video_latent_size
        if h % self.video_patch or w % self.video_patch:
            raise ConfigError(f"video latent {h}x{w} is not divisible by the video patch {self.video_patch}")
        segments = self.layout.audio_segments
        if len(segments) % self.audio_patch:
            raise ConfigError(f"{len(segments)} audio latents are not divisible by the audio patch {self.audio_patch}")
        for start in range(0, len(segments), self.audio_patch):
            if len(set(segments[start:start + self.audio_patch])) != 1:
                raise ConfigError(
                    f"audio patch {self.audio_patch} straddles a segment boundary at latent {start}: segment "
                    f"boundaries (latents {self.segment_starts()}) must fall on patch boundaries"
                )

    def segment_starts(self) -> list[int]:
        segments = self.layout.audio_segments
        return [j for j in range(len(segments)) if j == 0 or segments[j] != segments[j - 1]]

    @property
    def num_video_tokens(self) -> int:
        h, w = self.layout.video_latent_size
        return self.layout.video_latent_frames * (h // self.video_patch) * (w // self.video_patch)

    @property
    def num_audio_tokens(self) -> int:
        return self.layout.audio_latents // self.audio_patch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AVDiTConfig":
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown AVDiTConfig fields {sorted(unknown)}")
        if "layout" in data:
            data["layout"] = ClipLayout.from_dict(data["layout"])
        return cls(**data)


PRESETS: dict[str, AVDiTConfig] = {
    # tests: a few hundred thousand parameters
    "bt-tiny": AVDiTConfig(BOUNCING_TONES, width=64, depth=2, heads=2),
    # the CPU benchmark model on Bouncing Tones: 80 video + 17 audio tokens
    "bt-small": AVDiTConfig(BOUNCING_TONES, width=256, depth=4, heads=4),
    # the paper's AVDiT (App. B): 24 layers, width 1024, 16 heads, at the Monologues geometry (128x128, 8 fps,
    # 17 frames) with SoundStream-sized 1024-channel audio latents
    "paper": AVDiTConfig(GEOMETRIES["monologues"], audio_channels=1024, audio_patch=1,
                         width=1024, depth=24, heads=16, self_condition=True, grad_checkpointing=True),
}


def _flag(text: str) -> bool:
    return {"true": True, "false": False}[text.lower()]


# fields a user may override on a preset (``avdit train --model``); the rest follow the data and other flags
OVERRIDABLE = {"video_patch": int, "audio_patch": int, "width": int, "depth": int, "heads": int, "mlp_ratio": float,
               "time_rope": _flag, "grad_checkpointing": _flag}


def parse_model_overrides(spec: str) -> dict:
    """``'video_patch=4,depth=6'`` -> {'video_patch': 4, 'depth': 6}; '' -> {}. Raises ConfigError when malformed."""
    overrides = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, equals, text = part.partition("=")
        if key not in OVERRIDABLE or not equals:
            raise ConfigError(f"model override {part!r}: write KEY=VALUE with KEY one of {', '.join(OVERRIDABLE)}")
        try:
            overrides[key] = OVERRIDABLE[key](text)
        except (ValueError, KeyError):
            raise ConfigError(f"model override {part!r}: {text!r} is not a valid {key}") from None
    return overrides


def fitting_audio_patch(layout: ClipLayout, preferred: int) -> int:
    """The largest audio patch <= ``preferred`` whose tokens never straddle a segment boundary of ``layout``
    (a divisor of every segment's length in audio latents): 5 on Bouncing Tones (5 + 4 x 20 latents), 4 at
    10 fps (4 + 5 x 16), 1 where a hop that does not divide the segments leaves them unequal (Stable Audio's)."""
    lengths = [sum(1 for s in layout.audio_segments if s == n) for n in range(layout.num_segments)]
    common = math.gcd(*lengths)
    return max(d for d in range(1, min(preferred, common) + 1) if common % d == 0)


def fitting_video_patch(layout: ClipLayout, preferred: int) -> int:
    """The largest video patch <= ``preferred`` that tiles the video latent frame: ``preferred`` for avdit's own 8x
    codec, 1 for a 32x codec (LTX-Video's) on 32x32 clips, whose latent frames are 1x1."""
    common = math.gcd(*layout.video_latent_size)
    return max(d for d in range(1, min(preferred, common) + 1) if common % d == 0)


def get_preset(name: str, **overrides) -> AVDiTConfig:
    """A preset's network; with another ``layout`` its audio and video patches shrink to fit the segments and the
    latent frame size unless given."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if "layout" in overrides:
        overrides.setdefault("audio_patch", fitting_audio_patch(overrides["layout"], preset.audio_patch))
        overrides.setdefault("video_patch", fitting_video_patch(overrides["layout"], preset.video_patch))
    return dataclasses.replace(preset, **overrides)
