"""The forward process: linear beta schedule and q_sample with a noise level per element (Eq. 1-2 of the paper).

Noise levels are integers t in [0, T]; t = 0 means clean (alpha_bar = 1 exactly), t = T is (almost) pure noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avdit.latents import AV


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """alpha_bar_t for t = 0..T, float64, with alpha_bar_0 = 1."""

    alphas_cumprod: torch.Tensor  # (T + 1,) float64

    @classmethod
    def linear(cls, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """DDPM's linear schedule: beta_t from beta_start (t = 1) to beta_end (t = T)."""
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)  # (T,)
        alphas_cumprod = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, dim=0)])
        return cls(alphas_cumprod)

    @property
    def T(self) -> int:
        return self.alphas_cumprod.shape[0] - 1

    def alpha_bar(self, t: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """alpha_bar at integer levels ``t`` (any shape), in ``dtype`` on ``t``'s device."""
        if t.dtype.is_floating_point:
            raise TypeError(f"noise levels are integers in [0, {self.T}], got dtype {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) > self.T):
            raise ValueError(f"noise levels must lie in [0, {self.T}], got [{int(t.min())}, {int(t.max())}]")
        return self.alphas_cumprod.to(t.device)[t].to(dtype)


DEFAULT_SCHEDULE = NoiseSchedule.linear()


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: NoiseSchedule = DEFAULT_SCHEDULE
) -> torch.Tensor:
    """z_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, with ``t`` broadcast against ``x0`` (Eq. 2).

    Elements at t = 0 are returned as x0 exactly.
    """
    a = schedule.alpha_bar(t, x0.dtype)
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    return torch.where(t == 0, x0, noisy)


def predict_x0(
    x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: NoiseSchedule = DEFAULT_SCHEDULE
) -> torch.Tensor:
    """Invert Eq. 2 for x0 given a noise estimate; elements at t = 0 are x_t itself."""
    a = schedule.alpha_bar(t, x_t.dtype)
    return torch.where(t == 0, x_t, (x_t - (1 - a).sqrt() * eps) / a.sqrt())


def q_sample_av(x0: AV, t: AV, noise: AV, schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> AV:
    """q_sample per modality; ``t`` as given by ``ClipLayout.cells_to_latents``."""
    return x0.map(lambda x, level, eps: q_sample(x, level, eps, schedule), t, noise)


def predict_x0_av(x_t: AV, t: AV, eps: AV, schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> AV:
    return x_t.map(lambda x, level, e: predict_x0(x, level, e, schedule), t, eps)
