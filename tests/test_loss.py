import math

import pytest
import torch

from avdit.diffusion import (DEFAULT_SCHEDULE, LossWeighting, diffusion_loss, parse_loss_weighting, predict_x0,
                            q_sample, reduce_loss)
from avdit.latents import AV
from tests.conftest import random_latents


def test_loss_is_the_squared_noise_error_and_zero_on_clean_cells(tiny_model, generator):
    layout = tiny_model.config.layout
    x0 = random_latents(tiny_model, 2, generator)
    t = torch.randint(1, 1001, (2, 2, 5), generator=generator)
    t[0, 0, 1] = 0  # video segment 1 of example 0 is clean
    t[1, 1, :] = 0  # all audio of example 1 is clean
    seed = 11
    per_element = diffusion_loss(tiny_model, x0, t, layout, generator=torch.Generator().manual_seed(seed))
    # recompute independently: same noise draw order (video, then audio)
    g = torch.Generator().manual_seed(seed)
    noise = x0.map(lambda p: torch.randn(p.shape, generator=g))
    levels = layout.cells_to_latents(t)
    z = x0.map(lambda x, lv, e: q_sample(x, lv, e), levels, noise)
    eps = tiny_model(z, t)
    expected = eps.map(lambda p, e, lv: (p - e) ** 2 * (lv > 0), noise, levels)
    for a, b in zip(per_element, expected):
        torch.testing.assert_close(a, b)
    assert bool((per_element.video[0, :, 1] == 0).all()) and bool((per_element.audio[1] == 0).all())
    assert bool((per_element.video[0, :, 0] > 0).any())


def test_reduction_averages_over_the_elements_that_carry_loss(tiny_model):
    layout = tiny_model.config.layout
    per_element = AV(torch.ones(2, *tiny_model.video_shape), torch.full((2, *tiny_model.audio_shape), 3.0))
    t = torch.ones(2, 2, 5, dtype=torch.long)
    t[1, 1] = 0  # example 1: audio clean, so its audio elements must not count
    per_element.audio[1] = 0
    n_video, n_audio = per_element.video[0].numel(), per_element.audio[0].numel()
    loss = reduce_loss(per_element, t, layout)
    expected_0 = (n_video * 1 + n_audio * 3) / (n_video + n_audio)
    torch.testing.assert_close(loss, torch.tensor([expected_0, 1.0]))


def test_weights_follow_the_snr_of_each_level():
    t = torch.tensor([[[1, 100, 300, 999, 500]] * 2])  # (1, 2, 5)
    min_snr, trunc_snr = parse_loss_weighting("min-snr-1")(t), parse_loss_weighting("trunc-snr-50")(t)
    for j, level in enumerate(t[0, 0].tolist()):
        # alpha_bar from the betas, independently of the schedule object
        alpha_bar = math.prod(1 - (1e-4 + (0.02 - 1e-4) * s / 999) for s in range(level))
        snr = alpha_bar / (1 - alpha_bar)
        assert min_snr[0, 0, j].item() == pytest.approx(min(snr, 1.0) / snr, rel=1e-5)
        assert trunc_snr[0, 1, j].item() == pytest.approx(min(max(1 / snr, 1.0), 50.0), rel=1e-5)
        assert parse_loss_weighting("v")(t)[0, 0, j].item() == pytest.approx(1 + 1 / snr, rel=1e-5)
    assert min_snr[0, 0, 3] == pytest.approx(1.0) and min_snr[0, 0, 0] < 1e-3  # noisy: 1; nearly clean: ~0
    assert trunc_snr[0, 0, 0] == 1.0 and trunc_snr[0, 0, 3] == 50.0  # nearly clean: 1; noisiest: the cap
    assert bool((parse_loss_weighting("eps")(t) == 1).all())  # the paper's loss


def test_weighted_reduction_scales_each_cell_and_keeps_the_count(tiny_model):
    layout = tiny_model.config.layout
    per_element = AV(torch.ones(1, *tiny_model.video_shape), torch.ones(1, *tiny_model.audio_shape))
    t = torch.full((1, 2, 5), 999, dtype=torch.long)  # SNR << 1: weight 1 ...
    t[0, 1] = 1  # ... except all audio, nearly clean
    weighting = LossWeighting("min-snr", 2.0)
    weight_audio = weighting(t)[0, 1, 0].item()
    n_video, n_audio = per_element.video.numel(), per_element.audio.numel()
    expected = (n_video + weight_audio * n_audio) / (n_video + n_audio)
    torch.testing.assert_close(reduce_loss(per_element, t, layout, weighting), torch.tensor([expected]))


@pytest.mark.parametrize("spec", ["min-snr-0", "min-snr-x", "trunc-snr-0.5", "snr", ""])
def test_unknown_loss_weighting_is_refused(spec):
    with pytest.raises(ValueError, match="loss weighting"):
        parse_loss_weighting(spec)
    assert parse_loss_weighting("min-snr-5") == LossWeighting("min-snr", 5.0)


def test_a_perfect_noise_predictor_has_zero_loss(tiny_model, generator):
    layout = tiny_model.config.layout
    x0 = random_latents(tiny_model, 2, generator)
    t = torch.randint(1, 1001, (2, 2, 5), generator=generator)

    def oracle(z, levels, self_cond):  # knows x0, so it recovers the noise exactly
        a = layout.cells_to_latents(levels).map(lambda lv: DEFAULT_SCHEDULE.alpha_bar(lv))
        return z.map(lambda zi, ai, xi: (zi - ai.sqrt() * xi) / (1 - ai).sqrt(), a, x0)

    loss = reduce_loss(diffusion_loss(oracle, x0, t, layout, generator=generator), t, layout)
    assert loss.max() < 1e-6


def test_self_conditioning_feeds_an_x0_estimate_to_the_chosen_fraction(tiny_model, generator):
    layout = tiny_model.config.layout
    x0 = random_latents(tiny_model, 400, generator)
    t = torch.randint(1, 1001, (400, 2, 5), generator=generator)
    calls = []

    def model(z, levels, self_cond):
        calls.append((z, self_cond))
        return tiny_model(z, levels)

    diffusion_loss(model, x0, t, layout, generator=generator, self_condition_rate=0.9)
    (z, first), (_, second) = calls
    assert bool((first.video == 0).all())  # the estimate comes from a pass without self-conditioning
    used = second.video.flatten(1).abs().sum(1) > 0  # (B,)
    assert abs(used.float().mean().item() - 0.9) < 0.05
    levels = layout.cells_to_latents(t)
    estimate = predict_x0(z.video, levels.video, tiny_model(z, t).video)
    torch.testing.assert_close(second.video[used], estimate[used])


def test_a_v_predicting_model_trained_with_v_weighting_minimises_the_v_error(generator):
    """prediction="v": the head's output is v = sqrt(a) eps - sqrt(1 - a) x0, turned into eps by the wrapper; the
    "v" weighting then makes the loss exactly the MSE between the head's output and v."""
    from avdit.diffusion import EpsDenoiser
    from avdit.model import AVDiT, get_preset
    from tests.conftest import randomize

    v_model = randomize(AVDiT(get_preset("bt-tiny", prediction="v")))  # returns the raw head output, v
    layout = v_model.config.layout
    x0 = random_latents(v_model, 2, generator)
    t = torch.randint(1, 1001, (2, 2, 5), generator=generator)
    t[0, 1, 2] = 1000
    noise = x0.map(lambda p: torch.randn(p.shape, generator=generator))
    a = layout.cells_to_latents(t).map(lambda lv: DEFAULT_SCHEDULE.alpha_bar(lv))
    z = x0.map(lambda xi, ai, ei: ai.sqrt() * xi + (1 - ai).sqrt() * ei, a, noise)
    with torch.no_grad():
        v, eps = v_model(z, t), EpsDenoiser(v_model, "v", DEFAULT_SCHEDULE, layout)(z, t)
        for e, vi, zi, ai in zip(eps, v, z, a):
            torch.testing.assert_close(e, ai.sqrt() * vi + (1 - ai).sqrt() * zi, rtol=1e-5, atol=1e-6)
        per_element = diffusion_loss(v_model, x0, t, layout, noise=noise)
        loss = reduce_loss(per_element, t, layout, parse_loss_weighting("v"))
        v_target = x0.map(lambda xi, ai, ei: ai.sqrt() * ei - (1 - ai).sqrt() * xi, a, noise)
        v_mse = [torch.cat([((vv - tv) ** 2)[b].flatten() for vv, tv in zip(v, v_target)]).mean() for b in range(2)]
    torch.testing.assert_close(loss, torch.stack(v_mse), rtol=1e-4, atol=0)
