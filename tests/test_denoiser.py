"""The parameterisation outside the network: golden values from before it moved there, and one schedule."""

import pytest
import torch
from safetensors.torch import load_file

from avdit.diffusion import (
    DEFAULT_SCHEDULE,
    EpsDenoiser,
    NoiseSchedule,
    SamplingConfig,
    diffusion_loss,
    eps_denoiser,
    eps_from_v,
    generate_latents,
    parse_loss_weighting,
    q_sample,
    reduce_loss,
)
from avdit.latents import AV, randn_like
from avdit.model import AVDiT, get_preset
from avdit.pipeline import Pipeline, Result
from avdit.tasks import get_task
from tests.conftest import random_latents, randomize

GOLDEN = "tests/golden/bundled_a2v_ddim_3_steps.safetensors"


def bundled_a2v(pipe: Pipeline) -> tuple[AV, AV]:
    """Two a2v clips from fixed random latents: 3 DDIM steps, seed 0, the default guidance -> (clean, latents)."""
    g = torch.Generator().manual_seed(0)
    model = pipe.model
    clean = AV(torch.randn(2, *model.video_shape, generator=g), torch.randn(2, *model.audio_shape, generator=g))
    chunks = pipe.stream("a2v", latents=clean, num=2, seed=0, duration=float(pipe.layout.duration),
                         sampling=SamplingConfig(steps=3, sampler="ddim"))
    return clean, Result.join(chunks).latents


def test_the_bundled_model_generates_the_latents_it_generated_before():
    """The golden file was written when this model was bundled (issue 35's error-recycled model; the first golden, of
    issue 24's, by the code that turned v into eps inside ``AVDiT.forward``, which the wrapper test below still
    compares against)."""
    from pathlib import Path

    pipe = Pipeline.from_pretrained(device="cpu")
    assert pipe.model.config.prediction == "v"
    clean, out = bundled_a2v(pipe)
    assert torch.equal(out.audio, clean.audio)  # given
    golden = load_file(Path(__file__).parent.parent / GOLDEN)["video"]  # (2, Cv, Tv, h, w)
    torch.testing.assert_close(out.video, golden, rtol=0, atol=1e-5)


# per-example loss (B,) of a fixed batch, weighted "eps" and "v", written by the code before the wrapper
GOLDEN_LOSS = {("v", "eps"): [0.2689632177352905, 0.743486225605011, 0.45160186290740967],
               ("v", "v"): [1.1547061204910278, 1.1963844299316406, 1.1874085664749146],
               ("eps", "eps"): [1.1453397274017334, 1.1987909078598022, 1.167108416557312],
               ("eps", "v"): [724.6494140625, 54.7041130065918, 3860.13525390625]}


@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_the_loss_of_a_fixed_batch_keeps_its_values(prediction):
    model = randomize(AVDiT(get_preset("bt-tiny", prediction=prediction, self_condition=True)))
    layout = model.config.layout
    g = torch.Generator().manual_seed(5)
    x0 = random_latents(model, 3, g)
    t = torch.randint(1, 1001, (3, 2, 5), generator=g)  # (B, M, N)
    t[0, 0, 1], t[1, 1], t[2, 0, 4] = 0, 0, 1000
    noise = x0.map(lambda p: torch.randn(p.shape, generator=g))
    per_element = diffusion_loss(model, x0, t, layout, noise=noise, self_condition=torch.tensor([True, False, True]))
    for weighting in ("eps", "v"):
        loss = reduce_loss(per_element, t, layout, parse_loss_weighting(weighting))  # (B,)
        assert loss.tolist() == pytest.approx(GOLDEN_LOSS[prediction, weighting], rel=1e-5), weighting


def in_network_v_to_eps(net: AVDiT):
    """The reference: v turned into eps as ``AVDiT.forward`` did, with an alpha_bar table (T + 1,) in float32 built
    from the linear schedule of the model's T, indexed per element."""
    table = NoiseSchedule.linear(net.config.timesteps).alphas_cumprod.float()  # (T + 1,)
    layout = net.config.layout

    def denoise(x: AV, t: torch.Tensor, self_cond: AV | None) -> AV:
        v = net(x, t, self_cond)
        a = layout.cells_to_latents(t).map(lambda level: table[level])
        return v.map(lambda vi, xi, ai: ai.sqrt() * vi.float() + (1 - ai).sqrt() * xi.float(), x, a)

    return denoise


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp2m"])
def test_the_bundled_model_through_the_wrapper_equals_the_in_network_conversion(sampler):
    model = Pipeline.from_pretrained(device="cpu").model
    layout = model.config.layout
    g = torch.Generator().manual_seed(3)
    clean = AV(torch.randn(2, *model.video_shape, generator=g), torch.randn(2, *model.audio_shape, generator=g))
    given = get_task("a2v", layout.num_segments).given
    run = lambda net, prediction: generate_latents(net, clean, given, layout, SamplingConfig(steps=3, sampler=sampler, guidance=1.0, order="together"), prediction=prediction, generator=torch.Generator().manual_seed(0))
    for a, b in zip(run(model, "v"), run(in_network_v_to_eps(model), "eps")):
        assert torch.equal(a, b)


@pytest.fixture
def v_model():
    return randomize(AVDiT(get_preset("bt-tiny", prediction="v"))).eval()


# a linear schedule that stops at beta 0.01: alpha_bar_T = 6e-3, not the default's 4e-5
OTHER = NoiseSchedule.linear(1000, beta_end=0.01)


def test_the_wrapper_turns_v_into_eps_with_the_schedule_it_is_given(v_model, generator):
    layout = v_model.config.layout
    x = random_latents(v_model, 2, generator)
    t = torch.randint(0, 1001, (2, 2, 5), generator=generator)  # (B, M, N)
    with torch.no_grad():
        v = v_model(x, t)
        for schedule in (DEFAULT_SCHEDULE, OTHER):
            eps = EpsDenoiser(v_model, "v", schedule, layout)(x, t)
            a = layout.cells_to_latents(t).map(lambda level: schedule.alpha_bar(level, torch.float64))
            for e, vi, xi, ai in zip(eps, v, x, a):
                torch.testing.assert_close(e.double(), ai.sqrt() * vi + (1 - ai).sqrt() * xi, rtol=1e-5, atol=1e-5)
        default, other = (EpsDenoiser(v_model, "v", s, layout)(x, t) for s in (DEFAULT_SCHEDULE, OTHER))
    assert (default.video - other.video).abs().max() > 1e-2


def test_levels_per_example_equal_levels_per_cell_and_eps_is_passed_through(v_model, tiny_model, generator):
    layout = v_model.config.layout
    x = random_latents(v_model, 3, generator)
    t = torch.tensor([0, 400, 1000])
    with torch.no_grad():
        wrapped = EpsDenoiser(v_model, "v", DEFAULT_SCHEDULE, layout)
        per_example, per_cell = wrapped(x, t), wrapped(x, t.view(-1, 1, 1).expand(-1, 2, 5))
        for a, b in zip(per_example, per_cell):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        grid = t.view(-1, 1, 1).expand(-1, 2, 5)
        for a, b in zip(EpsDenoiser(tiny_model, "eps", OTHER, layout)(x, grid), tiny_model(x, grid)):
            assert torch.equal(a, b)
    assert eps_denoiser(v_model, layout, OTHER).prediction == "v"  # from the network's config
    assert eps_denoiser(lambda x, t, s: x, layout, OTHER).prediction == "eps"  # any plain eps denoiser
    with pytest.raises(ValueError, match="prediction must be one of eps, v"):
        EpsDenoiser(v_model, "x0", OTHER, layout)


def test_the_loss_uses_its_schedule_for_the_networks_parameterisation(v_model, generator):
    """Noising with one schedule and turning v into eps with another would leave a v-model a floor of loss."""
    layout = v_model.config.layout
    x0 = random_latents(v_model, 2, generator)
    t = torch.randint(1, 1001, (2, 2, 5), generator=generator)
    noise = x0.map(lambda p: torch.randn(p.shape, generator=generator))
    levels = layout.cells_to_latents(t)
    with torch.no_grad():
        per_element = diffusion_loss(v_model, x0, t, layout, schedule=OTHER, noise=noise)
        z = x0.map(lambda xi, lv, ei: q_sample(xi, lv, ei, OTHER), levels, noise)
        v = v_model(z, t)
    expected = v.map(lambda vi, zi, lv, ei: (eps_from_v(vi, zi, lv, OTHER) - ei) ** 2, z, levels, noise)
    for a, b in zip(per_element, expected):
        torch.testing.assert_close(a, b)


def test_a_sampler_uses_its_schedule_for_the_networks_parameterisation(v_model, generator):
    """One DDIM step from T to 0 returns the x0 estimate sqrt(a_T) x_T - sqrt(1 - a_T) v of ``schedule``'s a_T."""
    layout = v_model.config.layout
    clean = random_latents(v_model, 2, generator)
    given = get_task("joint", layout.num_segments).given
    out = generate_latents(v_model, clean, given, layout, SamplingConfig(steps=1, sampler="ddim", guidance=0.0, order="together"), schedule=OTHER, generator=torch.Generator().manual_seed(0))
    x_T = randn_like(clean, torch.Generator().manual_seed(0))  # generated cells start as pure noise
    with torch.no_grad():
        v = v_model(x_T, torch.full((2, 2, 5), OTHER.T))
    a_T = OTHER.alphas_cumprod[-1].item()
    for o, xi, vi in zip(out, x_T, v):
        torch.testing.assert_close(o, a_T**0.5 * xi - (1 - a_T) ** 0.5 * vi, rtol=1e-4, atol=1e-4)
