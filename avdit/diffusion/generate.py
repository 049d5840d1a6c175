"""One call from a task to latents: level matrix, initial latents, conditioning, sampler."""

from __future__ import annotations

from typing import Callable

import torch

from avdit.diffusion.conditioning import conditioned_denoiser
from avdit.diffusion.denoiser import Network, eps_denoiser
from avdit.diffusion.samplers import SAMPLERS, Callback, initial_latents, pyramid_level_matrix, task_level_matrix
from avdit.diffusion.sampling import DEFAULT_SAMPLING, SamplingConfig, order_runs
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule
from avdit.latents import AV
from avdit.layout import AUDIO, VIDEO, ClipLayout

# callback(sampler run, step index, x after the step, x0 estimate at the step)
RunCallback = Callable[[int, int, AV, AV], None]


def generate_latents(
    model: Network, clean: AV, given: torch.Tensor, layout: ClipLayout, sampling: SamplingConfig = DEFAULT_SAMPLING,
    *, schedule: NoiseSchedule = DEFAULT_SCHEDULE, generator: torch.Generator | None = None,
    self_condition: bool = False, prediction: str | None = None, history: torch.Tensor | None = None,
    progress: bool = False, noise: AV | None = None, anchor: torch.Tensor | None = None,
    callback: RunCallback | None = None,
) -> AV:
    """Sample the generated cells of a task as ``sampling`` says; given cells of ``clean`` come back unchanged.

    ``model`` is the network, whose head predicts ``prediction`` (None: its config's; "eps" for any plain eps
    denoiser); ``EpsDenoiser`` turns its output into eps with ``schedule``, the one the levels and steps use.

    ``clean`` is (video, audio) latents of the batch; what it holds at generated cells is never used.
    ``given`` is the task grid (M, N) or (B, M, N). ``sampling.pyramid_lag`` > 0 uses a diffusion-forcing level
    matrix (``pyramid_level_matrix``, one grid only) instead of descending every generated cell together;
    ``sampling.order``: where both modalities are generated, sample them together or in turns (one sampler run of
    ``sampling.steps`` per turn).

    ``history`` (M, N) bool marks given cells that hold the model's own earlier output (a stream's carried
    segments); the network sees them noised to ``sampling.history_level`` instead of clean (Diffusion Forcing's
    noisy history: a model that never sees its own small errors exactly cannot compound them). They come back clean.

    ``anchor`` (M, N) bool marks given cells that anchor a stream's window (its first window's segment 0); with
    ``sampling.anchor_guidance`` > 0 the prediction is guided towards them (``conditioned_denoiser``).

    ``noise`` (shaped as ``clean``): every sampler run starts its generated cells from this noise instead of a fresh
    draw, so the sample is a function of it (of it alone where guidance is off); distillation pairs it with the
    sample (``avdit.train.distill``).
    """
    if sampling.history_level >= schedule.T:
        raise ValueError(f"history_level must be below the schedule's {schedule.T} levels, got "
                         f"{sampling.history_level}")
    noised = None if history is None or sampling.history_level == 0 else history & given  # (M, N) or (B, M, N)

    def sample(c: AV, g: torch.Tensor, unseen: int | None = None, run: int = 0) -> AV:
        step_callback = None if callback is None else (lambda s, x, x0: callback(run, s, x, x0))
        return _sample(model, c, g, layout, sampling, schedule, generator, self_condition, progress, prediction,
                       unseen, noised, noise, anchor, step_callback)

    passes = sampler_passes(given, sampling.order)
    if not passes:
        return sample(clean, given)
    sampled: set[int] = set()
    for run, modality in enumerate(passes):
        other = 1 - modality
        pass_given = given.clone()  # this modality's generated cells start again from noise
        if other in sampled:  # the other's latest sample is given
            pass_given[..., other, :] = True
        clean = sample(clean, pass_given, None if other in sampled else other, run)  # else it waits at T, unseen
        sampled.add(modality)
    return clean


def sampler_passes(given: torch.Tensor, order: str) -> tuple[int, ...]:
    """The modality of each sampler run ``order`` makes on a task grid ([B,] M, N); empty where one run samples every
    generated cell (the order is "together", or the grid generates one modality only)."""
    runs = order_runs(order)
    generated = ~given  # ([B,] M, N)
    both = bool(generated[..., VIDEO, :].any()) and bool(generated[..., AUDIO, :].any())
    return runs if both else ()


def _sample(model: Network, clean: AV, given: torch.Tensor, layout: ClipLayout, sampling: SamplingConfig,
            schedule: NoiseSchedule, generator, self_condition: bool, progress: bool, prediction: str | None,
            unseen: int | None, noised: torch.Tensor | None = None, noise: AV | None = None,
            anchor: torch.Tensor | None = None, callback: Callback | None = None) -> AV:
    """One sampler run over a task grid; the generated cells of modality ``unseen`` (if any) stay at pure noise;
    given cells in ``noised`` are held at ``sampling.history_level`` and come back clean."""
    steps, spacing, lag = sampling.steps, sampling.level_spacing, sampling.pyramid_lag
    matrix = (pyramid_level_matrix(given, steps, lag, schedule.T, spacing, schedule) if lag
              else task_level_matrix(given, steps, schedule.T, spacing, schedule))  # (S + 1, [B,] M, N)
    if unseen is not None:
        matrix = matrix.clone()
        held = ~given[..., unseen, :]  # ([B,] N)
        matrix[..., unseen, :] = torch.where(held, schedule.T, matrix[..., unseen, :])
    if noised is not None:
        matrix = torch.where(noised, sampling.history_level, matrix)  # held there: the sampler does not move them
    first = matrix[0] if matrix.dim() == 4 else matrix[0].expand(clean.batch_size, -1, -1)  # (B, M, N)
    x = initial_latents(clean, first.to(clean.device), layout, schedule, generator, noise)
    eps = eps_denoiser(model, layout, schedule, prediction)
    denoiser = conditioned_denoiser(eps, given, clean, layout, sampling.mode, sampling.guidance, schedule, generator,
                                    anchor, sampling.anchor_guidance)
    kwargs = dict(generator=generator, self_condition=self_condition, progress=progress, callback=callback)
    if sampling.sampler == "ddim":
        kwargs["eta"] = sampling.eta
    out = SAMPLERS[sampling.sampler](denoiser, x, matrix, layout, schedule, **kwargs)
    if noised is None:
        return out
    back = layout.cells_to_latents(noised.expand(clean.batch_size, *noised.shape[-2:]).to(clean.device))
    return out.map(lambda o, c, b: torch.where(b, c, o), clean, back)  # the noised history comes back clean
