"""One call from a task to latents: level matrix, initial latents, conditioning, sampler."""

from __future__ import annotations

from itertools import pairwise
from typing import Sequence

import torch

from avdit.diffusion.conditioning import ConditioningMode, conditioned_denoiser
from avdit.diffusion.denoiser import Network, eps_denoiser
from avdit.diffusion.samplers import SAMPLERS, Spacing, initial_latents, pyramid_level_matrix, task_level_matrix
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule
from avdit.latents import AV
from avdit.layout import AUDIO, MODALITIES, VIDEO, ClipLayout

# The level spacing each sampler uses unless told otherwise (``step_levels``); see docs/sampling.md.
DEFAULT_SPACING: dict[str, Spacing] = {"ddim": "uniform", "ddpm": "uniform", "dpmpp2m": "lambda"}
# What generation uses unless told otherwise (`generate`, `demo`, `serve`, the Python API): 12 DPM-Solver++(2M)
# steps keep the measures of 50 DDIM steps on every task (docs/results/sampler_steps.md); 12 DDIM steps do not
# on joint generation. `evaluate` keeps 25 DDIM steps, so its tables stay comparable with the earlier ones.
DEFAULT_SAMPLER, DEFAULT_STEPS = "dpmpp2m", 12
SAMPLER_NAMES = {"ddim": "DDIM", "ddpm": "DDPM", "dpmpp2m": "DPM-Solver++(2M)"}  # as pages and messages name them
# Where a task generates both modalities (joint, av_continue, av_inpaint), in what order: "together" descends every
# generated cell at once (the paper's); otherwise a sequence of sampler runs, named by their modalities joined by "-"
# ("video-audio-video"), each over one modality's generated cells, given the latest sample of the other's (held at
# pure noise, i.e. unseen, before it has one). "audio-video" (alias "audio-first") samples the audio, then the video
# given it, as a2v; "video-audio" ("video-first") the reverse. Each further run samples one modality again given the
# other's latest: a sweep of blocked Gibbs sampling, so the last video is drawn as a2v draws it, given audio drawn
# given a video. MoNL trains the network for all (``order_runs``).
TOGETHER = "together"
ORDER_ALIASES = {"audio-first": "audio-video", "video-first": "video-audio"}
ORDERS = (TOGETHER, "audio-first", "video-first", "video-audio-video", "video-audio-video-audio-video")  # as help names
DEFAULT_ORDER = "video-audio-video-audio-video"  # generation's default: measured against the others in docs/sampling.md
# The level at which a stream's windows see the segments they carry from the window before (0: clean; see
# ``generate_latents``'s ``history``): levels 100-500 measured against the held spread in docs/streams.md.
DEFAULT_HISTORY_LEVEL = 0


def generate_latents(
    model: Network, clean: AV, given: torch.Tensor, layout: ClipLayout, steps: int = DEFAULT_STEPS,
    sampler: str = DEFAULT_SAMPLER,
    eta: float = 0.0, mode: ConditioningMode = "clean", guidance: float | Sequence[float] = 0.0,
    schedule: NoiseSchedule = DEFAULT_SCHEDULE, generator: torch.Generator | None = None,
    self_condition: bool = False, progress: bool = False, pyramid_lag: int = 0, spacing: Spacing | None = None,
    prediction: str | None = None, order: str = "together", history: torch.Tensor | None = None,
    history_level: int = 0,
) -> AV:
    """Sample the generated cells of a task; given cells of ``clean`` come back unchanged.

    ``model`` is the network, whose head predicts ``prediction`` (None: its config's; "eps" for any plain eps
    denoiser); ``EpsDenoiser`` turns its output into eps with ``schedule``, the one the levels and steps use.

    ``clean`` is (video, audio) latents of the batch; what it holds at generated cells is never used.
    ``given`` is the task grid (M, N) or (B, M, N). ``pyramid_lag`` > 0 uses a diffusion-forcing level matrix
    (``pyramid_level_matrix``, one grid only) instead of descending every generated cell together. ``spacing``
    chooses the levels the steps visit (default: the sampler's, ``DEFAULT_SPACING``). ``order`` (``ORDERS``): where
    both modalities are generated, sample them together or in turns (one sampler run of ``steps`` per turn).

    ``history`` (M, N) bool marks given cells that hold the model's own earlier output (a stream's carried
    segments); the network sees them noised to ``history_level`` instead of clean (Diffusion Forcing's noisy
    history: a model that never sees its own small errors exactly cannot compound them). They come back clean.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    spacing = DEFAULT_SPACING[sampler] if spacing is None else spacing

    if history_level < 0 or history_level >= schedule.T:
        raise ValueError(f"history_level must be in [0, {schedule.T}), got {history_level}")
    noised = None if history is None or history_level == 0 else history & given  # (M, N) or (B, M, N)

    def sample(c: AV, g: torch.Tensor, unseen: int | None = None) -> AV:
        return _sample(model, c, g, layout, steps, sampler, eta, mode, guidance, schedule, generator, self_condition,
                       progress, pyramid_lag, spacing, prediction, unseen, noised, history_level)

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
    runs = order_runs(order)
    generated = ~given  # ([B,] M, N)
    both = bool(generated[..., VIDEO, :].any()) and bool(generated[..., AUDIO, :].any())
    return runs if both else ()


def order_runs(order: str) -> tuple[int, ...]:
    """The modality of each sampler run ``order`` names (see ``ORDERS``); empty for "together"."""
    if order == TOGETHER:
        return ()
    names = ORDER_ALIASES.get(order, order).split("-")
    runs = tuple(MODALITIES.index(name) for name in names if name in MODALITIES)
    alternates = all(a != b for a, b in pairwise(runs))
    if len(runs) != len(names) or len(runs) < 2 or not alternates:
        raise ValueError(f"unknown order {order!r}: give {TOGETHER!r}, 'audio-first', 'video-first', or two or more "
                         f"sampler runs that alternate between video and audio, joined by '-' (e.g. "
                         f"'video-audio-video')")
    return runs


def _sample(model: Network, clean: AV, given: torch.Tensor, layout: ClipLayout, steps: int, sampler: str, eta: float,
            mode: ConditioningMode, guidance, schedule: NoiseSchedule, generator, self_condition: bool,
            progress: bool, pyramid_lag: int, spacing: Spacing, prediction: str | None, unseen: int | None,
            noised: torch.Tensor | None = None, history_level: int = 0) -> AV:
    """One sampler run over a task grid; the generated cells of modality ``unseen`` (if any) stay at pure noise;
    given cells in ``noised`` are held at ``history_level`` and come back clean."""
    matrix = (pyramid_level_matrix(given, steps, pyramid_lag, schedule.T, spacing, schedule) if pyramid_lag
              else task_level_matrix(given, steps, schedule.T, spacing, schedule))  # (S + 1, [B,] M, N)
    if unseen is not None:
        matrix = matrix.clone()
        held = ~given[..., unseen, :]  # ([B,] N)
        matrix[..., unseen, :] = torch.where(held, schedule.T, matrix[..., unseen, :])
    if noised is not None:
        matrix = torch.where(noised, history_level, matrix)  # held there: the sampler does not move them
    first = matrix[0] if matrix.dim() == 4 else matrix[0].expand(clean.batch_size, -1, -1)  # (B, M, N)
    x = initial_latents(clean, first.to(clean.device), layout, schedule, generator)
    eps = eps_denoiser(model, layout, schedule, prediction)
    denoiser = conditioned_denoiser(eps, given, clean, layout, mode, guidance, schedule, generator)
    kwargs = dict(generator=generator, self_condition=self_condition, progress=progress)
    if sampler == "ddim":
        kwargs["eta"] = eta
    out = SAMPLERS[sampler](denoiser, x, matrix, layout, schedule, **kwargs)
    if noised is None:
        return out
    back = layout.cells_to_latents(noised.expand(clean.batch_size, *noised.shape[-2:]).to(clean.device))
    return out.map(lambda o, c, b: torch.where(b, c, o), clean, back)  # the noised history comes back clean
