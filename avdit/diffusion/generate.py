"""One call from a task to latents: level matrix, initial latents, conditioning, sampler."""

from __future__ import annotations

from typing import Sequence

import torch

from avdit.diffusion.conditioning import ConditioningMode, conditioned_denoiser
from avdit.diffusion.denoiser import Network, eps_denoiser
from avdit.diffusion.samplers import SAMPLERS, Spacing, initial_latents, pyramid_level_matrix, task_level_matrix
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule
from avdit.latents import AV
from avdit.layout import AUDIO, VIDEO, ClipLayout

# The level spacing each sampler uses unless told otherwise (``step_levels``); see docs/sampling.md.
DEFAULT_SPACING: dict[str, Spacing] = {"ddim": "uniform", "ddpm": "uniform", "dpmpp2m": "lambda"}
# What generation uses unless told otherwise (`generate`, `demo`, `serve`, the Python API): 12 DPM-Solver++(2M)
# steps keep the measures of 50 DDIM steps on every task (docs/results/sampler_steps.md); 12 DDIM steps do not
# on joint generation. `evaluate` keeps 25 DDIM steps, so its tables stay comparable with the earlier ones.
DEFAULT_SAMPLER, DEFAULT_STEPS = "dpmpp2m", 12
SAMPLER_NAMES = {"ddim": "DDIM", "ddpm": "DDPM", "dpmpp2m": "DPM-Solver++(2M)"}  # as pages and messages name them
# Where a task generates both modalities (joint, av_continue, av_inpaint), in what order: "together" descends every
# generated cell at once (the paper's); otherwise a sequence of sampler runs, each over one modality's generated cells,
# given the latest sample of the other's (held at pure noise, i.e. unseen, before it has one). "audio-first" samples
# the audio, then the video given it, as a2v; "video-first" the reverse. "video-audio-video" samples the video again
# given that audio: one sweep of blocked Gibbs sampling, whose last pair is drawn from p(audio) p(video | audio) (the
# first video only serves to draw the audio), so the video meets a2v's accuracy. MoNL trains the network for all.
ORDERS: dict[str, tuple[int, ...]] = {"together": (), "audio-first": (AUDIO, VIDEO), "video-first": (VIDEO, AUDIO),
                                      "video-audio-video": (VIDEO, AUDIO, VIDEO)}  # name -> modality of each run
DEFAULT_ORDER = "video-first"  # generation's default: measured against the others in docs/sampling.md


def generate_latents(
    model: Network, clean: AV, given: torch.Tensor, layout: ClipLayout, steps: int = DEFAULT_STEPS,
    sampler: str = DEFAULT_SAMPLER,
    eta: float = 0.0, mode: ConditioningMode = "clean", guidance: float | Sequence[float] = 0.0,
    schedule: NoiseSchedule = DEFAULT_SCHEDULE, generator: torch.Generator | None = None,
    self_condition: bool = False, progress: bool = False, pyramid_lag: int = 0, spacing: Spacing | None = None,
    prediction: str | None = None, order: str = "together",
) -> AV:
    """Sample the generated cells of a task; given cells of ``clean`` come back unchanged.

    ``model`` is the network, whose head predicts ``prediction`` (None: its config's; "eps" for any plain eps
    denoiser); ``EpsDenoiser`` turns its output into eps with ``schedule``, the one the levels and steps use.

    ``clean`` is (video, audio) latents of the batch; what it holds at generated cells is never used.
    ``given`` is the task grid (M, N) or (B, M, N). ``pyramid_lag`` > 0 uses a diffusion-forcing level matrix
    (``pyramid_level_matrix``, one grid only) instead of descending every generated cell together. ``spacing``
    chooses the levels the steps visit (default: the sampler's, ``DEFAULT_SPACING``). ``order`` (``ORDERS``): where
    both modalities are generated, sample them together or in turns (one sampler run of ``steps`` per turn).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    spacing = DEFAULT_SPACING[sampler] if spacing is None else spacing

    def sample(c: AV, g: torch.Tensor, unseen: int | None = None) -> AV:
        return _sample(model, c, g, layout, steps, sampler, eta, mode, guidance, schedule, generator, self_condition,
                       progress, pyramid_lag, spacing, prediction, unseen)

    passes = sampler_passes(given, order)
    if not passes:
        return sample(clean, given)
    sampled: set[int] = set()
    for modality in passes:
        other = 1 - modality
        pass_given = given.clone()  # this modality's generated cells start again from noise
        if other in sampled:  # the other's latest sample is given
            pass_given[..., other, :] = True
        clean = sample(clean, pass_given, None if other in sampled else other)  # else it waits at T, unseen
        sampled.add(modality)
    return clean


def sampler_passes(given: torch.Tensor, order: str) -> tuple[int, ...]:
    """The modality of each sampler run ``order`` makes on a task grid ([B,] M, N); empty where one run samples every
    generated cell (the order is "together", or the grid generates one modality only)."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")
    generated = ~given  # ([B,] M, N)
    both = bool(generated[..., VIDEO, :].any()) and bool(generated[..., AUDIO, :].any())
    return ORDERS[order] if both else ()


def _sample(model: Network, clean: AV, given: torch.Tensor, layout: ClipLayout, steps: int, sampler: str, eta: float,
            mode: ConditioningMode, guidance, schedule: NoiseSchedule, generator, self_condition: bool,
            progress: bool, pyramid_lag: int, spacing: Spacing, prediction: str | None, unseen: int | None) -> AV:
    """One sampler run over a task grid; the generated cells of modality ``unseen`` (if any) stay at pure noise."""
    matrix = (pyramid_level_matrix(given, steps, pyramid_lag, schedule.T, spacing, schedule) if pyramid_lag
              else task_level_matrix(given, steps, schedule.T, spacing, schedule))  # (S + 1, [B,] M, N)
    if unseen is not None:
        matrix = matrix.clone()
        held = ~given[..., unseen, :]  # ([B,] N)
        matrix[..., unseen, :] = torch.where(held, schedule.T, matrix[..., unseen, :])
    first = matrix[0] if matrix.dim() == 4 else matrix[0].expand(clean.batch_size, -1, -1)  # (B, M, N)
    x = initial_latents(clean, first.to(clean.device), layout, schedule, generator)
    eps = eps_denoiser(model, layout, schedule, prediction)
    denoiser = conditioned_denoiser(eps, given, clean, layout, mode, guidance, schedule, generator)
    kwargs = dict(generator=generator, self_condition=self_condition, progress=progress)
    if sampler == "ddim":
        kwargs["eta"] = eta
    return SAMPLERS[sampler](denoiser, x, matrix, layout, schedule, **kwargs)
