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
