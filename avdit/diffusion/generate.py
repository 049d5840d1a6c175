"""One call from a task to latents: level matrix, initial latents, conditioning, sampler."""

from __future__ import annotations

from typing import Sequence

import torch

from avdit.diffusion.conditioning import ConditioningMode, conditioned_denoiser
from avdit.diffusion.denoiser import Network, eps_denoiser
from avdit.diffusion.samplers import SAMPLERS, Spacing, initial_latents, pyramid_level_matrix, task_level_matrix
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule
from avdit.latents import AV
from avdit.layout import ClipLayout

# The level spacing each sampler uses unless told otherwise (``step_levels``); see docs/sampling.md.
DEFAULT_SPACING: dict[str, Spacing] = {"ddim": "uniform", "ddpm": "uniform", "dpmpp2m": "lambda"}
# What generation uses unless told otherwise (`generate`, `demo`, `serve`, the Python API): 12 DPM-Solver++(2M)
# steps keep the measures of 50 DDIM steps on every task (docs/results/sampler_steps.md); 12 DDIM steps do not
# on joint generation. `evaluate` keeps 25 DDIM steps, so its tables stay comparable with the earlier ones.
DEFAULT_SAMPLER, DEFAULT_STEPS = "dpmpp2m", 12
SAMPLER_NAMES = {"ddim": "DDIM", "ddpm": "DDPM", "dpmpp2m": "DPM-Solver++(2M)"}  # as pages and messages name them


def generate_latents(
    model: Network, clean: AV, given: torch.Tensor, layout: ClipLayout, steps: int = DEFAULT_STEPS,
    sampler: str = DEFAULT_SAMPLER,
    eta: float = 0.0, mode: ConditioningMode = "clean", guidance: float | Sequence[float] = 0.0,
    schedule: NoiseSchedule = DEFAULT_SCHEDULE, generator: torch.Generator | None = None,
    self_condition: bool = False, progress: bool = False, pyramid_lag: int = 0, spacing: Spacing | None = None,
    prediction: str | None = None,
) -> AV:
    """Sample the generated cells of a task; given cells of ``clean`` come back unchanged.

    ``model`` is the network, whose head predicts ``prediction`` (None: its config's; "eps" for any plain eps
    denoiser); ``EpsDenoiser`` turns its output into eps with ``schedule``, the one the levels and steps use.

    ``clean`` is (video, audio) latents of the batch; what it holds at generated cells is never used.
    ``given`` is the task grid (M, N) or (B, M, N). ``pyramid_lag`` > 0 uses a diffusion-forcing level matrix
    (``pyramid_level_matrix``, one grid only) instead of descending every generated cell together. ``spacing``
    chooses the levels the steps visit (default: the sampler's, ``DEFAULT_SPACING``).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    spacing = DEFAULT_SPACING[sampler] if spacing is None else spacing
    matrix = (pyramid_level_matrix(given, steps, pyramid_lag, schedule.T, spacing, schedule) if pyramid_lag
              else task_level_matrix(given, steps, schedule.T, spacing, schedule))  # (S + 1, [B,] M, N)
    first = matrix[0] if matrix.dim() == 4 else matrix[0].expand(clean.batch_size, -1, -1)  # (B, M, N)
    x = initial_latents(clean, first.to(clean.device), layout, schedule, generator)
    eps = eps_denoiser(model, layout, schedule, prediction)
    denoiser = conditioned_denoiser(eps, given, clean, layout, mode, guidance, schedule, generator)
    kwargs = dict(generator=generator, self_condition=self_condition, progress=progress)
    if sampler == "ddim":
        kwargs["eta"] = eta
    return SAMPLERS[sampler](denoiser, x, matrix, layout, schedule, **kwargs)
