"""The parameterisation outside the network: its raw output -> the noise estimate, with the caller's schedule.

As k-diffusion's ``DiscreteEpsDDPMDenoiser`` / ``DiscreteVDDPMDenoiser`` and edm's ``VPPrecond`` wrap a network,
``EpsDenoiser`` turns what the network's head predicts (``prediction``) into eps using the ``NoiseSchedule`` it is
given, so the loss and the samplers, which build it with their own schedule, cannot disagree with the network
about alpha_bar.

- ``eps``: the head predicts the noise (Ho et al. 2020; the paper's Eq. 6); returned as is.
- ``v``: the head predicts v = sqrt(a_t) eps - sqrt(1 - a_t) x0 (Salimans & Ho 2022, Sec. 4), so
  eps = sqrt(a_t) v + sqrt(1 - a_t) x_t.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from avdit.diffusion.schedule import NoiseSchedule
from avdit.latents import AV
from avdit.layout import M, ClipLayout

PREDICTIONS = ("eps", "v")

# net(x_t, t (B, M, N) or (B,), self_cond) -> its raw output, all AV
Network = Callable[[AV, torch.Tensor, Optional[AV]], AV]


def eps_from_v(v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """eps = sqrt(a_t) v + sqrt(1 - a_t) x_t per element, ``t`` integer levels broadcast against ``x_t``; float32."""
    a = schedule.alpha_bar(t, torch.float32)
    return a.sqrt() * v.float() + (1 - a).sqrt() * x_t.float()


def prediction_of(net: object) -> str:
    """What ``net``'s head predicts: its config's ``prediction`` (an ``AVDiT``), else "eps" (any eps denoiser)."""
    return getattr(getattr(net, "config", None), "prediction", "eps")


class EpsDenoiser:
    """A denoiser ``(x_t, t (B, M, N) or (B,), self_cond) -> eps`` made of a network whose head predicts
    ``prediction`` and the ``schedule`` of the loss or sampler that calls it (``layout`` spreads cell levels over
    the latents)."""

    def __init__(self, net: Network, prediction: str, schedule: NoiseSchedule, layout: ClipLayout):
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {prediction!r}")
        self.net, self.prediction, self.schedule, self.layout = net, prediction, schedule, layout

    def __call__(self, x: AV, t: torch.Tensor, self_cond: AV | None = None) -> AV:
        out = self.net(x, t, self_cond)  # AV shaped as x
        if self.prediction == "eps":
            return out
        grid = t if t.dim() == 3 else t[:, None, None].expand(-1, M, self.layout.num_segments)  # (B, M, N)
        levels = self.layout.cells_to_latents(grid)  # broadcast to the latents
        return out.map(lambda v, xi, level: eps_from_v(v, xi, level, self.schedule), x, levels)


def eps_denoiser(net: Network, layout: ClipLayout, schedule: NoiseSchedule, prediction: str | None = None
                 ) -> EpsDenoiser:
    """``net`` wrapped with ``schedule``; ``prediction`` None: the net's own (``prediction_of``)."""
    return EpsDenoiser(net, prediction_of(net) if prediction is None else prediction, schedule, layout)
