import dataclasses

import pytest
import torch

from avdit.latents import AV
from avdit.layout import BOUNCING_TONES
from avdit.model import AVDiT, ConfigError, ShapeError, get_preset
from avdit.model.config import parse_model_overrides
from avdit.model.embeddings import rotate, sinusoidal
from tests.conftest import randomize, random_latents


def grid_of(t_per_example):
    return t_per_example.view(-1, 1, 1).expand(-1, 2, 5).contiguous()


def test_output_shape_equals_input_shape(tiny_model, generator):
    x = random_latents(tiny_model, 3, generator)
    out = tiny_model(x, torch.randint(0, 1001, (3, 2, 5), generator=generator))
    assert out.video.shape == x.video.shape == (3, 8, 5, 8, 8)
    assert out.audio.shape == x.audio.shape == (3, 16, 85)


def test_per_cell_levels_equal_everywhere_match_per_example_levels(tiny_model, generator):
    x = random_latents(tiny_model, 4, generator)
    t = torch.tensor([0, 10, 500, 1000])
    with torch.no_grad():
        per_example, per_cell = tiny_model(x, t), tiny_model(x, grid_of(t))
    for a, b in zip(per_example, per_cell):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_adaln_zero_init_predicts_exactly_zero(generator):
    model = AVDiT(get_preset("bt-tiny"))
    x = random_latents(model, 2, generator)
    out = model(x, torch.randint(0, 1001, (2, 2, 5), generator=generator))
    assert bool((out.video == 0).all()) and bool((out.audio == 0).all())


def test_joint_attention_carries_video_into_audio(tiny_model, generator):
    x = random_latents(tiny_model, 1, generator)
    t = torch.full((1, 2, 5), 300)
    changed = AV(x.video.clone(), x.audio)
    changed.video[0, :, 2] += 1.0  # one video latent frame
    with torch.no_grad():
        a, b = tiny_model(x, t), tiny_model(changed, t)
    assert (a.audio - b.audio).abs().max() > 1e-4


def test_noise_level_of_one_cell_reaches_other_tokens_only_through_attention(tiny_model, generator):
    x = random_latents(tiny_model, 1, generator)
    t = torch.full((1, 2, 5), 300)
    t2 = t.clone()
    t2[0, 1, 3] = 900  # audio segment 3 only
    with torch.no_grad():
        a, b = tiny_model(x, t), tiny_model(x, t2)
    assert (a.audio[..., 45:65] - b.audio[..., 45:65]).abs().max() > 1e-3  # its own tokens, directly
    assert (a.video - b.video).abs().max() > 0  # the rest, through attention


def test_permuting_video_frames_changes_the_output(tiny_model, generator):
    x = random_latents(tiny_model, 1, generator)
    t = torch.full((1, 2, 5), 300)
    permuted = AV(x.video[:, :, [0, 2, 1, 3, 4]], x.audio)
    with torch.no_grad():
        a, b = tiny_model(x, t), tiny_model(permuted, t)
    # equivariance to frame order would return the permuted prediction: it must not
    assert (a.video[:, :, [0, 2, 1, 3, 4]] - b.video).abs().max() > 1e-3
    # and permuting audio in time matters too
    flipped = AV(x.video, x.audio.flip(-1))
    with torch.no_grad():
        c = tiny_model(flipped, t)
    assert (a.audio.flip(-1) - c.audio).abs().max() > 1e-3


def test_video_and_audio_tokens_at_the_same_time_share_their_temporal_position():
    model = AVDiT(get_preset("bt-tiny"))
    half = model.config.width // 2
    video_t = model.position[:80, :half]  # 16 tokens per latent frame
    audio_t = model.position[80:, :half]  # 17 tokens of 0.125 s
    # latent frame 0 spans [0, 0.125) s, as does audio token 0
    torch.testing.assert_close(video_t[0], audio_t[0])
    # latent frame 1 spans [0.125, 0.625) s: centre 0.375 s, the same as audio tokens 1-4 on average
    assert torch.equal(model.token_cell[80:], torch.tensor([5] + [6] * 4 + [7] * 4 + [8] * 4 + [9] * 4))
    assert torch.equal(model.token_cell[:80], torch.arange(5).repeat_interleave(16))


def test_rotary_scores_depend_on_the_time_difference_only(generator):
    q, k = torch.randn(2, 3, 16, generator=generator).unbind()  # 3 tokens, head width 16
    times = torch.tensor([0.0, 2.5, 7.0])

    def scores(shift: float) -> torch.Tensor:
        table = sinusoidal(times + shift, 8)  # (3, 8): the first 8 of 16 dims rotate
        return rotate(q, table) @ rotate(k, table).T  # (3, 3)

    torch.testing.assert_close(scores(0.0), scores(41.3), rtol=1e-5, atol=1e-5)
    assert (scores(0.0) - q @ k.T).abs().max() > 1e-2  # the rotation does change the scores...
    rotated = rotate(q, sinusoidal(times, 8))
    torch.testing.assert_close(rotated[:, 8:], q[:, 8:])  # ...on the rotated dims only,
    torch.testing.assert_close(rotated.norm(dim=-1), q.norm(dim=-1))  # by a rotation,
    torch.testing.assert_close(rotated[0], q[0])  # which is the identity at time 0


def test_time_rope_rotates_video_and_audio_tokens_at_the_same_time_alike(generator):
    plain = randomize(AVDiT(get_preset("bt-tiny"))).eval()
    rope = AVDiT(get_preset("bt-tiny", time_rope=True)).eval()
    rope.load_state_dict(plain.state_dict())  # the same weights: the table is a non-persistent buffer
    assert rope.rope.shape == (80 + 17, 16)  # half of each head (width 64 / 2 heads)
    torch.testing.assert_close(rope.rope[0], rope.rope[80])  # video latent frame 0 and audio token 0
    assert not torch.allclose(rope.rope[0], rope.rope[16])  # latent frames 0 and 1
    assert plain.rope is None
    x = random_latents(plain, 2, generator)
    t = torch.randint(0, 1001, (2, 2, 5), generator=generator)
    with torch.no_grad():
        assert (plain(x, t).audio - rope(x, t).audio).abs().max() > 1e-4


def test_self_conditioning_input_is_used(generator):
    model = randomize(AVDiT(get_preset("bt-tiny", self_condition=True))).eval()
    x = random_latents(model, 2, generator)
    t = torch.full((2, 2, 5), 400)
    with torch.no_grad():
        none, zeros, some = model(x, t), model(x, t, x.map(torch.zeros_like)), model(x, t, x)
    assert torch.equal(none.video, zeros.video)
    assert (none.video - some.video).abs().max() > 1e-4


@pytest.mark.parametrize("time_rope", [False, True])
def test_gradient_checkpointing_gives_the_same_gradients(generator, time_rope):
    config = get_preset("bt-tiny", time_rope=time_rope)
    plain = randomize(AVDiT(config))
    ckpt = AVDiT(dataclasses.replace(config, grad_checkpointing=True))
    ckpt.load_state_dict(plain.state_dict())
    x = random_latents(plain, 2, generator)
    t = torch.randint(1, 1001, (2, 2, 5), generator=generator)
    for model in (plain, ckpt):
        out = model(x, t)
        (out.video.square().mean() + out.audio.square().mean()).backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_bf16_autocast_runs_and_stays_close(tiny_model, generator):
    x = random_latents(tiny_model, 2, generator)
    t = torch.randint(0, 1001, (2, 2, 5), generator=generator)
    with torch.no_grad():
        ref = tiny_model(x, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = tiny_model(x, t)
    assert low.video.dtype == torch.bfloat16
    assert (low.video.float() - ref.video).abs().max() < 0.05 * ref.video.abs().max() + 1e-3


def test_wrong_shapes_are_refused_clearly(tiny_model, generator):
    x = random_latents(tiny_model, 2, generator)
    with pytest.raises(ShapeError, match=r"video latents must be \(B=2, 8, 5, 8, 8\)"):
        tiny_model(AV(x.video[:, :4], x.audio), torch.zeros(2, 2, 5, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"noise levels must be \(2, 2, 5\)"):
        tiny_model(x, torch.zeros(2, 2, 4, dtype=torch.long))


def test_configs_that_break_the_grid_are_refused():
    with pytest.raises(ConfigError, match="straddles a segment boundary"):
        get_preset("bt-tiny", audio_patch=17)
    with pytest.raises(ConfigError, match="not divisible by the video patch"):
        get_preset("bt-tiny", video_patch=3)
    with pytest.raises(ConfigError, match="not divisible by heads"):
        get_preset("bt-tiny", heads=3)
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("bt-huge")
    with pytest.raises(ConfigError, match="prediction must be one of eps, v"):
        get_preset("bt-tiny", prediction="x0")
    with pytest.raises(ConfigError, match=r"time_rope needs a head width \(width / heads = 6\)"):
        get_preset("bt-tiny", width=24, heads=4, time_rope=True)


def test_model_overrides_parse_to_typed_fields_and_refuse_the_rest():
    assert parse_model_overrides("") == {}
    parsed = parse_model_overrides(" video_patch=4, depth=6,mlp_ratio=2.5,grad_checkpointing=True,time_rope=true")
    assert parsed == {"video_patch": 4, "depth": 6, "mlp_ratio": 2.5, "grad_checkpointing": True, "time_rope": True}
    config = get_preset("bt-small", **parsed)
    assert config.num_video_tokens == 5 * 2 * 2 and config.depth == 6  # 8x8 latents in 4x4 patches
    for bad, message in [("layout=1", "KEY one of"), ("depth", "KEY one of"), ("depth=six", "not a valid depth"),
                         ("grad_checkpointing=maybe", "not a valid grad_checkpointing")]:
        with pytest.raises(ConfigError, match=message):
            parse_model_overrides(bad)


def test_preset_sizes_and_config_round_trip():
    assert AVDiT(get_preset("bt-tiny")).num_parameters() < 1_000_000
    assert 2_000_000 <= AVDiT(get_preset("bt-small")).num_parameters() <= 6_000_000
    config = get_preset("bt-small", layout=dataclasses.replace(BOUNCING_TONES, height=32, width=32))
    assert type(config).from_dict(config.to_dict()) == config


def test_paper_preset_has_the_papers_size():
    with torch.device("meta"):
        model = AVDiT(get_preset("paper"))
    assert 400e6 <= model.num_parameters() <= 470e6
    assert model.config.depth == 24 and model.config.width == 1024 and model.config.heads == 16
