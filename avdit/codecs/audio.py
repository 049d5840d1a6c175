"""A 1D-conv waveform autoencoder in the SoundStream style, with continuous latents (no quantiser).

Encoder: the waveform folded into frames of ``fold`` samples (8 samples -> 8 channels, a lossless first
stride that keeps the convolutions off the full sample rate, where they are slow on a CPU), a stem conv,
then per stride a block of dilated residual units (dilations 1, 3, 9) and a strided conv that widens the
channels. The hop is fold x strides (8 x 5 x 10 = 400 samples: 40 latents per second at 16 kHz). The decoder
mirrors it with transposed convs and unfolds. Convs are centred (not streaming).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@dataclass(frozen=True)
class AudioCodecConfig:
    latent_channels: int = 16
    fold: int = 8  # samples folded into channels at the input (a lossless first stride)
    widths: tuple[int, ...] = (48, 96, 128)  # before each stride, and after the last
    strides: tuple[int, ...] = (5, 10)

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.strides) + 1:
            raise ValueError(f"need {len(self.strides) + 1} widths for {len(self.strides)} strides, got {self.widths}")

    @property
    def hop(self) -> int:
        return self.fold * math.prod(self.strides)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["strides"], data["widths"] = list(self.strides), list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "AudioCodecConfig":
        return cls(**{**data, "strides": tuple(data["strides"]), "widths": tuple(data["widths"])})


def _as_2d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, L) -> (B, C, 1, L) in channels-last memory (free where x came from such a convolution)."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (the same weights and state dict) run as a (1 x k) Conv2d in channels-last memory: on the CPU
    oneDNN's 1-D convolution over a clip's thousands of steps is 2-3x slower (``benchmarks/codec_speed.py``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, L) -> (B, C', L'), as ``nn.Conv1d``."""
        out = F.conv2d(_as_2d(x), self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                       (1, self.dilation[0]), self.groups)
        return out.squeeze(2)


class ConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` run as a (1 x k) ConvTranspose2d in channels-last memory, as ``Conv1d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, L) -> (B, C', L'), as ``nn.ConvTranspose1d``."""
        out = F.conv_transpose2d(_as_2d(x), self.weight.unsqueeze(2), self.bias, (1, self.stride[0]),
                                 (0, self.padding[0]), (0, self.output_padding[0]), self.groups, (1, self.dilation[0]))
        return out.squeeze(2)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv1 = Conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation)
        self.conv2 = Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class EncoderBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(*(ResidualUnit(cin, d) for d in (1, 3, 9)), nn.ELU(),
                         Conv1d(cin, cout, 2 * stride, stride=stride, padding=math.ceil(stride / 2)))


class DecoderBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(nn.ELU(), ConvTranspose1d(cin, cout, 2 * stride, stride=stride,
                                                      padding=math.ceil(stride / 2), output_padding=stride % 2),
                         *(ResidualUnit(cout, d) for d in (1, 3, 9)))


class AudioAutoencoder(nn.Module):
    """Waveform (B, S) with S a multiple of the hop -> latents (B, C, S / hop) -> waveform (B, S)."""

    def __init__(self, config: AudioCodecConfig = AudioCodecConfig()):
        super().__init__()
        self.config = c = config
        widths = c.widths
        self.encoder = nn.Sequential(
            Conv1d(c.fold, widths[0], 7, padding=3),
            *(EncoderBlock(widths[i], widths[i + 1], s) for i, s in enumerate(c.strides)),
            nn.ELU(), Conv1d(widths[-1], c.latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            Conv1d(c.latent_channels, widths[-1], 7, padding=3),
            *(DecoderBlock(widths[i + 1], widths[i], s) for i, s in reversed(list(enumerate(c.strides)))),
            nn.ELU(), Conv1d(widths[0], c.fold, 7, padding=3),
        )

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        frames = rearrange(audio, "b (n f) -> b f n", f=self.config.fold)  # (B, fold, S / fold)
        return self.encoder(frames)  # (B, C, S / hop)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return rearrange(self.decoder(z), "b f n -> b (n f)")  # (B, S)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(audio)
        return self.decode(z), z
