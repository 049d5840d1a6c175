import math

import pytest
import torch

from avdit.diffusion import (
    DEFAULT_SCHEDULE,
    SamplingConfig,
    conditioned_denoiser,
    generate_latents,
    initial_latents,
    predict_x0,
    pyramid_level_matrix,
    sample_ddim,
    sample_dpmpp_2m,
    step_levels,
    task_level_matrix,
)
from avdit.diffusion.gaussian import GaussianOracle, random_gaussian
from avdit.diffusion.generate import order_runs
from avdit.diffusion.samplers import SPACINGS
from avdit.latents import AV
from avdit.layout import AUDIO, VIDEO
from avdit.tasks import TASK_PRESETS, get_task
from tests.conftest import TOY_LAYOUT, random_latents


class Recorder:
    """Wraps a denoiser and keeps every (x, t) it was called with and what it returned."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, x, t, self_cond=None):
        out = self.model(x, t, self_cond)
        self.calls.append((x, t.clone(), out))
        return out


def expand(x: AV, batch: int) -> AV:
    return x.map(lambda p: p.expand(batch, *p.shape[1:]).clone())


@pytest.mark.parametrize("task", [t for t in TASK_PRESETS if t != "joint"])
@pytest.mark.parametrize("sampler, mode, guidance", [("ddim", "clean", 0.0), ("ddpm", "clean", (1.5, 3.0)),
                                                     ("ddim", "replace", 2.0), ("dpmpp2m", "clean", (1.5, 3.0)),
                                                     ("dpmpp2m", "replace", 2.0)])
def test_given_cells_come_back_bit_for_bit(tiny_model, generator, task, sampler, mode, guidance):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    given = get_task(task, layout.num_segments).given
    out = generate_latents(tiny_model, clean, given, layout, SamplingConfig(steps=4, sampler=sampler, eta=0.5, mode=mode, guidance=guidance, order="together"), generator=generator)
    mask = layout.cells_to_latents(given[None])
    for o, c, m in zip(out, clean, mask):
        m = m.expand_as(o)
        assert torch.equal(o[m], c[m])
        if bool((~m).any()):
            assert not torch.equal(o[~m], c[~m])  # the rest was generated


def _ddim_reference(mean, var, x_T, levels):
    """DDIM (eta = 0) with the exact denoiser for independent Gaussian elements, as a scalar recursion.

    With d = x - sqrt(a) mu and v = a var + 1 - a, one step from level t to s maps
    d -> d (sqrt(a_s a_t) var + sqrt((1 - a_s)(1 - a_t))) / v_t.
    """
    abar = DEFAULT_SCHEDULE.alphas_cumprod.tolist()
    out = []
    for m, v, x in zip(mean, var, x_T):
        d = x - math.sqrt(abar[levels[0]]) * m
        for t, s in zip(levels[:-1], levels[1:]):
            a_t, a_s = abar[t], abar[s]
            d *= (math.sqrt(a_s * a_t) * v + math.sqrt((1 - a_s) * (1 - a_t))) / (a_t * v + 1 - a_t)
        out.append(m + d)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("steps", [10, 50])
def test_ddim_with_an_exact_denoiser_lands_on_the_analytic_answer(generator, steps):
    mean, _ = random_gaussian(TOY_LAYOUT, 1, 1, generator=generator)
    var = torch.rand(mean.flatten().shape[1], generator=generator, dtype=torch.float64) * 2 + 0.05
    oracle = GaussianOracle(mean, torch.diag(var), TOY_LAYOUT)
    given = get_task("joint", TOY_LAYOUT.num_segments).given
    matrix = task_level_matrix(given, steps)
    x_T = expand(mean, 3).map(lambda p: torch.randn(p.shape, generator=generator))
    out = sample_ddim(oracle, x_T, matrix, TOY_LAYOUT).flatten().double()
    levels = matrix[:, 0, 0].tolist()
    mu = mean.flatten()[0].double()
    for b in range(3):
        expected = _ddim_reference(mu.tolist(), var.tolist(), x_T.flatten()[b].double().tolist(), levels)
        torch.testing.assert_close(out[b], expected, rtol=1e-4, atol=1e-4)
    if steps == 50:  # and approaches the probability-flow ODE's exact map x_T -> mu + sd * x_T / sqrt(v_T)
        a_T = DEFAULT_SCHEDULE.alphas_cumprod[-1].item()
        d_T = x_T.flatten().double() - math.sqrt(a_T) * mu
        ode = mu + var.sqrt() * d_T / (a_T * var + 1 - a_T).sqrt()
        assert (out - ode).abs().max() < 0.05 * ode.abs().max()


def assert_samples_the_analytic_conditional(task: str, seed: int, correlations: bool = True, **sampling) -> None:
    """2000 samples of a task from the exact denoiser of a random Gaussian (``generate_latents(**sampling)``) against
    the task's analytic conditional: means within 5 standard errors, variances within 15 %, and (``correlations``)
    every correlation of the generated elements within 0.12."""
    g = torch.Generator().manual_seed(seed)
    mean, cov = random_gaussian(TOY_LAYOUT, 1, 1, rank=3, generator=g)
    oracle = GaussianOracle(mean, cov, TOY_LAYOUT)
    given = get_task(task, TOY_LAYOUT.num_segments).given
    reference = oracle.sample(1, g)
    config = SamplingConfig(**{"guidance": 0.0, "order": "together", **sampling})
    out = generate_latents(oracle, expand(reference, 2000), given, TOY_LAYOUT, config, generator=g).flatten().double()
    given_elements = TOY_LAYOUT.cells_to_latents(given[None]).map(lambda m, p: m.expand_as(p), mean).flatten()[0]
    mu, cov_u = oracle.conditional(given_elements, reference.flatten()[0][given_elements])
    generated = out[:, ~given_elements]
    sd = cov_u.diagonal().sqrt()
    assert ((generated.mean(0) - mu).abs() / sd).max() < 0.12  # 5 standard errors of the mean
    ratio = torch.cov(generated.T).diagonal() / cov_u.diagonal()
    assert 0.85 < ratio.min() and ratio.max() < 1.12
    if correlations:
        corr = torch.corrcoef(generated.T)
        assert (corr - cov_u / torch.outer(sd, sd)).abs().max() < 0.12


@pytest.mark.parametrize("task, sampler, steps", [("joint", "ddim", 100), ("a2v", "ddim", 200),
                                                  ("av_inpaint", "ddim", 200), ("av_continue", "ddpm", 250),
                                                  ("a2v", "dpmpp2m", 10), ("av_inpaint", "dpmpp2m", 10)])
def test_tasks_sample_the_analytic_conditional_of_a_gaussian(task, sampler, steps):
    """A perfect MoNL denoiser + the task's schedule matrix = the exact conditional distribution."""
    assert_samples_the_analytic_conditional(task, 3, steps=steps, sampler=sampler)


def test_joint_equals_plain_unconditional_ddim(tiny_model, generator):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    seed = torch.Generator().manual_seed(5)
    out = generate_latents(tiny_model, clean, get_task("joint", 5).given, layout, SamplingConfig(steps=6, sampler="ddim", guidance=0.0, order="together"), generator=torch.Generator().manual_seed(5))
    # an independent loop: classic DDIM, one scalar timestep for the whole batch
    x = clean.map(lambda p: torch.randn(p.shape, generator=seed))
    abar = DEFAULT_SCHEDULE.alphas_cumprod
    levels = torch.linspace(1000, 0, 7, dtype=torch.float64).round().long().tolist()
    with torch.no_grad():
        for t, s in zip(levels[:-1], levels[1:]):
            eps = tiny_model(x, torch.full((2,), t))
            a_t, a_s = abar[t].float(), abar[s].float()
            x = x.map(lambda xi, ei: a_s.sqrt() * (xi - (1 - a_t).sqrt() * ei) / a_t.sqrt() + (1 - a_s).sqrt() * ei,
                      eps)
    for a, b in zip(out, x):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_clean_mode_feeds_given_cells_clean_at_level_zero(tiny_model, generator):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    given = get_task("av_continue", 5).given
    recorder = Recorder(tiny_model)
    generate_latents(recorder, clean, given, layout, SamplingConfig(steps=3, mode="clean", guidance=0.0, order="together"), generator=generator)
    mask = layout.cells_to_latents(given[None])
    for x, t, _ in recorder.calls:
        assert bool((t[:, given] == 0).all()) and bool((t[:, ~given] > 0).all())
        for xi, ci, mi in zip(x, clean, mask):
            mi = mi.expand_as(xi)
            assert torch.equal(xi[mi], ci[mi])


def test_replace_mode_renoises_given_cells_to_the_current_level(tiny_model, generator):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 64, generator)
    given = get_task("a2v", 5).given
    recorder = Recorder(tiny_model)
    generate_latents(recorder, clean, given, layout, SamplingConfig(steps=4, sampler="ddim", mode="replace", guidance=0.0, order="together"), generator=generator)
    abar = DEFAULT_SCHEDULE.alphas_cumprod
    for x, t, _ in recorder.calls:
        level = int(t[0, 0, 0])
        assert bool((t == level).all())  # one level for the whole clip, as a vanilla model was trained
        a = abar[level].float()
        residual = (x.audio - a.sqrt() * clean.audio) / (1 - a).sqrt()  # the noise that was added
        assert abs(residual.std().item() - 1) < 0.05 and abs(residual.mean().item()) < 0.05


def test_guidance_combines_conditional_and_noise_replaced_predictions(tiny_model, generator):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    given = get_task("av_continue", 5).given
    recorder = Recorder(tiny_model)
    denoise = conditioned_denoiser(recorder, given, clean, layout, guidance=(2.0, 0.5), generator=generator)
    x = clean.map(lambda p: torch.randn(p.shape, generator=generator))
    x = x.map(lambda xi, ci, m: torch.where(m, ci, xi), clean, layout.cells_to_latents(given[None]))
    t = torch.where(given, 0, 700).expand(2, -1, -1)
    with torch.no_grad():
        eps = denoise(x, t, None)
    (x_both, t_both, out_both), = recorder.calls
    cond_t, uncond_t = t_both[:2], t_both[2:]
    assert torch.equal(cond_t, t) and bool((uncond_t[:, given] == 1000).all())
    assert torch.equal(uncond_t[:, ~given], t[:, ~given])
    assert not torch.equal(x_both.video[2:, :, :2], clean.video[:, :, :2])  # condition replaced by noise
    with torch.no_grad():
        e_c, e_u = tiny_model(x, t), tiny_model(x_both.map(lambda p: p[2:]), uncond_t)
    torch.testing.assert_close(eps.video, 3.0 * e_c.video - 2.0 * e_u.video)
    torch.testing.assert_close(eps.audio, 1.5 * e_c.audio - 0.5 * e_u.audio)


def test_anchor_guidance_adds_the_anchors_direction_in_one_batched_call(tiny_model, generator):
    """eps = (1 + s) e(given) - s e(no given) + w (e(given) - e(anchor replaced by noise at T)): the anchor branch
    drops only the anchor cells, and all three predictions come from one call of the network."""
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    given = get_task("av_continue", 5).given  # segments 0-1 of both: segment 0 the anchor, segment 1 carried
    anchor = torch.zeros_like(given)
    anchor[:, 0] = True
    recorder = Recorder(tiny_model)
    denoise = conditioned_denoiser(recorder, given, clean, layout, guidance=1.0, generator=generator, anchor=anchor,
                                   anchor_guidance=3.0)
    x = clean.map(lambda p: torch.randn(p.shape, generator=generator))
    x = x.map(lambda xi, ci, m: torch.where(m, ci, xi), clean, layout.cells_to_latents(given[None]))
    t = torch.where(given, 0, 700).expand(2, -1, -1)
    with torch.no_grad():
        eps = denoise(x, t, None)
    (x_all, t_all, _), = recorder.calls  # one call: conditional, unconditional, without the anchor
    assert t_all.shape[0] == 6
    assert torch.equal(t_all[4:, :, 0], torch.full((2, 2), 1000)) and torch.equal(t_all[4:, :, 1:], t[:, :, 1:])
    v_anchor = layout.cells_to_latents(anchor[None]).video.expand_as(x.video)  # where segment 0's video latents are
    assert torch.equal(x_all.video[4:][~v_anchor], x.video[~v_anchor])  # carried segment, noisy cells as they were
    assert not torch.equal(x_all.video[4:][v_anchor], x.video[v_anchor])  # the anchor replaced by noise
    with torch.no_grad():
        e_c, e_u, e_a = (tiny_model(AV(x_all.video[k:k + 2], x_all.audio[k:k + 2]), t_all[k:k + 2]) for k in (0, 2, 4))
    for m in range(2):
        torch.testing.assert_close(eps[m], e_c[m] + 1.0 * (e_c[m] - e_u[m]) + 3.0 * (e_c[m] - e_a[m]))


def test_without_anchor_cells_or_weight_anchor_guidance_changes_nothing(tiny_model, generator):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 1, generator)
    given = get_task("av_continue", 5).given
    x = clean.map(lambda p: torch.randn(p.shape, generator=generator))
    t = torch.where(given, 0, 500).expand(1, -1, -1)
    anchor = torch.zeros_like(given)
    anchor[:, 0] = True
    outs = []
    for cells, weight in ((None, 0.0), (anchor, 0.0), (torch.zeros_like(given), 2.0), (~given, 2.0)):
        denoise = conditioned_denoiser(tiny_model, given, clean, layout, guidance=1.0,
                                       generator=torch.Generator().manual_seed(0), anchor=cells,
                                       anchor_guidance=weight)
        with torch.no_grad():
            outs.append(denoise(x, t, None))
    for out in outs[1:]:  # no weight, no anchor cells, or anchor cells that are not given: plain guidance
        assert all(torch.equal(a, b) for a, b in zip(out, outs[0]))


@pytest.mark.parametrize("sample", [sample_ddim, sample_dpmpp_2m])
def test_self_conditioning_passes_the_previous_x0_estimate(tiny_model, generator, sample):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 1, generator)
    seen = []

    def model(x, t, self_cond):
        seen.append(self_cond)
        return tiny_model(x, t)

    matrix = task_level_matrix(get_task("joint", 5).given, 3)
    sample(model, clean, matrix, layout, self_condition=True)
    assert seen[0] is None and all(s is not None for s in seen[1:])


def test_schedules(generator):
    given = get_task("v2a", 5).given
    matrix = task_level_matrix(given, 4)
    assert matrix.shape == (5, 2, 5)
    assert matrix[:, 1, 0].tolist() == [1000, 750, 500, 250, 0] and bool((matrix[:, 0] == 0).all())
    per_example = task_level_matrix(torch.stack([given, ~given]), 4)
    assert per_example.shape == (5, 2, 2, 5) and bool((per_example[:, 1, 1] == 0).all())
    with pytest.raises(ValueError, match="steps must be in"):
        task_level_matrix(given, 0)


@pytest.mark.parametrize("sample", [sample_ddim, sample_dpmpp_2m])
def test_a_rising_schedule_is_refused(tiny_model, generator, sample):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 1, generator)
    matrix = torch.tensor([0, 500, 0]).view(3, 1, 1).expand(3, 2, 5)
    with pytest.raises(ValueError, match="non-increasing"):
        sample(tiny_model, clean, matrix, layout)


def test_cells_waiting_at_their_level_are_held(tiny_model, generator):
    """A diffusion-forcing style matrix: segment 4 stays at T while the others descend."""
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 1, generator)
    matrix = torch.tensor([1000, 500, 0]).view(3, 1, 1).repeat(1, 2, 5)
    matrix[:2, :, 4] = 1000
    matrix[2, :, 4] = 1000
    out = sample_ddim(tiny_model, clean, matrix, layout)
    assert torch.equal(out.audio[..., 65:], clean.audio[..., 65:])
    assert not torch.equal(out.audio[..., :65], clean.audio[..., :65])


def test_predicted_x0_of_clean_cells_is_exact():
    x = torch.randn(3, 4)
    assert torch.equal(predict_x0(x, torch.zeros(3, 4, dtype=torch.long), torch.randn(3, 4) * 1e9), x)


def _ode_error(sampler: str, steps: int, task: str, spacing: str | None = None, batch: int = 64) -> float:
    """Relative RMS distance from the exact probability-flow ODE map of a correlated Gaussian (same x_T)."""
    g = torch.Generator().manual_seed(0)
    mean, cov = random_gaussian(TOY_LAYOUT, 1, 1, rank=4, generator=g)
    oracle = GaussianOracle(mean, cov, TOY_LAYOUT)
    given = get_task(task, TOY_LAYOUT.num_segments).given
    reference = expand(oracle.sample(1, g), batch)
    first = torch.where(given, 0, DEFAULT_SCHEDULE.T).expand(batch, -1, -1)  # (B, M, N)
    x_T = initial_latents(reference, first, TOY_LAYOUT, generator=torch.Generator().manual_seed(1))
    out = generate_latents(oracle, reference, given, TOY_LAYOUT, SamplingConfig(steps=steps, sampler=sampler, spacing=spacing, guidance=0.0, order="together"), generator=torch.Generator().manual_seed(1)).flatten().double()  # (B, D)
    given_elements = TOY_LAYOUT.cells_to_latents(given[None]).map(lambda m, p: m.expand_as(p), mean).flatten()[0]
    exact = oracle.ode_map(x_T.flatten(), given_elements, reference.flatten()[0][given_elements])  # (B, D_u)
    return ((out[:, ~given_elements] - exact).pow(2).mean().sqrt() / exact.pow(2).mean().sqrt()).item()


def test_the_exact_ode_map_is_where_many_small_steps_land():
    assert _ode_error("ddim", 1000, "a2v") < 0.002  # first order: the error shrinks as 1 / S
    assert _ode_error("dpmpp2m", 200, "a2v") < 1e-4  # second order


@pytest.mark.parametrize("task", ["joint", "a2v", "av_continue"])
def test_dpmpp2m_at_10_steps_is_far_closer_to_the_exact_ode_than_ddim(task):
    """Measured (correlated Gaussian, relative RMS from the exact map): DDIM 10 steps 0.13 / 0.070 / 0.088
    (joint / a2v / av_continue), DPM-Solver++(2M) 10 steps 0.025 / 0.003 / 0.008 on its lambda spacing, 0.070 /
    0.062 / 0.070 on DDIM's uniform levels; DDIM at 50 steps 0.028 / 0.016 / 0.020."""
    ddim = _ode_error("ddim", 10, task)
    assert 0.05 < ddim < 0.2
    assert _ode_error("dpmpp2m", 10, task) < ddim / 4
    assert _ode_error("dpmpp2m", 10, task, spacing="uniform") < ddim  # on DDIM's levels
    assert _ode_error("dpmpp2m", 10, task) < 1.2 * _ode_error("ddim", 50, task)


def test_dpmpp2m_first_order_where_the_previous_step_did_not_move_and_x0_at_the_end():
    """A cell waiting at T takes a DDIM step when it starts; the step to level 0 returns the x0 estimate."""
    g = torch.Generator().manual_seed(0)
    mean, cov = random_gaussian(TOY_LAYOUT, 1, 1, rank=3, generator=g)
    oracle = GaussianOracle(mean, cov, TOY_LAYOUT)
    matrix = torch.tensor([1000, 1000, 1000, 600, 200, 0]).view(6, 1, 1).repeat(1, 2, 5)
    matrix[:, :, :4] = torch.tensor([1000, 700, 400, 200, 100, 0]).view(6, 1, 1)
    x_T = expand(mean, 4).map(lambda p: torch.randn(p.shape, generator=g))
    states, estimates = [x_T], []
    sample_dpmpp_2m(oracle, x_T, matrix, TOY_LAYOUT,
                    callback=lambda s, x, x0: (states.append(x), estimates.append(x0)))
    abar = DEFAULT_SCHEDULE.alphas_cumprod.float()
    x, x0, after = states[2].audio[..., 65:], estimates[2].audio[..., 65:], states[3].audio[..., 65:]  # 1000 -> 600
    eps = (x - abar[1000].sqrt() * x0) / (1 - abar[1000]).sqrt()
    torch.testing.assert_close(after, abar[600].sqrt() * x0 + (1 - abar[600]).sqrt() * eps)
    assert torch.equal(states[2].audio[..., 65:], x_T.audio[..., 65:])  # held while waiting
    assert torch.equal(states[-1].video, estimates[-1].video) and torch.equal(states[-1].audio, estimates[-1].audio)
    # and the cells that moved on both steps took a second-order step (not DDIM's)
    x, x0, after = states[1].audio[..., :65], estimates[1].audio[..., :65], states[2].audio[..., :65]  # 700 -> 400
    eps = (x - abar[700].sqrt() * x0) / (1 - abar[700]).sqrt()
    assert not torch.allclose(after, abar[400].sqrt() * x0 + (1 - abar[400]).sqrt() * eps, rtol=1e-3, atol=1e-3)


def test_dpmpp2m_with_a_pyramid_schedule_and_guidance(tiny_model, generator):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    given = get_task("av_continue", 5).given
    recorder = Recorder(tiny_model)
    out = generate_latents(recorder, clean, given, layout, SamplingConfig(steps=4, sampler="dpmpp2m", guidance=(1.5, 3.0), pyramid_lag=2, order="together"), generator=generator)
    assert len(recorder.calls) == 4 + 2 * 2  # three generated segments, each starting 2 steps after the last
    assert all(x.batch_size == 4 for x, _, _ in recorder.calls)  # conditional and noise-replaced together
    mask = layout.cells_to_latents(given[None])
    for o, c, m in zip(out, clean, mask):
        assert torch.equal(o[m.expand_as(o)], c[m.expand_as(o)]) and bool(o.isfinite().all())


def test_dpmpp2m_pyramid_samples_the_analytic_conditional():
    """Cells at different levels at every step (a rolling schedule), second order per cell, 10 steps each."""
    assert_samples_the_analytic_conditional("av_continue", 3, correlations=False, steps=10, sampler="dpmpp2m",
                                            pyramid_lag=3)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_step_levels_descend_strictly_from_T_to_0(spacing):
    for steps in (1, 2, 8, 10, 12, 50, 999, 1000):
        levels = step_levels(steps, spacing)
        assert levels.shape == (steps + 1,) and levels[0] == 1000 and levels[-1] == 0
        assert bool((levels[1:] < levels[:-1]).all())
    given = get_task("a2v", 5).given
    assert torch.equal(pyramid_level_matrix(given, 10, 0, spacing=spacing), task_level_matrix(given, 10, spacing=spacing))
    if spacing != "uniform":  # more of the steps at low noise than DDIM's levels
        assert int((step_levels(10, spacing) < 100).sum()) > int((step_levels(10) < 100).sum())
    with pytest.raises(ValueError, match="steps must be in"):
        step_levels(0, spacing)


@pytest.mark.parametrize("order, task, sampler, steps",
                         [pytest.param(order, *run, marks=pytest.mark.slow if  # 2.5-4 s each; every order runs below
                                       run[0] == "joint" and order != "video-audio-video" else ())
                          for order in ("audio-first", "video-first", "video-audio-video")
                          for run in (("joint", "ddim", 100), ("av_continue", "dpmpp2m", 10))]
                         + [("audio-video-audio-video", "av_continue", "dpmpp2m", 10)])
def test_ordered_generation_samples_the_analytic_conditional(order, task, sampler, steps):
    """One modality, then the other given it: p(first | given) p(later | first, given) is the task's conditional,
    so with an exact denoiser the pair is distributed as together (video-audio correlations included); a further run
    of the first modality given the later one is a Gibbs step, which keeps that distribution."""
    assert_samples_the_analytic_conditional(task, 4, steps=steps, sampler=sampler, order=order)


@pytest.mark.parametrize("order", ["audio-first", "video-first", "video-audio-video", "video-audio-video-audio-video"])
def test_ordered_generation_samples_one_modality_at_a_time_the_other_unseen_until_sampled(tiny_model, generator,
                                                                                          order):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    given = get_task("av_continue", layout.num_segments).given
    recorder = Recorder(tiny_model)
    out = generate_latents(recorder, clean, given, layout, SamplingConfig(steps=4, sampler="dpmpp2m", guidance=1.0, order=order), generator=generator)
    passes = order_runs(order)
    assert len(recorder.calls) == len(passes) * 4
    generated = ~given
    for i, (_, t, _) in enumerate(recorder.calls):
        t = t[:2]  # the conditional half of the guided batch
        modality, earlier = passes[i // 4], passes[:i // 4]
        other = 1 - modality
        assert bool((t[:, given] == 0).all())
        # this run's modality descends, all its generated cells together, from pure noise at the run's first step
        levels = t[:, modality][:, generated[modality]]
        assert bool((levels == levels[0, 0]).all()) and bool((levels > 0).all())
        assert i % 4 or bool((levels == DEFAULT_SCHEDULE.T).all())
        if other in earlier:  # the other's latest sample is given, clean
            assert bool((t[:, other] == 0).all())
        else:  # not sampled yet: its generated cells wait at pure noise, unseen
            assert bool((t[:, other][:, generated[other]] == DEFAULT_SCHEDULE.T).all())
    mask = layout.cells_to_latents(given[None])
    for o, c, m in zip(out, clean, mask):
        assert torch.equal(o[m.expand_as(o)], c[m.expand_as(o)]) and bool(o.isfinite().all())


def test_resampling_the_video_keeps_the_audio_of_video_first(tiny_model):
    """video-audio-video's first two runs are video-first's: the same seed gives the same audio, and a new video
    sampled given it."""
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, torch.Generator().manual_seed(0))
    given = get_task("joint", layout.num_segments).given
    first, resampled = (generate_latents(tiny_model, clean, given, layout, SamplingConfig(steps=3, order=o, guidance=0.0), generator=torch.Generator().manual_seed(1))
                        for o in ("video-first", "video-audio-video"))
    assert torch.equal(first.audio, resampled.audio)
    assert not torch.allclose(first.video, resampled.video)


def test_order_changes_nothing_where_one_modality_is_generated(tiny_model, generator):
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, generator)
    given = get_task("a2v", layout.num_segments).given
    together, audio_first = (generate_latents(tiny_model, clean, given, layout, SamplingConfig(steps=3, guidance=1.0, order=o), generator=torch.Generator().manual_seed(1))
                             for o in ("together", "audio-first"))
    assert all(torch.equal(a, b) for a, b in zip(together, audio_first))
    with pytest.raises(ValueError, match="unknown order 'sideways'"):
        generate_latents(tiny_model, clean, given, layout, SamplingConfig(steps=3, order="sideways", guidance=0.0))


def test_an_order_names_its_runs_and_they_alternate():
    assert order_runs("together") == ()
    assert order_runs("video-first") == order_runs("video-audio") == (VIDEO, AUDIO)
    assert order_runs("audio-first") == order_runs("audio-video") == (AUDIO, VIDEO)
    assert order_runs("video-audio-video-audio-video") == (VIDEO, AUDIO) * 2 + (VIDEO,)
    for bad in ("video", "video-video-audio", "video-audio-sideways", "video--audio", "Video-audio", ""):
        with pytest.raises(ValueError, match="alternate between video and audio"):
            order_runs(bad)


@pytest.mark.parametrize("order", ["together", "video-audio-video"])
def test_the_callback_sees_every_step_of_every_run_and_the_last_estimates_are_the_sample(tiny_model, order):
    """``generate_latents(callback=...)`` is called once per sampler step, runs counted from 0; a DDIM step to level 0
    lands on its x0 estimate, so each modality's last estimate is what comes back at its generated cells."""
    layout = tiny_model.config.layout
    clean = random_latents(tiny_model, 2, torch.Generator().manual_seed(0))
    given = get_task("av_continue", layout.num_segments).given
    seen: list[tuple[int, int, AV, AV]] = []
    out = generate_latents(tiny_model, clean, given, layout, SamplingConfig(steps=3, sampler="ddim", order=order),
                           generator=torch.Generator().manual_seed(1),
                           callback=lambda run, step, x, x0: seen.append((run, step, x, x0)))
    runs = order_runs(order) or (None,)
    assert [(run, step) for run, step, _, _ in seen] == [(r, s) for r in range(len(runs)) for s in range(3)]
    generated = layout.cells_to_latents(~given[None])
    for modality in (VIDEO, AUDIO):
        last = max(i for i, (run, step, _, _) in enumerate(seen) if step == 2 and runs[run] in (None, modality))
        mask = generated[modality].expand_as(out[modality])
        assert torch.allclose(seen[last][3][modality][mask], out[modality][mask], atol=1e-5)
        assert torch.equal(seen[last][2][modality][mask], out[modality][mask])
