"""A causal video autoencoder in the MAGVIT-v2 style: the first frame alone, then every 4 frames one latent frame.

Convolutions are factorised (2+1)D: spatial (1 x 3 x 3) per frame and causal temporal (3 x 1 x 1) that pad
only in the past, so latent frame k depends on frames <= 4k and nothing later. Frames enter through a
space-to-depth rearrangement (4 x 4 pixels -> channels) and leave through its inverse, which keeps the
convolutions at 16 x 16 and below for 64 x 64 clips. Normalisation is per frame (GroupNorm over (C, H, W)),
which keeps causality. Latents are continuous (no quantiser).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@dataclass(frozen=True)
class VideoCodecConfig:
    latent_channels: int = 16
    widths: tuple[int, int] = (64, 128)  # at 1/4 and 1/8 resolution
    space_to_depth: int = 4  # pixels folded into channels at the input
    temporal_stride: int = 4  # two causal 2x temporal downsamplings
    spatial_stride: int = 8
    sharpen_width: int = 0  # > 0: a residual per-frame conv net on the decoded pixels (see VideoDecoder)

    def __post_init__(self) -> None:
        if self.temporal_stride != 4 or self.spatial_stride != 2 * self.space_to_depth:
            raise ValueError("this video codec downsamples 4x in time and 2 * space_to_depth in space")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "VideoCodecConfig":
        return cls(**{**data, "widths": tuple(data["widths"])})


class CausalTimeConv(nn.Module):
    """Conv over time only (k x 1 x 1), padded with k - 1 copies of the first frame: output t sees inputs <= t.

    With ``stride`` 2, 1 + 2k frames become 1 + k (output t sees inputs <= 2t).
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.pad = kernel - 1
        self.conv = nn.Conv3d(cin, cout, (kernel, 1, 1), stride=(stride, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) -> (B, C', T', H, W); run as a (k x 1) Conv2d over (T, H * W), the same weights: on the
        CPU up to twice as fast as the Conv3d at batch 1 (``benchmarks/codec_speed.py``)."""
        x = torch.cat([x[:, :, :1].expand(-1, -1, self.pad, -1, -1), x], dim=2)
        conv = self.conv
        out = F.conv2d(x.flatten(3), conv.weight[..., 0], conv.bias, stride=(conv.stride[0], 1))  # (B, C', T', H*W)
        return out.unflatten(3, x.shape[3:])


class SpaceConv(nn.Conv3d):
    """A (1 x 3 x 3) Conv3d, each frame on its own, run as a Conv2d over the frames of the batch with the same weights
    (and state dict): on the CPU 2-3x faster at batch 1, where oneDNN's 3-D convolution does not split over threads,
    and as fast from batch 2 on (``benchmarks/codec_speed.py``)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(cin, cout, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) -> (B, C', T, H / stride, W / stride)."""
        frames = rearrange(x, "b c t h w -> (b t) c h w")
        out = F.conv2d(frames, self.weight[:, :, 0], self.bias, self.stride[1:], self.padding[1:])
        return rearrange(out, "(b t) c h w -> b c t h w", b=x.shape[0])


def space_conv(cin: int, cout: int, stride: int = 1) -> SpaceConv:
    return SpaceConv(cin, cout, stride)


class FrameNorm(nn.Module):
    """GroupNorm over (C, H, W) of each frame separately (never across time)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(32, channels // 4), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = rearrange(x, "b c t h w -> (b t) c h w")
        return rearrange(self.norm(x), "(b t) c h w -> b c t h w", b=b)


class ResBlock(nn.Module):
    """norm -> SiLU -> spatial conv -> norm -> SiLU -> causal temporal conv, plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm1, self.conv1 = FrameNorm(channels), space_conv(channels, channels)
        self.norm2, self.conv2 = FrameNorm(channels), CausalTimeConv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class DepthToTime(nn.Module):
    """Causal 2x temporal upsampling: 1 + k frames -> 1 + 2k (each frame makes two, the first frame's first is dropped)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = CausalTimeConv(channels, 2 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(self.conv(x), "b (two c) t h w -> b c (t two) h w", two=2)
        return x[:, :, 1:]


FRAMES_AT_ONCE = 8  # full-resolution frames the sharpening head runs together (64 x 64 x 16 activations: 2 MiB)


class SharpenHead(nn.Module):
    """Decoded frames plus a residual from three 3 x 3 convs at full resolution, each frame on its own (causal).

    The 1/8-resolution decoder draws the disc's edge a few pixels wide; these convs see the edge's profile and
    redraw it sharp. The last conv starts at zero, so a head added to a trained decoder changes nothing until
    trained. Frames run as 2-D convs in channels-last memory, twice as fast on CPU as the same (1 x 3 x 3) Conv3d,
    ``FRAMES_AT_ONCE`` at a time: their activations stay in the CPU's cache (2x faster again for a batch of clips).
    """

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1),
                                 nn.SiLU(), nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, T, H, W) -> the same shape."""
        frames = rearrange(x, "b c t h w -> (b t) c h w").contiguous(memory_format=torch.channels_last)
        residual = torch.cat([self.net(part) for part in frames.split(FRAMES_AT_ONCE)])  # (B T, 3, H, W)
        residual = rearrange(residual, "(b t) c h w -> b c t h w", b=x.shape[0])
        return x + residual


class VideoEncoder(nn.Module):
    def __init__(self, c: VideoCodecConfig):
        super().__init__()
        w1, w2 = c.widths
        s = c.space_to_depth
        self.s = s
        self.stem = space_conv(3 * s * s, w1)
        self.block1 = ResBlock(w1)
        self.down_space = space_conv(w1, w2, stride=2)
        self.down_time1 = CausalTimeConv(w2, w2, stride=2)
        self.block2 = ResBlock(w2)
        self.down_time2 = CausalTimeConv(w2, w2, stride=2)
        self.block3 = ResBlock(w2)
        self.out = nn.Sequential(FrameNorm(w2), nn.SiLU(), nn.Conv3d(w2, c.latent_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, 1 + 4k, H, W) in [-1, 1] -> (B, C, 1 + k, H/8, W/8)."""
        x = rearrange(x, "b c t (h p1) (w p2) -> b (c p1 p2) t h w", p1=self.s, p2=self.s)
        x = self.block1(self.stem(x))
        x = self.block2(self.down_time1(self.down_space(x)))
        x = self.block3(self.down_time2(x))
        return self.out(x)


class VideoDecoder(nn.Module):
    def __init__(self, c: VideoCodecConfig):
        super().__init__()
        w1, w2 = c.widths
        s = c.space_to_depth
        self.s = s
        self.stem = space_conv(c.latent_channels, w2)
        self.block1 = ResBlock(w2)
        self.up_time1 = DepthToTime(w2)
        self.block2 = ResBlock(w2)
        self.up_space = space_conv(w2, 4 * w1)
        self.up_time2 = DepthToTime(w1)
        self.block3 = ResBlock(w1)
        self.out = nn.Sequential(FrameNorm(w1), nn.SiLU(), space_conv(w1, 3 * s * s))
        if c.sharpen_width:
            self.sharpen = SharpenHead(c.sharpen_width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, C, 1 + k, h, w) -> (B, 3, 1 + 4k, 8h, 8w), unbounded (the target range is [-1, 1])."""
        x = self.block1(self.stem(z))
        x = self.block2(self.up_time1(x))
        x = rearrange(self.up_space(x), "b (c p1 p2) t h w -> b c t (h p1) (w p2)", p1=2, p2=2)
        x = self.block3(self.up_time2(x))
        x = rearrange(self.out(x), "b (c p1 p2) t h w -> b c t (h p1) (w p2)", p1=self.s, p2=self.s)
        if hasattr(self, "sharpen"):
            x = self.sharpen(x)
        return x


class VideoAutoencoder(nn.Module):
    """Encoder and decoder on pixels in [-1, 1], video as (B, 3, T, H, W)."""

    def __init__(self, config: VideoCodecConfig = VideoCodecConfig()):
        super().__init__()
        self.config = config
        self.encoder = VideoEncoder(config)
        self.decoder = VideoDecoder(config)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z
