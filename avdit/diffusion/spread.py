"""Holding a stream's latent statistics: the distribution of each window's generated video latents, per example and
channel.

A model's samples come out a little less spread than its data (diffusion samplers shrink towards the mean where the
network is unsure), and a stream compounds it: each window continues the last, so the shrinkage multiplies window
by window. On Bouncing Tones the video latents' spread fell from 1.0 to 0.4 in 16 s of av_continue and the ball
shrank and faded into the background (docs/streams.md). Streams held each window's spread to the first window's;
they now hold its whole distribution, channel by channel: each generated element takes the value of the first
window's at the same rank (histogram matching, as long-video and colour-transfer tools match each frame's histogram
to a reference frame's). Where a window's disc came out smaller, the elements next in rank, at its rim, take disc
values: the disc's area is held with its contrast, and it flickers less from window to window than with the spread
alone (docs/streams.md). Streams hold the video's latents only: an audio window's distribution follows how many
sounds it holds, and holding its spread scaled some channels up to 4x and played wrong notes (docs/streams.md).
"""

from __future__ import annotations

import torch


def _marked(part: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The full mask over ``part``, and the elements it marks as (B, C, n): ``mask`` must mark the same elements in
    every example and channel (it broadcasts over channels; the cells of one task grid)."""
    full = mask.expand_as(part)
    count = int(full[0, 0].sum()) if part.shape[0] and part.shape[1] else 0
    return full, part[full].view(*part.shape[:2], count)  # (B, C, n)


def quantiles(part: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The elements ``mask`` marks in one modality's latents ``part`` (B, C, ...), sorted per example and channel:
    (B, C, n). ``mask``: shaped to broadcast against ``part`` (one part of ``ClipLayout.cells_to_latents``), the
    same in every example."""
    return _marked(part, mask)[1].sort(dim=-1, stable=True).values


def match_quantiles(part: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``part`` with its elements in ``mask`` replaced, per example and channel, by the element of the same rank in
    ``reference`` (as ``quantiles`` gives it, over as many elements): the marked elements keep their order and take
    the reference's values, so their distribution (mean, spread, every quantile) becomes the reference's. Elements
    outside ``mask`` are returned unchanged."""
    full, picked = _marked(part, mask)
    if picked.shape[-1] != reference.shape[-1]:
        raise ValueError(f"the reference holds {reference.shape[-1]} elements per channel and the mask marks "
                         f"{picked.shape[-1]}: take both over the same cells")
    order = picked.argsort(dim=-1, stable=True)  # (B, C, n): the elements from smallest to largest
    out = part.clone()
    out[full] = torch.empty_like(picked).scatter_(-1, order, reference).reshape(-1)  # the k-th smallest takes ref[k]
    return out
