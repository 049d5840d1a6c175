import json

import numpy as np
import pytest
import torch

from avdit.codecs.audio import AudioCodecConfig
from avdit.codecs.interface import AudioCodec, CodecError, CodecPair, VideoCodec, load_codec, load_codecs, save_codec
from avdit.codecs.video import VideoCodecConfig
from avdit.codecs.losses import multi_resolution_stft, ssim
from avdit.codecs.shards import encode_dataset, load_shards
from avdit.train.codecs import CodecTrainSettings, train_codec
from avdit.data import bouncing_tones as bt

from tests.conftest import TINY_AUDIO_CODEC as TINY_AUDIO
from tests.conftest import TINY_VIDEO_CODEC as TINY_VIDEO
from tests.conftest import tiny_codecs


@pytest.fixture
def pair():
    return tiny_codecs()


def bt_batch(n=2, seed=0):
    clips = [bt.make_clip(seed, i) for i in range(n)]
    return (torch.from_numpy(np.stack([c.video for c in clips])), torch.from_numpy(np.stack([c.audio for c in clips])))


@pytest.mark.parametrize("frames, seconds_per_segment", [(9, 0.5), (17, 0.5), (33, 0.5)])
def test_latent_shapes_and_segments_follow_the_codecs(frames, seconds_per_segment):
    pair = CodecPair(VideoCodec(TINY_VIDEO), AudioCodec(TINY_AUDIO), frames=frames, size=(64, 64))
    layout = pair.layout
    video = torch.zeros(1, frames, 64, 64, 3, dtype=torch.uint8)
    audio = torch.zeros(1, layout.num_samples)
    with torch.no_grad():
        latents = pair.encode(video, audio)
    assert latents.video.shape == (1, 4, 1 + (frames - 1) // 4, 8, 8)
    assert latents.audio.shape == (1, 4, layout.num_samples // 400)
    assert pair.video.latents_per_second == 2 and pair.audio.latents_per_second == 40
    # segment 0 is the first frame (0.125 s = 5 audio latents), then one latent frame (20 audio latents) each
    assert layout.num_segments == 1 + (frames - 1) // 4
    counts = [layout.audio_segments.count(n) for n in range(layout.num_segments)]
    assert counts == [5] + [int(40 * seconds_per_segment)] * (layout.num_segments - 1)


def test_video_encoder_is_causal(pair):
    video, _ = bt_batch(1)
    changed = video.clone()
    changed[:, 9] = 255 - changed[:, 9]  # frame 9 belongs to latent frame 3 (frames 9-12)
    with torch.no_grad():
        a, b = pair.video.encode(video), pair.video.encode(changed)
    assert torch.equal(a[:, :, :3], b[:, :, :3])
    assert not torch.equal(a[:, :, 3], b[:, :, 3])


def test_normalisation_statistics_and_their_inverse(pair):
    video, audio = bt_batch(4)
    with torch.no_grad():
        raw = pair.video.net.encoder(pair.video.to_pixels(video))
        pair.video.set_statistics(raw)
        z = pair.video.encode(video)
        flat = z.transpose(0, 1).reshape(z.shape[1], -1)
        torch.testing.assert_close(flat.mean(1), torch.zeros(4), atol=1e-5, rtol=0)
        torch.testing.assert_close(flat.std(1), torch.ones(4), atol=1e-4, rtol=0)
        # decode undoes the normalisation: the same as the raw decoder on the raw latents
        torch.testing.assert_close(pair.video.denormalise(z), raw, atol=1e-5, rtol=1e-5)
        direct = pair.video.from_pixels(pair.video.net.decoder(raw))
        assert (pair.video.decode(z).int() - direct.int()).abs().max() <= 1  # float rounding at a .5 boundary


def test_round_trip_shapes_dtypes_and_save_load(pair, tmp_path):
    video, audio = bt_batch(2)
    with torch.no_grad():
        pair.audio.set_statistics(pair.audio.net.encode(audio))
        latents = pair.encode(video, audio)
        out_video, out_audio = pair.decode(latents)
    assert out_video.shape == video.shape and out_video.dtype == torch.uint8
    assert out_audio.shape == audio.shape and out_audio.dtype == torch.float32 and out_audio.abs().max() <= 1
    pair.save(tmp_path)
    loaded = load_codecs(tmp_path)
    with torch.no_grad():
        again = loaded.encode(video, audio)
    assert torch.equal(again.video, latents.video) and torch.equal(again.audio, latents.audio)
    assert json.loads((tmp_path / "video.json").read_text())["fps"] == 8


def test_wrong_inputs_and_folders_are_refused(pair, tmp_path):
    video, audio = bt_batch(1)
    with pytest.raises(CodecError, match=r"video must be \(B, 17, 64, 64, 3\) at 8 fps"):
        pair.encode(video[:, :16], audio)
    with pytest.raises(CodecError, match=r"audio must be \(B, 34000\) at 16000 Hz"):
        pair.encode(video, audio[:, :32000])
    with pytest.raises(CodecError, match="1 \\+ 4k frames"):
        pair.video.encode(video[:, :16])
    with pytest.raises(CodecError, match="multiple of 8"):
        pair.video.encode(torch.zeros(1, 17, 60, 64, 3, dtype=torch.uint8))
    with pytest.raises(CodecError, match="mono"):
        pair.audio.encode(torch.zeros(1, 2, 34000))
    with pytest.raises(CodecError, match=r"audio latents must be \(B, 4, T\)"):
        pair.audio.decode(torch.zeros(1, 16, 85))
    with pytest.raises(CodecError, match="video.json not found"):
        load_codec(tmp_path, "video")
    with pytest.raises(CodecError, match="cannot cut.*segment 0 .* holds no audio latent"):  # 0.25 s latents
        CodecPair(VideoCodec(TINY_VIDEO), AudioCodec(AudioCodecConfig(fold=8, widths=(8, 8, 8), strides=(5, 100))),
                  frames=17, size=(64, 64))


def test_losses_are_zero_on_identical_inputs_and_grow_with_error():
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert ssim(x, x + 0.3 * torch.randn_like(x)).item() < 0.9
    wave = torch.sin(torch.arange(16000) / 16000 * 2 * np.pi * 440)[None]
    assert multi_resolution_stft(wave, wave).item() < 1e-4
    assert multi_resolution_stft(wave * 0.5, wave).item() > 0.1


def test_train_codec_writes_samples_checkpoints_resumes_and_exports(tmp_path, monkeypatch):
    import avdit.train.codecs as train_module

    monkeypatch.setattr(train_module, "AudioCodecConfig", lambda **kw: AudioCodecConfig(widths=(16, 16, 16), **kw))
    settings = CodecTrainSettings(kind="audio", steps=2, batch_size=2, sample_every=2, checkpoint_every=1,
                                  stats_clips=4)
    train_codec(settings, tmp_path, progress=False)
    state = torch.load(tmp_path / "audio_state.pt", weights_only=True)
    assert state["step"] == 2 and (tmp_path / "samples" / "audio_step_000002.mp4").exists()
    result = train_codec(CodecTrainSettings(**{**settings.__dict__, "steps": 3}), tmp_path, progress=False)
    assert result["steps_done"] == 3 and torch.load(tmp_path / "audio_state.pt", weights_only=True)["step"] == 3
    codec = load_codec(tmp_path, "audio")
    assert codec.latent_std.min() > 0 and not torch.equal(codec.latent_std, torch.ones(16))
    with pytest.raises(ValueError, match=r"other settings \(batch_size: 2 there, 4 now\)"):
        train_codec(CodecTrainSettings(**{**settings.__dict__, "batch_size": 4}), tmp_path, progress=False)


def test_encode_writes_shards_that_load_back(pair, tmp_path):
    pair.save(tmp_path / "codecs")
    index = encode_dataset("bouncing-tones", pair, tmp_path / "codecs", tmp_path / "shards", num=5, shard_size=2,
                           batch_size=2, progress=False)
    assert [s["clips"] for s in index["shards"]] == [2, 2, 1]
    latents, loaded_index = load_shards(tmp_path / "shards")
    assert latents.video.shape == (5, 4, 5, 8, 8) and latents.audio.shape == (5, 4, 85)
    video, audio = bt_batch(2)
    with torch.no_grad():
        direct = pair.encode(video, audio)
    torch.testing.assert_close(latents.video[:2], direct.video)
    assert loaded_index["codec_digest"] == index["codec_digest"]
    with pytest.raises(ValueError, match="num="):
        encode_dataset("bouncing-tones", pair, tmp_path / "codecs", tmp_path / "s2", progress=False)


def test_encode_resumes_its_own_shards_and_refuses_any_others(pair, tmp_path):
    """A rerun of the same encode keeps its shards; other codecs, data or counts into that folder are refused, so
    latents of two codecs never sit under one index (and the trainer's digest check cannot be fooled)."""
    pair.save(tmp_path / "codecs")
    tiny_codecs(seed=1).save(tmp_path / "other")
    shards = tmp_path / "shards"
    encode_dataset("bouncing-tones", pair, tmp_path / "codecs", shards, num=4, shard_size=2, progress=False)
    first = (shards / "shard_00000.safetensors").stat().st_mtime_ns
    (shards / "shard_00001.safetensors").unlink()  # as if killed before the second shard
    encode_dataset("bouncing-tones", pair, tmp_path / "codecs", shards, num=4, shard_size=2, progress=False)
    assert (shards / "shard_00000.safetensors").stat().st_mtime_ns == first  # kept, not re-encoded
    assert load_shards(shards)[0].video.shape[0] == 4
    with pytest.raises(ValueError, match="made otherwise.*codec_digest"):
        encode_dataset("bouncing-tones", tiny_codecs(seed=1), tmp_path / "other", shards, num=4, shard_size=2,
                       progress=False)
    with pytest.raises(ValueError, match="made otherwise.*clips: 4 there, 6 now"):
        encode_dataset("bouncing-tones", pair, tmp_path / "codecs", shards, num=6, shard_size=2, progress=False)
    (shards / "index.json").unlink()
    with pytest.raises(ValueError, match="without an index.json"):
        encode_dataset("bouncing-tones", pair, tmp_path / "codecs", shards, num=4, shard_size=2, progress=False)


def test_cli_roundtrip_and_encode(pair, tmp_path, capsys):
    from avdit.cli import main
    from avdit.media import probe, write_mp4

    pair.save(tmp_path / "codecs")
    clip = bt.make_clip(0, 0)
    write_mp4(tmp_path / "in.mp4", clip.video, clip.audio, 8, 16000)
    assert main(["codec", "roundtrip", str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4"), "--codecs",
                 str(tmp_path / "codecs")]) == 0
    info = probe(tmp_path / "out.mp4")
    assert info.has_video and info.has_audio and abs(info.duration - 2.125) < 0.05
    assert main(["encode", "bouncing-tones", "--num", "3", "--codecs", str(tmp_path / "codecs"), "--out",
                 str(tmp_path / "shards")]) == 0
    assert "3 clips in 1 shards" in capsys.readouterr().out
    assert main(["codec", "roundtrip", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4"), "--codecs",
                 str(tmp_path / "codecs")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_bf16_codec_training_runs_the_network_in_bf16_and_the_loss_in_fp32(pair):
    from avdit.train.codecs import _forward

    video, audio = bt_batch()
    for codec, batch in ((pair.video, {"video": video}), (pair.audio, {"audio": audio})):
        seen = []
        hook = codec.net.encoder.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
        recon32, target, latent32, (loss32, _) = _forward(codec, batch, "fp32")
        recon16, _, latent16, (loss16, _) = _forward(codec, batch, "bf16")
        hook.remove()
        assert seen == [torch.float32, torch.bfloat16]
        assert recon16.dtype == latent16.dtype == loss16.dtype == torch.float32
        assert loss16.item() == pytest.approx(loss32.item(), rel=0.05)  # the same numbers to bf16 precision
        torch.testing.assert_close(recon16, recon32, atol=0.05 * recon32.abs().max().item(), rtol=0)
    with pytest.raises(ValueError, match="precision must be fp32 or bf16"):
        CodecTrainSettings(kind="video", precision="fp16")


def test_decoder_phase_trains_the_decoder_alone_and_keeps_the_latents_and_their_digest(tmp_path, monkeypatch):
    import avdit.train.codecs as train_module
    from avdit.codecs.digest import codec_digest, codec_digest_matches

    monkeypatch.setattr(train_module, "AudioCodecConfig", lambda **kw: AudioCodecConfig(widths=(16, 16, 16), **kw))
    settings = CodecTrainSettings(kind="audio", steps=2, batch_size=2, sample_every=10, checkpoint_every=10,
                                  stats_clips=4)
    train_codec(settings, tmp_path / "run", progress=False)
    before = load_codec(tmp_path / "run", "audio")
    save_codec(tiny_codecs().video, tmp_path / "run")  # codec_digest reads a folder with both codecs
    digest = codec_digest(tmp_path / "run")
    phased = CodecTrainSettings(**{**settings.__dict__, "decoder_steps": 2})
    result = train_codec(phased, tmp_path / "run", progress=False)  # resumes into the decoder phase
    after = load_codec(tmp_path / "run", "audio")
    assert result["steps_done"] == 4
    for name, weight in before.net.state_dict().items():
        assert torch.equal(weight, after.net.state_dict()[name]) == (not name.startswith("decoder.")), name
    torch.testing.assert_close(after.latent_mean, before.latent_mean)
    _, audio = bt_batch()
    with torch.no_grad():
        torch.testing.assert_close(after.encode(audio), before.encode(audio))
    assert codec_digest(tmp_path / "run") == digest  # latents and models made with the codec stay valid
    assert codec_digest_matches(digest, tmp_path / "run") and not codec_digest_matches("0" * 16, tmp_path / "run")
    with pytest.raises(ValueError, match="resume with steps=2"):
        train_codec(CodecTrainSettings(**{**phased.__dict__, "steps": 3}), tmp_path / "run", progress=False)


def test_decoder_phase_learning_rate_restarts_at_decoder_lr_and_decays_by_cosine():
    from avdit.train.codecs import _lr

    settings = CodecTrainSettings(kind="video", steps=10, warmup=2, lr=2e-3, decoder_steps=4, decoder_lr=1e-3)
    assert _lr(9, settings) < 1e-4
    assert [_lr(s, settings) for s in range(10, 14)] == pytest.approx([1e-3 * 0.5 * (1 + np.cos(np.pi * i / 4))
                                                                      for i in range(4)])


def test_sharpen_head_starts_as_the_identity_and_keeps_the_decoder_causal():
    from avdit.codecs.video import VideoAutoencoder

    torch.manual_seed(0)
    plain = VideoAutoencoder(TINY_VIDEO)
    sharp = VideoAutoencoder(VideoCodecConfig(**{**TINY_VIDEO.to_dict(), "widths": TINY_VIDEO.widths, "sharpen_width": 4}))
    missing, _ = sharp.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(".sharpen." in name for name in missing)
    z = torch.randn(2, 4, 3, 8, 8)  # (B, C, 1 + k, h, w)
    with torch.no_grad():
        torch.testing.assert_close(sharp.decoder(z), plain.decoder(z))
        torch.nn.init.normal_(sharp.decoder.sharpen.net[-1].weight)  # trained: frame j still sees latents <= its own
        later = z.clone()
        later[:, :, 2] += 1.0
        a, b = sharp.decoder(z), sharp.decoder(later)
    assert torch.equal(a[:, :, :5], b[:, :, :5]) and not torch.equal(a[:, :, 5:], b[:, :, 5:])


def test_video_decoder_phase_adds_the_sharpen_head_and_exports_it(tmp_path, monkeypatch):
    import avdit.train.codecs as train_module

    monkeypatch.setattr(train_module, "VideoCodecConfig",
                        lambda **kw: VideoCodecConfig(**{"widths": (16, 32), "latent_channels": 4, **kw}))
    settings = CodecTrainSettings(kind="video", steps=1, batch_size=2, sample_every=10, checkpoint_every=10,
                                  stats_clips=2, decoder_steps=1, sharpen_width=4)
    train_codec(settings, tmp_path, progress=False)
    state = torch.load(tmp_path / "video_state.pt", weights_only=True)
    assert state["decoder_phase"] and any(".sharpen." in name for name in state["codec"])
    codec = load_codec(tmp_path, "video")
    assert codec.config.sharpen_width == 4 and codec.net.decoder.sharpen.net[-1].weight.abs().sum() > 0
    result = train_codec(CodecTrainSettings(**{**settings.__dict__, "decoder_steps": 2}), tmp_path, progress=False)
    assert result["steps_done"] == 3  # resumed inside the decoder phase, the encoder still frozen
    resumed = load_codec(tmp_path, "video")
    for name, weight in codec.net.state_dict().items():
        assert torch.equal(weight, resumed.net.state_dict()[name]) == (not name.startswith("decoder.")), name
    with pytest.raises(ValueError, match=r"other settings \(sharpen_width: 4 there, 8 now\)"):
        train_codec(CodecTrainSettings(**{**settings.__dict__, "decoder_steps": 2, "sharpen_width": 8}), tmp_path,
                    progress=False)


def test_train_codec_cli_defaults_are_the_recipe_of_each_kind(tmp_path, monkeypatch, capsys):
    import avdit.train.codecs as train_module
    from avdit.cli import main

    seen = []
    monkeypatch.setattr(train_module, "train_codec",
                        lambda settings, out: seen.append(settings) or {"held_out_db": 30.0, "steps_done": settings.steps})
    assert main(["train-codec", "video", "--out", str(tmp_path / "v")]) == 0
    assert main(["train-codec", "audio", "--out", str(tmp_path / "a"), "--steps", "7", "--precision", "bf16"]) == 0
    video, audio = seen
    assert (video.steps, video.lr, video.precision, video.decoder_steps) == (1500, 2e-3, "bf16", 600)
    assert (audio.steps, audio.lr, audio.precision, audio.decoder_steps) == (7, 1e-3, "bf16", 0)
    assert "held-out PSNR 30.00 dB after 1500 steps" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_a_resumed_codec_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, kind):
    """Audio: 4 steps in one go == 2 steps, a kill, then the same command resumed (with 2 loader workers), bit for
    bit. Video: 1 + 1, entering its decoder phase (a new head, a new optimizer) right after resuming."""
    import avdit.train.codecs as train_module

    monkeypatch.setattr(train_module, "AudioCodecConfig", lambda **kw: AudioCodecConfig(widths=(16, 16, 16), **kw))
    monkeypatch.setattr(train_module, "VideoCodecConfig",
                        lambda **kw: VideoCodecConfig(**{"widths": (16, 32), "latent_channels": 4, **kw}))
    half = 1 if kind == "video" else 2
    phases = dict(steps=1, decoder_steps=1, sharpen_width=4) if kind == "video" else dict(steps=4)
    settings = CodecTrainSettings(kind=kind, batch_size=2, sample_every=10, checkpoint_every=half, stats_clips=2,
                                  **phases)
    train_codec(settings, tmp_path / "straight", progress=False)

    real_lr = train_module._lr

    def killed_after_half(step, settings):
        if step == half:
            raise KeyboardInterrupt("killed")
        return real_lr(step, settings)

    monkeypatch.setattr(train_module, "_lr", killed_after_half)
    with pytest.raises(KeyboardInterrupt):
        train_codec(settings, tmp_path / "resumed", progress=False)
    assert torch.load(tmp_path / "resumed" / f"{kind}_state.pt", weights_only=True)["step"] == half
    monkeypatch.setattr(train_module, "_lr", real_lr)
    train_codec(CodecTrainSettings(**{**settings.__dict__, "workers": 2}), tmp_path / "resumed", progress=False)

    straight, resumed = (torch.load(tmp_path / run / f"{kind}_state.pt", weights_only=True)
                         for run in ("straight", "resumed"))
    assert straight["step"] == resumed["step"] == 2 * half and straight["codec"].keys() == resumed["codec"].keys()
    for name, weight in straight["codec"].items():
        assert torch.equal(weight, resumed["codec"][name]), name
    weights = f"{kind}.safetensors"
    assert (tmp_path / "straight" / weights).read_bytes() == (tmp_path / "resumed" / weights).read_bytes()


def test_step_batches_depend_on_the_step_alone():
    from avdit.train.codecs import StepBatches

    clips = list(range(100))
    whole, tail = StepBatches(clips, 3, 0, 0, 4), StepBatches(clips, 3, 0, 2, 4)
    assert len(whole) == 12 and len(tail) == 6
    assert [whole[k] for k in range(6, 12)] == [tail[k] for k in range(6)]  # steps 2-3 from either start
    assert [whole[k] for k in range(3)] != [whole[k] for k in range(3, 6)]  # another batch each step


def test_codec_run_refuses_to_shrink_its_steps(tmp_path, monkeypatch):
    import avdit.train.codecs as train_module

    monkeypatch.setattr(train_module, "AudioCodecConfig", lambda **kw: AudioCodecConfig(widths=(16, 16, 16), **kw))
    settings = CodecTrainSettings(kind="audio", steps=2, batch_size=2, sample_every=10, checkpoint_every=10,
                                  stats_clips=2)
    train_codec(settings, tmp_path, progress=False)
    with pytest.raises(ValueError, match="cannot shrink"):
        train_codec(CodecTrainSettings(**{**settings.__dict__, "steps": 1, "decoder_steps": 1}), tmp_path,
                    progress=False)


@pytest.mark.parametrize("batch", [1, 3])
def test_frame_convolutions_compute_the_3d_convolutions_they_replace(batch):
    """SpaceConv and CausalTimeConv run as 2-D convolutions for speed; with the same weights they give what the
    (1 x 3 x 3) and causal (3 x 1 x 1) Conv3d give, strides included."""
    from avdit.codecs.video import CausalTimeConv, SpaceConv

    torch.manual_seed(0)
    x = torch.randn(batch, 6, 9, 8, 8)  # (B, C, T, H, W)
    for stride in (1, 2):
        space = SpaceConv(6, 5, stride)
        expected = torch.nn.functional.conv3d(x, space.weight, space.bias, space.stride, space.padding)
        torch.testing.assert_close(space(x), expected, atol=1e-5, rtol=1e-5)
        time = CausalTimeConv(6, 5, stride=stride)
        padded = torch.cat([x[:, :, :1], x[:, :, :1], x], 2)  # two copies of the first frame: causal
        expected = torch.nn.functional.conv3d(padded, time.conv.weight, time.conv.bias, time.conv.stride)
        torch.testing.assert_close(time(x), expected, atol=1e-5, rtol=1e-5)
        assert time(x).shape == (batch, 5, 1 + (9 - 1) // stride, 8, 8)


@pytest.mark.parametrize("batch", [1, 3])
def test_audio_convolutions_compute_the_1d_convolutions_they_replace(batch):
    """The audio codec's Conv1d and ConvTranspose1d run as channels-last 2-D convolutions for speed; with the same
    weights (and state dict) they give what torch's 1-D ones give, dilation, stride and output padding included."""
    from avdit.codecs.audio import Conv1d, ConvTranspose1d

    torch.manual_seed(0)
    x = torch.randn(batch, 6, 50)  # (B, C, L)
    for kernel, stride, dilation, padding in ((7, 1, 3, 9), (10, 5, 1, 3), (1, 1, 1, 0)):
        conv = Conv1d(6, 5, kernel, stride=stride, dilation=dilation, padding=padding)
        plain = torch.nn.Conv1d(6, 5, kernel, stride=stride, dilation=dilation, padding=padding)
        plain.load_state_dict(conv.state_dict())
        torch.testing.assert_close(conv(x), plain(x), atol=1e-5, rtol=1e-5)
    for kernel, stride in ((10, 5), (20, 10)):
        up = ConvTranspose1d(6, 5, kernel, stride=stride, padding=(stride + 1) // 2, output_padding=stride % 2)
        plain = torch.nn.ConvTranspose1d(6, 5, kernel, stride=stride, padding=(stride + 1) // 2,
                                         output_padding=stride % 2)
        plain.load_state_dict(up.state_dict())
        torch.testing.assert_close(up(x), plain(x), atol=1e-5, rtol=1e-5)
        assert up(x).shape == (batch, 5, 50 * stride)


def test_codecs_give_a_batch_what_they_give_its_clips_one_by_one(pair, monkeypatch):
    """A batch runs in parts of CPU_BATCH clips and the sharpening head in parts of frames: the clips of a batch
    come out as they do alone."""
    from avdit.codecs import codec as codec_module
    from avdit.codecs import video as video_module
    from avdit.codecs.video import SharpenHead

    monkeypatch.setattr(codec_module, "CPU_BATCH", 2)
    monkeypatch.setattr(video_module, "FRAMES_AT_ONCE", 3)
    video, audio = bt_batch(5)
    with torch.no_grad():
        latents = pair.encode(video, audio)
        alone = [pair.encode(video[i:i + 1], audio[i:i + 1]) for i in range(5)]
        torch.testing.assert_close(latents.video, torch.cat([a.video for a in alone]), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(latents.audio, torch.cat([a.audio for a in alone]), atol=1e-5, rtol=1e-5)
        v, a = pair.decode(latents)
        for i in range(5):
            vi, ai = pair.decode(latents.map(lambda p: p[i:i + 1]))
            assert (v[i:i + 1].int() - vi.int()).abs().max() <= 1
            torch.testing.assert_close(a[i:i + 1], ai, atol=1e-5, rtol=1e-5)
        head = SharpenHead(4)
        torch.nn.init.normal_(head.net[-1].weight)
        frames = torch.randn(2, 3, 5, 16, 16)  # (B, 3, T, H, W): 10 frames, in parts of 3
        whole = head.net(frames.permute(0, 2, 1, 3, 4).reshape(10, 3, 16, 16)).reshape(2, 5, 3, 16, 16)
        torch.testing.assert_close(head(frames), frames + whole.permute(0, 2, 1, 3, 4), atol=1e-5, rtol=1e-5)


def test_a_modality_not_given_is_not_encoded(pair, monkeypatch):
    """CodecPair.encode with None for a modality: zeros of its latent shape, without running its encoder; the given
    modality's latents are those of a full encode."""
    video, audio = bt_batch(2)
    with torch.no_grad():
        both = pair.encode(video, audio)
        monkeypatch.setattr(pair.video.net, "encoder", None)  # would fail if called
        audio_only = pair.encode(None, audio)
        nothing = pair.encode(None, None, batch=3)
    assert torch.equal(audio_only.audio, both.audio)
    assert audio_only.video.shape == both.video.shape and not audio_only.video.any()
    assert nothing.video.shape[0] == nothing.audio.shape[0] == 3 and not nothing.video.any()
    with pytest.raises(CodecError, match="as many of each"):
        pair.encode(video, audio[:1])
