"""Fixed sinusoidal embeddings for positions (seconds, rows, columns) and noise levels."""

from __future__ import annotations

import math

import torch


def sinusoidal(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(..., ) float positions -> (..., dim) [cos | sin] at geometric frequencies (Transformer / DiT)."""
    if dim % 2:
        raise ValueError(f"sinusoidal embedding needs an even dim, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)  # (half,)
    angles = positions.double()[..., None] * freqs.to(positions.device)  # (..., half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1).float()


def rotate(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021) on the first r dims of x (..., L, d), in r/2 planes
    (dim i with dim i + r/2), by the angles whose ``sinusoidal`` table [cos | sin] is ``table`` (L, r). The dot
    product of two rotated vectors then depends on their positions' difference only."""
    r = table.shape[-1]
    cos, sin = table.to(x.dtype).chunk(2, dim=-1)  # (L, r/2) each
    x1, x2, rest = x[..., : r // 2], x[..., r // 2 : r], x[..., r:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest], dim=-1)


class NoiseLevelEmbedding(torch.nn.Module):
    """Integer noise level t -> sinusoid -> MLP -> (..., D), computed once per grid cell (DiT's TimestepEmbedder)."""

    def __init__(self, width: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(frequency_dim, width), torch.nn.SiLU(), torch.nn.Linear(width, width)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(t.float(), self.frequency_dim).to(self.mlp[0].weight.dtype))
