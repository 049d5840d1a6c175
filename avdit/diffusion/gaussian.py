"""Gaussian latents as an exact test bed: the optimal noise prediction is known in closed form.

If x0 ~ N(mu, Sigma) and z = A x0 + S eps with A = diag(sqrt(alpha_bar)), S = diag(sqrt(1 - alpha_bar)) per
element, then E[eps | z] = S (A Sigma A + S^2)^-1 (z - A mu). This is the denoiser a perfect MoNL model
learns (any per-cell levels, clean cells included), so samplers and tasks can be checked against analytic
conditionals without training anything.
"""

from __future__ import annotations

import torch

from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule
from avdit.latents import AV
from avdit.layout import ClipLayout


class GaussianOracle:
    """The exact epsilon-predictor for x0 ~ N(mean, cov) over flattened (video, audio) latents (float64)."""

    def __init__(self, mean: AV, cov: torch.Tensor, layout: ClipLayout, schedule: NoiseSchedule = DEFAULT_SCHEDULE):
        self.template = mean  # (1, ...) per modality
        self.mean = mean.flatten()[0].double()  # (D,)
        self.cov = cov.double()  # (D, D)
        if self.cov.shape != (self.mean.numel(),) * 2:
            raise ValueError(f"cov must be ({self.mean.numel()}, {self.mean.numel()}), got {tuple(cov.shape)}")
        self.layout, self.schedule = layout, schedule

    def __call__(self, x: AV, t: torch.Tensor, self_cond: AV | None = None) -> AV:
        levels = self.layout.cells_to_latents(t).map(lambda lv, xi: lv.expand_as(xi), x).flatten()  # (B, D)
        a = self.schedule.alpha_bar(levels, torch.float64)  # (B, D)
        scale, sigma = a.sqrt(), (1 - a).sqrt()
        cov_z = scale[:, :, None] * self.cov * scale[:, None, :] + torch.diag_embed(sigma**2)  # (B, D, D)
        residual = x.flatten().double() - scale * self.mean  # (B, D)
        eps = sigma * torch.linalg.solve(cov_z, residual)  # (B, D)
        return x.unflatten(eps.to(x.video.dtype))

    def sample(self, batch: int, generator: torch.Generator | None = None) -> AV:
        """Exact draws of x0 (B, ...)."""
        chol = torch.linalg.cholesky(self.cov)
        z = torch.randn(batch, self.mean.numel(), generator=generator, dtype=torch.float64)
        flat = self.mean + z @ chol.T
        return self.template.map(lambda p: p.expand(batch, *p.shape[1:])).unflatten(flat.float())

    def conditional(self, given_elements: torch.Tensor, x_given: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (D_u,) and covariance (D_u, D_u) of the non-given elements given ``x_given`` (D_g,)."""
        g, u = given_elements, ~given_elements
        cov_gg, cov_ug = self.cov[g][:, g], self.cov[u][:, g]
        gain = torch.linalg.solve(cov_gg, cov_ug.T).T  # (D_u, D_g)
        mean = self.mean[u] + gain @ (x_given.double() - self.mean[g])
        return mean, self.cov[u][:, u] - gain @ cov_ug.T


    def ode_map(self, x_T: torch.Tensor, given_elements: torch.Tensor, x_given: torch.Tensor | None = None,
                a_T: float | None = None) -> torch.Tensor:
        """Where the probability-flow ODE takes x_T (B, D) at level T to level 0: x0 of the generated elements
        (B, D_u), float64. For N(m, C) with C = U diag(l) U^T it is m + U diag(sqrt(l / (a_T l + 1 - a_T))) U^T
        (x_T - sqrt(a_T) m), with (m, C) the conditional given ``x_given`` (D_g,) at ``given_elements`` (D,)."""
        a_T = self.schedule.alphas_cumprod[-1].item() if a_T is None else a_T
        mean, cov = (self.conditional(given_elements, x_given) if bool(given_elements.any())
                     else (self.mean, self.cov))  # (D_u,), (D_u, D_u)
        l, u = torch.linalg.eigh(cov)
        gain = u @ torch.diag((l / (a_T * l + 1 - a_T)).sqrt()) @ u.T  # (D_u, D_u)
        return mean + (x_T[:, ~given_elements].double() - a_T**0.5 * mean) @ gain.T


def random_gaussian(layout: ClipLayout, video_channels: int, audio_channels: int, rank: int = 4,
                    generator: torch.Generator | None = None) -> tuple[AV, torch.Tensor]:
    """A mean (1, ...) and a covariance with low-rank structure shared across modalities and time."""
    shapes = AV(torch.zeros(1, *layout.video_latent_shape(video_channels)),
                torch.zeros(1, *layout.audio_latent_shape(audio_channels)))
    dim = shapes.flatten().shape[1]
    mean = torch.randn(1, dim, generator=generator)
    factors = torch.randn(dim, rank, generator=generator, dtype=torch.float64)
    cov = factors @ factors.T / rank + 0.1 * torch.eye(dim, dtype=torch.float64)
    return shapes.unflatten(mean), cov
