"""Samplers that consume a level matrix: the noise level of every (modality, segment) cell at every step.

A level matrix is (S + 1, M, N) or per example (S + 1, B, M, N), non-increasing along the steps. A cell whose
level does not change between two steps is held exactly (given cells sit at 0 throughout and come back
bit-for-bit); the others take a DDIM, DDPM or DPM-Solver++(2M) step from their current level to their next
one. Joint generation, cross-modal generation, continuation, inpainting and rolling (diffusion-forcing)
generation are then different matrices for the same loop.

The denoiser returns eps; a network reaches a sampler through ``EpsDenoiser`` built with the sampler's
``noise_schedule`` (``generate_latents`` does that), as k-diffusion's samplers only call a wrapped model.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
from tqdm.auto import tqdm

from avdit.diffusion.loss import Denoiser
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule, predict_x0, q_sample
from avdit.latents import AV, randn, randn_like
from avdit.layout import ClipLayout

# callback(step index, x after the step, x0 estimate at the step)
Callback = Callable[[int, AV, AV], None]


Spacing = Literal["uniform", "lambda", "karras"]
SPACINGS = ("uniform", "lambda", "karras")


def step_levels(steps: int, spacing: Spacing = "uniform", schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> torch.Tensor:
    """Levels (S + 1,) long, strictly decreasing from T to 0, that a generated cell visits in ``steps`` steps.

    ``uniform``: evenly spaced levels (DDIM's). ``lambda``: S + 1 points from level T to level 1 evenly spaced in
    the half log-SNR lambda = log(sqrt(a) / sqrt(1 - a)) (DPM-Solver's "logSNR" spacing), the last one (level 1,
    sigma = 0.01) taken as 0. ``karras``: the same ends, evenly spaced in sigma^(1/7) with sigma = sqrt((1 - a) / a)
    (Karras et al. 2022, Eq. 5, rho = 7). Both put more steps near low noise; each point is the nearest integer
    level, kept strictly decreasing.
    """
    T = schedule.T
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in [1, {T}], got {steps}")
    if spacing == "uniform":
        return torch.linspace(T, 0, steps + 1, dtype=torch.float64).round().long()
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; choose from {', '.join(SPACINGS)}")
    a = schedule.alphas_cumprod[1:]  # (T,) levels 1..T
    if spacing == "lambda":
        curve = 0.5 * (a.log() - (1 - a).log())  # (T,) decreasing in the level
    else:
        curve = ((1 - a) / a).sqrt() ** (1 / 7)  # (T,) increasing in the level
    targets = torch.linspace(float(curve[-1]), float(curve[0]), steps + 1, dtype=torch.float64)  # (S + 1,)
    # the level whose curve value is nearest each target (the curve is monotone in the level)
    nearest = (curve.view(1, -1) - targets.view(-1, 1)).abs().argmin(dim=1) + 1  # (S + 1,)
    levels = [T]
    for k in range(1, steps):  # strictly decreasing, leaving room for one level per remaining step
        levels.append(max(min(int(nearest[k]), levels[-1] - 1), steps - k))
    return torch.tensor(levels + [0], dtype=torch.long)


def ddim_levels(spec: str, schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> torch.Tensor:
    """The distinct levels above 0 that uniform DDIM samplers of the step counts ``spec`` ('1,2,4,8') visit,
    descending: (L,) long. 1, 2, 4 and 8 steps visit 1000, 875, ..., 125."""
    try:
        counts = [int(part) for part in spec.split(",")]
    except ValueError:
        counts = []
    if not counts or any(not 1 <= k <= schedule.T for k in counts):
        raise ValueError(f"student_steps={spec!r}: give sampler step counts joined by ',', each in 1..{schedule.T} "
                         "(e.g. '1,2,4,8')")
    levels = torch.cat([step_levels(k, "uniform", schedule)[:-1] for k in counts])
    return levels.unique().flip(0)


def task_level_matrix(given: torch.Tensor, steps: int, timesteps: int = 1000, spacing: Spacing = "uniform",
                      noise_schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> torch.Tensor:
    """Level matrix (S + 1, M, N): generated cells descend from T to 0 in ``steps`` steps, given cells stay 0.

    ``given`` is (M, N), or (B, M, N) for a different task per example (then (S + 1, B, M, N)). ``spacing``
    chooses the levels (``step_levels``; ``timesteps`` must be ``noise_schedule``'s T unless it is uniform).
    """
    levels = step_levels(steps, spacing, _with_levels(noise_schedule, timesteps, spacing))  # (S + 1,)
    levels = levels.view(-1, *[1] * given.dim())
    return torch.where(given.unsqueeze(0), torch.zeros_like(levels), levels)


def pyramid_level_matrix(given: torch.Tensor, steps: int, lag: int, timesteps: int = 1000,
                         spacing: Spacing = "uniform",
                         noise_schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> torch.Tensor:
    """A diffusion-forcing style level matrix (M, N given): generated segments start descending ``lag`` steps
    after the previous generated segment, so later segments are noisier than earlier ones at every step.

    Each generated cell visits the levels of ``task_level_matrix`` (same ``spacing``); the matrix has
    steps + lag x (R - 1) + 1 rows for R generated segments. ``lag`` = 0 is ``task_level_matrix``.
    """
    if given.dim() != 2:
        raise ValueError("pyramid_level_matrix takes one task grid (M, N)")
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    table = step_levels(steps, spacing, _with_levels(noise_schedule, timesteps, spacing))  # (steps + 1,)
    generated_segments = [n for n in range(given.shape[1]) if bool((~given[:, n]).any())]
    rank = {n: r for r, n in enumerate(generated_segments)}
    total = steps + lag * max(0, len(generated_segments) - 1)
    step = torch.arange(total + 1).view(-1, 1)  # (S + 1, 1)
    delay = torch.tensor([lag * rank.get(n, 0) for n in range(given.shape[1])]).view(1, -1)  # (1, N)
    levels = table[(step - delay).clamp(0, steps)]  # (S + 1, N)
    return torch.where(given.unsqueeze(0), torch.zeros_like(levels).unsqueeze(1), levels.unsqueeze(1))


def _with_levels(noise_schedule: NoiseSchedule, timesteps: int, spacing: str) -> NoiseSchedule:
    """The schedule whose levels ``step_levels`` spaces: any T for uniform spacing, else ``noise_schedule``'s."""
    if noise_schedule.T == timesteps:
        return noise_schedule
    if spacing != "uniform":
        raise ValueError(f"{spacing} spacing needs the noise schedule of {timesteps} levels, got {noise_schedule.T}")
    return NoiseSchedule.linear(timesteps)


def _per_example(levels: torch.Tensor, batch: int) -> torch.Tensor:
    """(S + 1, M, N) or (S + 1, B, M, N) -> (S + 1, B, M, N)."""
    if levels.dim() == 3:
        return levels.unsqueeze(1).expand(-1, batch, -1, -1)
    if levels.dim() == 4 and levels.shape[1] == batch:
        return levels
    raise ValueError(f"the level matrix must be (S+1, M, N) or (S+1, {batch}, M, N), got {tuple(levels.shape)}")


def initial_latents(
    clean: AV, levels: torch.Tensor, layout: ClipLayout, schedule: NoiseSchedule = DEFAULT_SCHEDULE,
    generator: torch.Generator | None = None, noise: AV | None = None,
) -> AV:
    """Latents at a schedule's first levels (B, M, N): clean at 0, pure noise at T, q_sample in between.

    At T the clean latent is not mixed in at all, so generated cells may hold anything (zeros) in ``clean``.
    ``noise`` (shaped as ``clean``): the noise to start from, instead of a draw from ``generator``.
    """
    noise = randn_like(clean, generator) if noise is None else noise
    t = layout.cells_to_latents(levels)
    return clean.map(
        lambda x, level, eps: torch.where(level == schedule.T, eps, q_sample(x, level, eps, schedule)), t, noise
    )


def _ddim_step(x, x0, eps, a_prev, a_t, a_s, x0_prev, eta, generator):
    """DDIM (Song et al., Eq. 12) from alpha_bar a_t to a_s, per element."""
    a_t, a_s = a_t.to(x.dtype), a_s.to(x.dtype)
    sigma = eta * ((1 - a_s) / (1 - a_t).clamp_min(1e-12)).sqrt() * (1 - a_t / a_s).clamp_min(0).sqrt()
    direction = (1 - a_s - sigma**2).clamp_min(0).sqrt() * eps
    out = a_s.sqrt() * x0 + direction
    if eta > 0:
        out = out + sigma * randn(x.shape, generator, x)
    return out


def _ddpm_step(x, x0, eps, a_prev, a_t, a_s, x0_prev, generator):
    """Ancestral step: a draw from the posterior q(x_s | x_t, x0) between any two levels s < t."""
    a_t, a_s = a_t.to(x.dtype), a_s.to(x.dtype)
    alpha_ts = a_t / a_s
    one_minus_a_t = (1 - a_t).clamp_min(1e-12)
    mean = a_s.sqrt() * (1 - alpha_ts) / one_minus_a_t * x0 + alpha_ts.sqrt() * (1 - a_s) / one_minus_a_t * x
    var = (1 - alpha_ts) * (1 - a_s) / one_minus_a_t
    return mean + var.clamp_min(0).sqrt() * randn(x.shape, generator, x)


def _half_log_snr(a: torch.Tensor) -> torch.Tensor:
    """lambda = log(alpha / sigma) = 0.5 log(a / (1 - a)) for alpha_bar ``a`` in (0, 1) (float64)."""
    return 0.5 * (a.log() - (1 - a).log())


def _dpmpp_2m_step(x, x0, eps, a_prev, a_t, a_s, x0_prev, generator):
    """DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Alg. 2; k-diffusion's ``sample_dpmpp_2m``), per element.

    With alpha = sqrt(a), sigma = sqrt(1 - a), lambda = log(alpha / sigma) and h = lambda_s - lambda_t:
    x_s = (sigma_s / sigma_t) x - alpha_s (exp(-h) - 1) D, where D = x0 (first order, = DDIM) or, where the element
    also moved on the previous step (a_prev < a_t), D = (1 + 1 / 2r) x0 - (1 / 2r) x0_prev with r = h_prev / h.
    A step to level 0 (a_s = 1) returns x0. Coefficients in float64 (the alpha_bars are), applied in x's dtype.
    """
    to_zero = a_s >= 1
    inner = lambda a: a.clamp(1e-300, 1 - 1e-16)  # noqa: E731 (level 0 and held cells give finite, unused values)
    lam_prev, lam_t, lam_s = _half_log_snr(inner(a_prev)), _half_log_snr(inner(a_t)), _half_log_snr(inner(a_s))
    h = lam_s - lam_t
    keep_x = ((1 - inner(a_s)) / (1 - inner(a_t))).sqrt()  # sigma_s / sigma_t
    take_x0 = -a_s.sqrt() * torch.expm1(-h)  # alpha_s (1 - exp(-h))
    second = (a_prev < a_t) & ~to_zero & (h > 0)
    r = (lam_t - lam_prev) / h.where(second, torch.ones_like(h))
    w = (0.5 / r.where(second, torch.ones_like(r))).where(second, torch.zeros_like(r))  # 1 / 2r, 0 for first order
    d = (1 + w.to(x.dtype)) * x0 - w.to(x.dtype) * x0_prev
    out = keep_x.to(x.dtype) * x + take_x0.to(x.dtype) * d
    return torch.where(to_zero, x0, out)


@torch.no_grad()
def _run(
    denoiser: Denoiser, x: AV, level_matrix: torch.Tensor, layout: ClipLayout, noise_schedule: NoiseSchedule,
    step: Callable, generator: torch.Generator | None, self_condition: bool, callback: Callback | None,
    progress: bool,
) -> AV:
    """The loop every sampler shares: one model call per row, then ``step(x, x0, eps, a_prev, a_t, a_s, x0_prev,
    generator)`` per modality with alpha_bar (float64) at the previous, current and next levels of each element
    (a_prev = a_t on the first row) and the previous row's x0 estimate; cells that keep their level are held."""
    levels = _per_example(level_matrix.to(x.device), x.batch_size)  # (S + 1, B, M, N)
    if bool((levels[1:] > levels[:-1]).any()):
        raise ValueError("a schedule matrix must be non-increasing along the steps for every cell")
    alpha_bar = lambda t: noise_schedule.alpha_bar(t, torch.float64)  # noqa: E731
    x0_prev = None
    for s in tqdm(range(levels.shape[0] - 1), desc="sampling", disable=not progress, leave=False):
        t_prev, t_cur, t_next = levels[max(s - 1, 0)], levels[s], levels[s + 1]  # (B, M, N)
        eps = denoiser(x, t_cur, x0_prev if self_condition else None)
        prev, cur, nxt = (layout.cells_to_latents(t) for t in (t_prev, t_cur, t_next))
        x0 = x.map(lambda xi, ti, ei: predict_x0(xi, ti, ei.to(xi.dtype), noise_schedule), cur, eps)
        history = x0 if x0_prev is None else x0_prev
        moved = []
        for xi, x0i, ei, pi, ti, si, hi in zip(x, x0, eps, prev, cur, nxt, history):
            new = step(xi, x0i, ei.to(xi.dtype), alpha_bar(pi), alpha_bar(ti), alpha_bar(si), hi, generator)
            moved.append(torch.where(ti != si, new, xi))  # cells that keep their level are held exactly
        x, x0_prev = AV(*moved), x0
        if callback is not None:
            callback(s, x, x0)
    return x


def sample_ddim(
    denoiser: Denoiser, x: AV, level_matrix: torch.Tensor, layout: ClipLayout,
    noise_schedule: NoiseSchedule = DEFAULT_SCHEDULE, eta: float = 0.0, generator: torch.Generator | None = None,
    self_condition: bool = False, callback: Callback | None = None, progress: bool = False,
) -> AV:
    """DDIM over a schedule matrix; ``eta`` = 0 is deterministic, 1 matches DDPM's posterior variance."""
    step = lambda x, x0, eps, a_p, a_t, a_s, x0_p, g: _ddim_step(x, x0, eps, a_p, a_t, a_s, x0_p, eta, g)  # noqa: E731
    return _run(denoiser, x, level_matrix, layout, noise_schedule, step, generator, self_condition, callback,
                progress)


def sample_ddpm(
    denoiser: Denoiser, x: AV, level_matrix: torch.Tensor, layout: ClipLayout,
    noise_schedule: NoiseSchedule = DEFAULT_SCHEDULE, generator: torch.Generator | None = None,
    self_condition: bool = False, callback: Callback | None = None, progress: bool = False,
) -> AV:
    """Ancestral DDPM over a schedule matrix (any step sizes: the posterior between consecutive levels)."""
    return _run(denoiser, x, level_matrix, layout, noise_schedule, _ddpm_step, generator, self_condition,
                callback, progress)


def sample_dpmpp_2m(
    denoiser: Denoiser, x: AV, level_matrix: torch.Tensor, layout: ClipLayout,
    noise_schedule: NoiseSchedule = DEFAULT_SCHEDULE, generator: torch.Generator | None = None,
    self_condition: bool = False, callback: Callback | None = None, progress: bool = False,
) -> AV:
    """DPM-Solver++(2M) over a schedule matrix (Lu et al. 2022): deterministic, second order in the half
    log-SNR of each element; its first step, elements whose previous step did not move, and steps to level 0
    are first order (the last returns the x0 estimate)."""
    return _run(denoiser, x, level_matrix, layout, noise_schedule, _dpmpp_2m_step, generator, self_condition,
                callback, progress)


SAMPLERS = {"ddim": sample_ddim, "ddpm": sample_ddpm, "dpmpp2m": sample_dpmpp_2m}
