"""The two codec modules behind avdit's codec interface: encode/decode with the latent normalisation inside.

``encode`` returns latents normalised per channel to zero mean and unit variance (statistics measured on the
training data and stored with the weights, Sec. 4 of the paper); ``decode`` undoes it. The network is avdit's own
autoencoder, or a pretrained model wrapped by ``avdit.codecs.adapters``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avdit.codecs.audio import AudioAutoencoder, AudioCodecConfig
from avdit.codecs.video import VideoAutoencoder, VideoCodecConfig


class CodecError(ValueError):
    """Input a codec cannot take, or a codec folder that cannot be loaded."""


CPU_BATCH = 4  # clips a codec runs together on the CPU: larger batches leave its cache (benchmarks/codec_speed.py)


def in_cpu_batches(run, x: torch.Tensor) -> torch.Tensor:
    """``run`` over ``x`` (B, ...) in batches of ``CPU_BATCH`` clips on the CPU, their outputs joined; whole on a GPU.
    On this project's 2-core CPU a batch of 32 clips costs per clip twice what batches of 4 do."""
    if x.device.type != "cpu" or x.shape[0] <= CPU_BATCH:
        return run(x)
    return torch.cat([run(part) for part in x.split(CPU_BATCH)])


class _Normalised(nn.Module):
    """Per-channel latent statistics as buffers: normalise after encoding, undo before decoding."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("latent_mean", torch.zeros(channels))
        self.register_buffer("latent_std", torch.ones(channels))

    def _shape(self, z: torch.Tensor) -> tuple[int, ...]:
        return (1, -1) + (1,) * (z.dim() - 2)

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean.view(self._shape(z))) / self.latent_std.view(self._shape(z))

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std.view(self._shape(z)) + self.latent_mean.view(self._shape(z))

    @torch.no_grad()
    def set_statistics(self, raw_latents: torch.Tensor) -> None:
        """Measure per-channel mean and std over every other axis of raw (unnormalised) latents (N, C, ...)."""
        flat = raw_latents.transpose(0, 1).reshape(raw_latents.shape[1], -1).double()
        self.latent_mean.copy_(flat.mean(1).float())
        self.latent_std.copy_(flat.std(1).clamp_min(1e-6).float())


class VideoCodec(_Normalised):
    """Video uint8 (B, T, H, W, 3) with T = 1 + s k <-> latents (B, C, 1 + k, H/r, W/r) at ``fps`` frames/s: temporal
    stride s and spatial stride r from its config (4 and 8 for avdit's own codec)."""

    kind = "video"

    def __init__(self, config: VideoCodecConfig = VideoCodecConfig(), fps: int = 8, net: nn.Module | None = None,
                 source: dict | None = None):
        """``net`` (with ``encoder`` and ``decoder``) and ``source`` let a pretrained model stand behind this
        interface (see ``avdit.codecs.adapters``); by default avdit's own autoencoder."""
        super().__init__(config.latent_channels)
        self.config, self.fps, self.source = config, fps, source
        self.net = net if net is not None else VideoAutoencoder(config)

    @property
    def latents_per_second(self) -> float:
        """Latent frames per second after the first (which stands for one frame)."""
        return self.fps / self.config.temporal_stride

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        c = self.config
        if (frames - 1) % c.temporal_stride or frames < 1:
            raise CodecError(f"the video codec takes 1 + {c.temporal_stride}k frames, got {frames}")
        if height % c.spatial_stride or width % c.spatial_stride:
            raise CodecError(f"frame size {height}x{width} is not a multiple of {c.spatial_stride}")
        return (c.latent_channels, 1 + (frames - 1) // c.temporal_stride, height // c.spatial_stride,
                width // c.spatial_stride)

    def to_pixels(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1], with its shape checked."""
        if video.dim() != 5 or video.shape[-1] != 3:
            raise CodecError(f"video must be (B, T, H, W, 3), got {tuple(video.shape)}")
        self.latent_shape(*video.shape[1:4])
        return video.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)

    @staticmethod
    def from_pixels(x: torch.Tensor) -> torch.Tensor:
        """float (B, 3, T, H, W) in [-1, 1] -> uint8 (B, T, H, W, 3)."""
        return x.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        return in_cpu_batches(lambda part: self.normalise(self.net.encoder(self.to_pixels(part))), video)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.dim() != 5 or latent.shape[1] != self.config.latent_channels:
            raise CodecError(f"video latents must be (B, {self.config.latent_channels}, T, h, w), "
                             f"got {tuple(latent.shape)}")
        return in_cpu_batches(lambda part: self.from_pixels(self.net.decoder(self.denormalise(part))), latent)

    def describe(self) -> dict:
        return {"kind": self.kind, "config": self.config.to_dict(), "fps": self.fps,
                **({"source": self.source} if self.source else {})}


class AudioCodec(_Normalised):
    """Audio float32 (B, S) in [-1, 1] at ``sample_rate`` <-> latents (B, C, ceil(S / hop)): a clip that does not
    fill its last latent is padded with silence to fill it, and ``decode(latent, samples=S)`` cuts the padding off."""

    kind = "audio"

    def __init__(self, config: AudioCodecConfig = AudioCodecConfig(), sample_rate: int = 16000,
                 net: nn.Module | None = None, source: dict | None = None):
        """``net`` (with ``encode`` and ``decode``) and ``source``: as for ``VideoCodec``."""
        super().__init__(config.latent_channels)
        self.config, self.sample_rate, self.source = config, sample_rate, source
        self.net = net if net is not None else AudioAutoencoder(config)

    @property
    def latents_per_second(self) -> float:
        return self.sample_rate / self.config.hop

    def latent_shape(self, samples: int) -> tuple[int, int]:
        if samples <= 0:
            raise CodecError(f"the audio codec takes at least one sample, got {samples}")
        return (self.config.latent_channels, math.ceil(samples / self.config.hop))

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 2:
            raise CodecError(f"audio must be mono (B, S), got {tuple(audio.shape)}")
        _, latents = self.latent_shape(audio.shape[1])
        padded = F.pad(audio.float(), (0, latents * self.config.hop - audio.shape[1]))  # (B, latents * hop)
        return in_cpu_batches(lambda part: self.normalise(self.net.encode(part)), padded)

    def decode(self, latent: torch.Tensor, samples: int | None = None) -> torch.Tensor:
        """Latents (B, C, T) -> audio (B, T * hop), or its first ``samples`` (the clip's length before padding)."""
        if latent.dim() != 3 or latent.shape[1] != self.config.latent_channels:
            raise CodecError(f"audio latents must be (B, {self.config.latent_channels}, T), got {tuple(latent.shape)}")
        return in_cpu_batches(lambda part: self.net.decode(self.denormalise(part))[:, :samples].clamp(-1.0, 1.0),
                              latent)

    def describe(self) -> dict:
        return {"kind": self.kind, "config": self.config.to_dict(), "sample_rate": self.sample_rate,
                **({"source": self.source} if self.source else {})}
