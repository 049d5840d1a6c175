"""Fixed weights for the reference goldens: each tensor a function of its key and element index alone, so a test
rebuilds them without the reference code."""

from __future__ import annotations

import math

import torch


def sine(key: str, numel: int) -> torch.Tensor:
    """(numel,) float64 sine wave whose phase depends on the key's length."""
    return torch.sin(torch.arange(numel, dtype=torch.float64) * 0.7 + len(key))


def hashed_sine(key: str, numel: int) -> torch.Tensor:
    """(numel,) float64 values in [-1, 1] from a hashed sine: unlike a plain sine wave, a matrix made of it has
    full rank, so a network's output depends on all of its input."""
    phase = torch.arange(numel, dtype=torch.float64) * 12.9898 + len(key) * 78.233
    return torch.frac(torch.sin(phase).abs() * 43758.5453) * 2 - 1


def fixed_value(key: str, value: torch.Tensor, wave: torch.Tensor, norm_weight: bool) -> torch.Tensor:
    """``wave`` shaped and scaled as ``value`` (key ``key``) wants it: batch-norm variances in [1, 1.5] and means
    small, norm weights near 1, matrices scaled by their fan-in, other vectors small."""
    if key.endswith("running_var"):
        v = 1.0 + 0.5 * wave.abs()
    elif key.endswith("running_mean"):
        v = 0.1 * wave
    elif norm_weight:
        v = 1.0 + 0.1 * wave
    elif value.dim() >= 2:
        v = wave * math.sqrt(3.0 / value[0].numel())
    else:
        v = 0.05 * wave
    return v.reshape(value.shape).to(value.dtype)
