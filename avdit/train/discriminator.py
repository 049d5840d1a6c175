"""The GAN term of DMD2 (Yin et al. 2024, "Improved Distribution Matching Distillation", Sec. 4.3) on an AVDiT.

DMD2 puts a classifier on the fake score network's features: a re-noised sample is read by the fake network's
trunk, and a small head tells the student's samples from real clips. The head trains with the fake network, and
the student is trained to be taken for real, on real data the teacher never gave it. On a MoNL grid the sample is
scored where DMD scores it: one modality's generated cells, re-noised to a level, every other cell clean.

Here the features are the tokens after the fake network's last block, and the head is a patch discriminator: a
logit per token, averaged over the scored cells' tokens.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avdit.latents import AV
from avdit.model import AVDiT
from avdit.utils.distributed import unwrapped


class DiscriminatorHead(nn.Module):
    """(B, L, D) tokens + (B, L) bool mask -> (B,) logits: an MLP per token, averaged over the masked tokens."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 1))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(self.norm(tokens.float())).squeeze(-1)  # (B, L)
        weights = mask.float()
        return (logits * weights).sum(1) / weights.sum(1).clamp(min=1)


def scored_tokens(net: AVDiT, scored: torch.Tensor) -> torch.Tensor:
    """(B, M, N) bool cells -> (B, L) bool: the tokens of those cells, in the network's token order."""
    return scored.flatten(1)[:, net.token_cell]


def features_and_output(net: nn.Module, x: AV, t: torch.Tensor) -> tuple[torch.Tensor, AV]:
    """The tokens (B, L, D) after the last block of ``net`` (an AVDiT, or one wrapped for DDP), what the head reads,
    and its output on (x, t)."""
    kept = {}
    hook = unwrapped(net).blocks[-1].register_forward_hook(lambda module, inputs, output: kept.update(tokens=output))
    try:
        out = net(x, t, None)
    finally:
        hook.remove()
    return kept["tokens"], out


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """(B,) per example: the non-saturating GAN loss of the discriminator (real -> 1, the student's -> 0)."""
    return F.softplus(-real_logits) + F.softplus(fake_logits)


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """(B,) per example: the student's non-saturating GAN loss (its samples taken for real)."""
    return F.softplus(-fake_logits)
