"""Error recycling (avdit.train.error_recycling): windows whose carried segment is the model's own estimate."""

import pytest
import torch

from avdit.diffusion.denoiser import eps_denoiser
from avdit.diffusion.schedule import DEFAULT_SCHEDULE
from avdit.latents import AV
from avdit.train.error_recycling import recycle_carried_segment
from tests.conftest import random_latents


def segment_mask(layout, segments: list[int], batch: int) -> AV:
    grid = torch.zeros(batch, 2, layout.num_segments, dtype=torch.bool)
    grid[:, :, segments] = True
    return layout.cells_to_latents(grid)


def test_no_share_gives_the_windows_back_bit_for_bit(tiny_model, generator):
    layout = tiny_model.config.layout
    x0 = random_latents(tiny_model, 4, generator)
    out = recycle_carried_segment(tiny_model, x0, layout, 500, 0.0, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(out, x0))


def test_the_carried_segment_is_the_models_one_pass_estimate_and_the_rest_is_kept(tiny_model, generator):
    layout = tiny_model.config.layout
    x0 = random_latents(tiny_model, 3, generator)
    out = recycle_carried_segment(tiny_model, x0, layout, 300, 1.0, torch.Generator().manual_seed(5))
    # the same draws again, in the order the function takes them: levels, which windows, noise
    g = torch.Generator().manual_seed(5)
    level = torch.randint(1, 301, (3,), generator=g)
    torch.rand(3, generator=g)
    noise = AV(torch.randn(x0.video.shape, generator=g), torch.randn(x0.audio.shape, generator=g))
    t = level[:, None, None].repeat(1, 2, layout.num_segments)
    t[:, :, 0] = 0
    a = layout.cells_to_latents(DEFAULT_SCHEDULE.alpha_bar(t))
    z = AV(*(torch.where(ai == 1, x, ai.sqrt() * x + (1 - ai).sqrt() * n) for x, ai, n in zip(x0, a, noise)))
    with torch.no_grad():
        eps = eps_denoiser(tiny_model, layout, DEFAULT_SCHEDULE)(z, t)
    expected = AV(*((zi - (1 - ai).sqrt() * e) / ai.sqrt() for zi, ai, e in zip(z, a, eps)))
    carried, kept = segment_mask(layout, [1], 3), segment_mask(layout, [0, 2, 3, 4], 3)
    for made, want, clean, c, k in zip(out, expected, x0, carried, kept):
        c, k = c.expand_as(made), k.expand_as(made)
        torch.testing.assert_close(made[c], want[c], atol=0.05, rtol=0.02)  # the pass runs in bf16
        assert not torch.allclose(made[c], clean[c], atol=0.05)  # an estimate, not the clean segment
        assert torch.equal(made[k], clean[k])


def test_a_share_replaces_whole_windows_carried_segment_in_both_modalities(tiny_model, generator):
    layout = tiny_model.config.layout
    x0 = random_latents(tiny_model, 16, generator)
    out = recycle_carried_segment(tiny_model, x0, layout, 1000, 0.5, torch.Generator().manual_seed(2))
    carried = segment_mask(layout, [1], 16)
    changed = []
    for made, clean, c in zip(out, x0, carried):
        differs = (made != clean).flatten(1)  # (B, elements)
        assert not (differs & ~c.expand_as(made).flatten(1)).any()  # nothing outside segment 1
        changed.append(differs.any(1))
    assert torch.equal(changed[0], changed[1])  # video and audio together
    assert 0 < int(changed[0].sum()) < 16


@pytest.mark.parametrize("share, max_level, carried, match", [
    (1.5, 500, 1, "share"), (0.5, 0, 1, "max_level"), (0.5, 1001, 1, "max_level"), (0.5, 500, 0, "carried"),
    (0.5, 500, 5, "carried")])
def test_bad_settings_are_refused_with_what_was_wrong(tiny_model, generator, share, max_level, carried, match):
    x0 = random_latents(tiny_model, 2, generator)
    with pytest.raises(ValueError, match=match):
        recycle_carried_segment(tiny_model, x0, tiny_model.config.layout, max_level, share, generator, carried)
