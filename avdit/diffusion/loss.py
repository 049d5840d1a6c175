"""The training objective with a noise level per cell (Eq. 6 of the paper): the squared error of the predicted noise
per latent element (whatever the head predicts, eps or v, is turned into eps first), weighted per cell by its level
(``LossWeighting``: ``eps`` is the paper's loss; ``v``, training's default, makes it the v MSE)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from avdit.diffusion.denoiser import Network, eps_denoiser
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule, predict_x0_av, q_sample_av
from avdit.latents import AV, randn_like
from avdit.layout import ClipLayout

# model(x_t, t (B, M, N), self_cond) -> eps, all AV
Denoiser = Callable[[AV, torch.Tensor, Optional[AV]], AV]


def diffusion_loss(
    model: Network,
    x0: AV,
    t: torch.Tensor,
    layout: ClipLayout,
    schedule: NoiseSchedule = DEFAULT_SCHEDULE,
    generator: torch.Generator | None = None,
    self_condition_rate: float = 0.0,
    noise: AV | None = None,
    self_condition: torch.Tensor | None = None,
    prediction: str | None = None,
) -> AV:
    """Unreduced squared error ||eps - eps_theta(z_t, t)||^2 per latent element; cells at t = 0 carry zero.

    ``model`` is the network, whose head predicts ``prediction`` (None: its config's; "eps" for any plain eps
    denoiser); ``EpsDenoiser`` turns its output into eps_theta with ``schedule``, the one that noises x0.

    With ``self_condition_rate`` > 0, that fraction of examples first gets an x0 estimate from a no-grad
    pass and is conditioned on it (Chen et al.'s self-conditioning, as W.A.L.T. and the paper use);
    the rest get zeros. ``noise`` and ``self_condition`` (B,) bool may be given instead of drawn from
    ``generator`` (a distributed trainer draws them for the global batch and passes each rank its slice).
    """
    denoise = eps_denoiser(model, layout, schedule, prediction)
    noise = randn_like(x0, generator) if noise is None else noise
    t_elements = layout.cells_to_latents(t)
    z_t = q_sample_av(x0, t_elements, noise, schedule)
    self_cond = None
    if self_condition is None and self_condition_rate > 0:
        where = generator.device if generator is not None else x0.device  # draw where the generator lives
        self_condition = torch.rand(x0.batch_size, generator=generator, device=where) < self_condition_rate
    if self_condition is not None:
        self_cond = x0.map(torch.zeros_like)
        use = self_condition.to(x0.device)  # (B,)
        # the no-grad pass runs even when no example here uses it: under FSDP every rank must run the same
        # forward passes (each gathers parameters), whatever its slice of the batch drew
        with torch.no_grad():
            x0_hat = predict_x0_av(z_t, t_elements, denoise(z_t, t, self_cond), schedule)
        self_cond = self_cond.map(
            lambda zero, est: torch.where(use.view(-1, *[1] * (zero.dim() - 1)), est.detach(), zero), x0_hat
        )
    eps = denoise(z_t, t, self_cond)
    return eps.map(lambda pred, target, level: (pred.float() - target) ** 2 * (level > 0), noise, t_elements)


@dataclass(frozen=True)
class LossWeighting:
    """How much each cell's epsilon MSE counts, as a function of its noise level (SNR_t = a_t / (1 - a_t)).

    - ``eps``: 1 everywhere, the paper's loss (Eq. 6).
    - ``min-snr-G``: min(SNR, G) / SNR (Min-SNR-gamma, Hang et al. 2023): nearly clean cells weigh less.
    - ``trunc-snr-K``: clamp(1 / SNR, 1, K), i.e. the x0 MSE weighted by max(SNR, 1) (truncated-SNR
      weighting, Salimans & Ho 2022) with the weight of the noisiest cells capped at K: noisy cells, where a
      cell's content and its link to the other modality are decided, count as much as nearly clean ones.
    - ``v``: 1 / a_t = 1 + 1 / SNR, which makes the loss the v MSE (Salimans & Ho 2022) of a model whose
      head predicts v (``prediction="v"``): the x0 MSE weighted by 1 + SNR, uncapped at the noisiest cells.
    """

    kind: str = "eps"
    value: float = 0.0

    def __call__(self, t: torch.Tensor, schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> torch.Tensor:
        """(B, M, N) integer levels -> (B, M, N) float weights."""
        if self.kind == "eps":
            return torch.ones(t.shape, device=t.device)
        a = schedule.alpha_bar(t, torch.float64)
        if self.kind == "v":
            return (1 / a).float()
        snr = a / (1 - a).clamp_min(1e-20)  # t = 0 (no loss anyway): huge
        if self.kind == "min-snr":
            return (snr.clamp(max=self.value) / snr.clamp_min(1e-20)).float()
        return (1 / snr.clamp_min(1e-20)).clamp(1.0, self.value).float()


def parse_loss_weighting(spec: str) -> LossWeighting:
    """``eps``, ``v``, ``min-snr-G`` (G > 0) or ``trunc-snr-K`` (K >= 1)."""
    if spec in ("eps", "v"):
        return LossWeighting(spec)
    kind, _, number = spec.rpartition("-")
    try:
        value = float(number)
    except ValueError:
        value = math.nan  # fails both checks below
    if (kind == "min-snr" and value > 0) or (kind == "trunc-snr" and value >= 1):
        return LossWeighting(kind, value)
    raise ValueError(f"unknown loss weighting {spec!r}: use 'eps' (the paper's), 'v', 'min-snr-G' with G > 0 "
                     "(e.g. min-snr-1) or 'trunc-snr-K' with K >= 1 (e.g. trunc-snr-50)")


def reduce_loss(per_element: AV, t: torch.Tensor, layout: ClipLayout, weighting: LossWeighting = LossWeighting()
                ) -> torch.Tensor:
    """Per-example mean over the elements that carry loss (t > 0), video and audio pooled: (B,).

    This is the one place where the loss is weighted (``weighting``); the batch loss is the mean of the result.
    """
    count_weight = layout.cells_to_latents((t > 0).float())
    loss_weight = layout.cells_to_latents(weighting(t) * (t > 0))
    total = sum((w * err).flatten(1).sum(1) for w, err in zip(loss_weight, per_element))  # (B,)
    count = sum(w.expand_as(err).flatten(1).sum(1) for w, err in zip(count_weight, per_element))  # (B,)
    return total / count.clamp_min(1)
