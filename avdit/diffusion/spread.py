"""Holding a stream's latent statistics: the spread of each window's generated latents, per example and channel.

A model's samples come out a little less spread than its data (diffusion samplers shrink towards the mean where the
network is unsure), and a stream compounds it: each window continues the last, so the shrinkage multiplies window
by window. On Bouncing Tones the video latents' spread fell from 1.0 to 0.4 in 16 s of av_continue and the ball
shrank and faded into the background (docs/streams.md). Rescaling each window's generated latents to the
spread the first window had (about their own per-channel mean, which moves with the content) holds it, in the way
long-video tools match every frame's colour statistics to the first frame's. Streams hold the video's spread only:
an audio window's spread follows how many sounds it holds, and holding it per channel scaled some channels up to 4x
and played wrong notes (docs/streams.md).
"""

from __future__ import annotations

import torch

from avdit.latents import AV


def _moments(part: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over the elements ``mask`` marks, per example and channel (kept dims)."""
    dims = list(range(2, part.dim()))  # every axis but batch and channel
    mask = mask.expand_as(part)
    count = mask.sum(dim=dims, keepdim=True).clamp_min(1)
    mean = torch.where(mask, part, 0).sum(dim=dims, keepdim=True) / count
    return mean, (torch.where(mask, (part - mean) ** 2, 0).sum(dim=dims, keepdim=True) / count).sqrt()


def spread(x: AV, cells: AV) -> AV:
    """Standard deviation per example and channel over the latent elements ``cells`` marks: video (B, Cv, 1, 1, 1),
    audio (B, Ca, 1). ``cells``: masks shaped to broadcast against ``x`` (``ClipLayout.cells_to_latents``)."""
    return x.map(lambda part, mask: _moments(part, mask)[1], cells)


def match_spread(x: AV, cells: AV, reference: AV) -> AV:
    """``x`` with its elements in ``cells`` rescaled about their mean (per example and channel) to the spread
    ``reference`` (as ``spread`` gives it); elements outside ``cells`` are returned unchanged."""
    def one(part: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mean, own = _moments(part, mask)
        return torch.where(mask.expand_as(part), mean + (part - mean) * (target / own.clamp_min(1e-6)), part)
    return x.map(one, cells, reference)
