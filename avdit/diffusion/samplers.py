"""Samplers that consume a schedule matrix: the noise level of every (modality, segment) cell at every step.

A schedule is (S + 1, M, N) or per example (S + 1, B, M, N), non-increasing along the steps. A cell whose
level does not change between two steps is held exactly (given cells sit at 0 throughout and come back
bit-for-bit); the others take a DDIM or DDPM step from their current level to their next one. Joint
generation, cross-modal generation, continuation, inpainting and rolling (diffusion-forcing) schedules are
then different matrices for the same loop.
"""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from avdit.diffusion.loss import Denoiser
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule, predict_x0, q_sample
from avdit.latents import AV, randn, randn_like
from avdit.layout import ClipLayout

# callback(step index, x after the step, x0 estimate at the step)
Callback = Callable[[int, AV, AV], None]


def task_schedule(given: torch.Tensor, steps: int, timesteps: int = 1000) -> torch.Tensor:
    """Schedule (S + 1, M, N): generated cells descend evenly from T to 0 in ``steps`` steps, given cells stay 0.

    ``given`` is (M, N), or (B, M, N) for a different task per example (then (S + 1, B, M, N)).
    """
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    levels = torch.linspace(timesteps, 0, steps + 1, dtype=torch.float64).round().long()  # (S + 1,)
    levels = levels.view(-1, *[1] * given.dim())
    return torch.where(given.unsqueeze(0), torch.zeros_like(levels), levels)


def pyramid_schedule(given: torch.Tensor, steps: int, lag: int, timesteps: int = 1000) -> torch.Tensor:
    """A diffusion-forcing style schedule (M, N given): generated segments start descending ``lag`` steps
    after the previous generated segment, so later segments are noisier than earlier ones at every step.

    Each generated cell still takes ``steps`` steps from T to 0; the matrix has steps + lag x (R - 1) + 1 rows
    for R generated segments. ``lag`` = 0 is ``task_schedule``.
    """
    if given.dim() != 2:
        raise ValueError("pyramid_schedule takes one task grid (M, N)")
    if not 1 <= steps <= timesteps or lag < 0:
        raise ValueError(f"steps must be in [1, {timesteps}] and lag >= 0, got {steps} and {lag}")
    generated_segments = [n for n in range(given.shape[1]) if bool((~given[:, n]).any())]
    rank = {n: r for r, n in enumerate(generated_segments)}
    total = steps + lag * max(0, len(generated_segments) - 1)
    step = torch.arange(total + 1).view(-1, 1)  # (S + 1, 1)
    delay = torch.tensor([lag * rank.get(n, 0) for n in range(given.shape[1])]).view(1, -1)  # (1, N)
    local = (step - delay).clamp(0, steps).double()  # (S + 1, N)
    levels = (timesteps * (1 - local / steps)).round().long()  # (S + 1, N)
    return torch.where(given.unsqueeze(0), torch.zeros_like(levels).unsqueeze(1), levels.unsqueeze(1))


def _per_example(schedule: torch.Tensor, batch: int) -> torch.Tensor:
    """(S + 1, M, N) or (S + 1, B, M, N) -> (S + 1, B, M, N)."""
    if schedule.dim() == 3:
        return schedule.unsqueeze(1).expand(-1, batch, -1, -1)
    if schedule.dim() == 4 and schedule.shape[1] == batch:
        return schedule
    raise ValueError(f"schedule must be (S+1, M, N) or (S+1, {batch}, M, N), got {tuple(schedule.shape)}")


def initial_latents(
    clean: AV, levels: torch.Tensor, layout: ClipLayout, schedule: NoiseSchedule = DEFAULT_SCHEDULE,
    generator: torch.Generator | None = None,
) -> AV:
    """Latents at a schedule's first levels (B, M, N): clean at 0, pure noise at T, q_sample in between.

    At T the clean latent is not mixed in at all, so generated cells may hold anything (zeros) in ``clean``.
    """
    noise = randn_like(clean, generator)
    t = layout.cells_to_latents(levels)
    return clean.map(
        lambda x, level, eps: torch.where(level == schedule.T, eps, q_sample(x, level, eps, schedule)), t, noise
    )


def _ddim_step(x, x0, eps, a_t, a_s, eta, generator):
    """DDIM (Song et al., Eq. 12) from alpha_bar a_t to a_s, per element."""
    sigma = eta * ((1 - a_s) / (1 - a_t).clamp_min(1e-12)).sqrt() * (1 - a_t / a_s).clamp_min(0).sqrt()
    direction = (1 - a_s - sigma**2).clamp_min(0).sqrt() * eps
    out = a_s.sqrt() * x0 + direction
    if eta > 0:
        out = out + sigma * randn(x.shape, generator, x)
    return out


def _ddpm_step(x, x0, eps, a_t, a_s, generator):
    """Ancestral step: a draw from the posterior q(x_s | x_t, x0) between any two levels s < t."""
    alpha_ts = a_t / a_s
    one_minus_a_t = (1 - a_t).clamp_min(1e-12)
    mean = a_s.sqrt() * (1 - alpha_ts) / one_minus_a_t * x0 + alpha_ts.sqrt() * (1 - a_s) / one_minus_a_t * x
    var = (1 - alpha_ts) * (1 - a_s) / one_minus_a_t
    return mean + var.clamp_min(0).sqrt() * randn(x.shape, generator, x)


@torch.no_grad()
def _run(
    denoiser: Denoiser, x: AV, schedule_matrix: torch.Tensor, layout: ClipLayout, noise_schedule: NoiseSchedule,
    step: Callable, generator: torch.Generator | None, self_condition: bool, callback: Callback | None,
    progress: bool,
) -> AV:
    levels = _per_example(schedule_matrix.to(x.device), x.batch_size)  # (S + 1, B, M, N)
    if bool((levels[1:] > levels[:-1]).any()):
        raise ValueError("a schedule matrix must be non-increasing along the steps for every cell")
    x0_prev = None
    for s in tqdm(range(levels.shape[0] - 1), desc="sampling", disable=not progress, leave=False):
        t_cur, t_next = levels[s], levels[s + 1]  # (B, M, N)
        eps = denoiser(x, t_cur, x0_prev if self_condition else None)
        cur, nxt = layout.cells_to_latents(t_cur), layout.cells_to_latents(t_next)
        x0 = x.map(lambda xi, ti, ei: predict_x0(xi, ti, ei.to(xi.dtype), noise_schedule), cur, eps)
        moved = []
        for xi, x0i, ei, ti, si in zip(x, x0, eps, cur, nxt):
            a_t, a_s = noise_schedule.alpha_bar(ti, xi.dtype), noise_schedule.alpha_bar(si, xi.dtype)
            new = step(xi, x0i, ei.to(xi.dtype), a_t, a_s, generator)
            moved.append(torch.where(ti != si, new, xi))  # cells that keep their level are held exactly
        x, x0_prev = AV(*moved), x0
        if callback is not None:
            callback(s, x, x0)
    return x


def sample_ddim(
    denoiser: Denoiser, x: AV, schedule_matrix: torch.Tensor, layout: ClipLayout,
    noise_schedule: NoiseSchedule = DEFAULT_SCHEDULE, eta: float = 0.0, generator: torch.Generator | None = None,
    self_condition: bool = False, callback: Callback | None = None, progress: bool = False,
) -> AV:
    """DDIM over a schedule matrix; ``eta`` = 0 is deterministic, 1 matches DDPM's posterior variance."""
    step = lambda x, x0, eps, a_t, a_s, g: _ddim_step(x, x0, eps, a_t, a_s, eta, g)  # noqa: E731
    return _run(denoiser, x, schedule_matrix, layout, noise_schedule, step, generator, self_condition, callback,
                progress)


def sample_ddpm(
    denoiser: Denoiser, x: AV, schedule_matrix: torch.Tensor, layout: ClipLayout,
    noise_schedule: NoiseSchedule = DEFAULT_SCHEDULE, generator: torch.Generator | None = None,
    self_condition: bool = False, callback: Callback | None = None, progress: bool = False,
) -> AV:
    """Ancestral DDPM over a schedule matrix (any step sizes: the posterior between consecutive levels)."""
    return _run(denoiser, x, schedule_matrix, layout, noise_schedule, _ddpm_step, generator, self_condition,
                callback, progress)


SAMPLERS = {"ddim": sample_ddim, "ddpm": sample_ddpm}
