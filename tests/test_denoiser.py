"""The parameterisation outside the network: golden values from before it moved there, and one schedule."""

import pytest
import torch
from safetensors.torch import load_file

from avdit.diffusion import diffusion_loss, parse_loss_weighting, reduce_loss
from avdit.latents import AV
from avdit.model import AVDiT, get_preset
from avdit.pipeline import Pipeline
from tests.conftest import randomize, random_latents

GOLDEN = "tests/golden/bundled_a2v_ddim_3_steps.safetensors"


def bundled_a2v(pipe: Pipeline) -> tuple[AV, AV]:
    """Two a2v clips from fixed random latents: 3 DDIM steps, seed 0, the default guidance -> (clean, latents)."""
    g = torch.Generator().manual_seed(0)
    model = pipe.model
    clean = AV(torch.randn(2, *model.video_shape, generator=g), torch.randn(2, *model.audio_shape, generator=g))
    return clean, pipe("a2v", latents=clean, num=2, steps=3, seed=0).latents


def test_the_bundled_model_generates_the_latents_it_generated_before():
    """The golden file was written by the code that turned v into eps inside ``AVDiT.forward``."""
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
