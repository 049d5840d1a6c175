"""Pretrained codec adapters, tested with tiny randomly initialised instances of the same classes (no download)."""

import pytest
import torch

from avdit.codecs.interface import CodecError, CodecPair, load_codec, load_codecs, save_codec
from avdit.codecs.adapters import load_pretrained

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(0)
    diffusers.AutoencoderKLCogVideoX(block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1,
                                     norm_num_groups=4).save_pretrained(root / "cogvideox")
    diffusers.AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                               latents_mean=[0.0] * 4, latents_std=[1.0] * 4).save_pretrained(root / "wan")
    config = transformers.EncodecConfig(sampling_rate=16000, audio_channels=1, num_filters=4, hidden_size=8,
                                        upsampling_ratios=[5, 5, 4, 4], num_lstm_layers=1, codebook_size=16,
                                        codebook_dim=8)
    transformers.EncodecModel(config).save_pretrained(root / "encodec")
    return root


@pytest.mark.parametrize("name, cls", [("cogvideox", "AutoencoderKLCogVideoX"), ("wan", "AutoencoderKLWan")])
def test_diffusers_video_autoencoders_behind_the_interface(folders, name, cls):
    codec = load_pretrained("video", cls, folders / name, 8)
    video = torch.randint(0, 256, (1, 9, 16, 16, 3), dtype=torch.uint8)
    with torch.no_grad():
        z = codec.encode(video)
        assert z.shape == (1, 4, 3, 2, 2) == (1, *codec.latent_shape(9, 16, 16))
        out = codec.decode(z)
    assert out.shape == video.shape and out.dtype == torch.uint8
    with torch.no_grad():  # the posterior mode: encoding is deterministic
        assert torch.equal(codec.encode(video), z)


def test_encodec_audio_behind_the_interface_and_paired(folders, tmp_path):
    audio_codec = load_pretrained("audio", "EncodecModel", folders / "encodec", 16000)
    assert audio_codec.config.hop == 400 and audio_codec.latents_per_second == 40
    video_codec = load_pretrained("video", "AutoencoderKLCogVideoX", folders / "cogvideox", 8)
    pair = CodecPair(video_codec, audio_codec, frames=9, size=(16, 16))
    video = torch.randint(0, 256, (2, 9, 16, 16, 3), dtype=torch.uint8)
    audio = torch.rand(2, pair.layout.num_samples) * 2 - 1
    with torch.no_grad():
        audio_codec.set_statistics(audio_codec.net.encode(audio))
        latents = pair.encode(video, audio)
        assert latents.audio.shape == (2, 8, 45)
        flat = latents.audio.transpose(0, 1).reshape(8, -1)
        assert flat.mean(1).abs().max() < 1e-4
        out_video, out_audio = pair.decode(latents)
    assert out_audio.shape == audio.shape
    # saving keeps only the statistics and where the model lives
    pair.save(tmp_path)
    assert (tmp_path / "audio.safetensors").stat().st_size < 1000
    loaded = load_codecs(tmp_path)
    torch.testing.assert_close(loaded.audio.latent_std, audio_codec.latent_std)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(video, audio).audio, latents.audio)


def test_missing_or_mismatched_pretrained_folders_are_clear_errors(folders, tmp_path):
    with pytest.raises(CodecError, match="no config.json of a AutoencoderKLWan.*nothing is downloaded"):
        load_pretrained("video", "AutoencoderKLWan", tmp_path / "nowhere", 8)
    with pytest.raises(CodecError, match="runs at 16000 Hz"):
        load_pretrained("audio", "EncodecModel", folders / "encodec", 24000)
    with pytest.raises(CodecError, match="unknown codec class .AutoencoderTiny. for diffusers"):
        load_pretrained("video", "AutoencoderTiny", folders / "wan", 8)
    codec = load_pretrained("video", "AutoencoderKLWan", folders / "wan", 8)
    save_codec(codec, tmp_path / "saved")
    assert load_codec(tmp_path / "saved", "video").source["class"] == "AutoencoderKLWan"
