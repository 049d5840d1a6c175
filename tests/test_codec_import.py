"""``avdit codec import``: codec folders from tiny random instances of every supported pretrained class (saved with
``save_pretrained``; nothing downloaded), and every class through encode -> train -> generate -> evaluate."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from avdit.cli import main
from avdit.codecs.interface import CodecError, load_codecs
from avdit.codecs.adapters import ExternalAudioConfig, _AudioNet
from avdit.data.datasets import open_dataset
from avdit.layout import ClipLayout
from avdit.model import get_preset

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

TINY = {  # class -> a tiny random instance at 16 kHz (audio), with a few latent channels
    "AutoencoderKLWan": lambda: diffusers.AutoencoderKLWan(
        base_dim=4, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, latents_mean=[0.0] * 4, latents_std=[1.0] * 4),
    "AutoencoderKLCogVideoX": lambda: diffusers.AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=4),
    "AutoencoderKLHunyuanVideo": lambda: diffusers.AutoencoderKLHunyuanVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4),
    "AutoencoderKLLTXVideo": lambda: diffusers.AutoencoderKLLTXVideo(  # 8x time, 32x space
        latent_channels=4, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1)),
    "AutoencoderOobleck": lambda: diffusers.AutoencoderOobleck(  # stereo, Stable Audio Open's hop 2048
        encoder_hidden_size=8, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
        decoder_channels=4, decoder_input_channels=4, audio_channels=2, sampling_rate=16000),
    "EncodecModel": lambda: transformers.EncodecModel(transformers.EncodecConfig(  # hop 400
        sampling_rate=16000, audio_channels=1, num_filters=4, hidden_size=8, upsampling_ratios=[5, 5, 4, 4],
        num_lstm_layers=1, codebook_size=16, codebook_dim=8)),
    "DacModel": lambda: _torch_init(transformers.DacModel(transformers.DacConfig(  # DAC 16 kHz's hop 320
        encoder_hidden_size=2, downsampling_ratios=[2, 4, 5, 8], decoder_hidden_size=16, n_codebooks=2,
        codebook_size=16, codebook_dim=4, sampling_rate=16000))),
}


def _torch_init(model: torch.nn.Module) -> torch.nn.Module:
    """PyTorch's default conv init: DAC's own (std 0.02) shrinks a tiny encoder's latents to ~1e-6."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            module.reset_parameters()
    return model
# (video class, audio class, prepared folder, latent frames, latent side, audio latents): 9 frames at 16x16 in "small",
# 17 at 32x32 (LTX-Video's least: 3 segments of its 8 frames, one 32x32 latent) in "prepared"; 8 fps, 16 kHz
PAIRS = [
    ("AutoencoderKLWan", "EncodecModel", "small", 3, 2, 45),
    ("AutoencoderKLCogVideoX", "DacModel", "small", 3, 2, 57),  # 18000 samples: 56.25 latents, the last padded
    ("AutoencoderKLHunyuanVideo", "AutoencoderOobleck", "small", 3, 2, 9),
    ("AutoencoderKLLTXVideo", "AutoencoderOobleck", "prepared", 3, 1, 17),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions: a second intra-op thread only adds its barriers (tenfold on a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_thread):
    """Tiny models in their save_pretrained folders; Bouncing Tones files prepared at 32x32 (17 frames, 8 fps) and
    at 16x16 (9 frames)."""
    root = tmp_path_factory.mktemp("codec_import")
    torch.manual_seed(0)
    for name, make in TINY.items():
        make().save_pretrained(root / name)
    assert main(["data", "bouncing-tones", str(root / "bt"), "--n", "6"]) == 0
    assert main(["prepare", str(root / "bt"), str(root / "prepared"), "--fps", "8", "--size", "32", "32",
                 "--duration", "2.125", "--test-fraction", "0.34"]) == 0
    assert main(["prepare", str(root / "bt"), str(root / "small"), "--fps", "8", "--size", "16", "16",
                 "--duration", "1.125", "--test-fraction", "0.34"]) == 0
    return root


def _import(world, video: str, audio: str, out, data=None, clips: str = "1") -> int:
    return main(["codec", "import", "--video", f"{video}:{world / video}", "--audio", f"{audio}:{world / audio}",
                 "--data", str(data or world / "prepared"), "--out", str(out), "--clips", clips])


@pytest.mark.parametrize("video, audio, data, latent_frames, side, audio_latents", PAIRS)
def test_an_imported_pair_loads_with_its_strides_and_round_trips(world, tmp_path, video, audio, data, latent_frames,
                                                                  side, audio_latents):
    assert _import(world, video, audio, tmp_path, data=world / data) == 0
    frames, size = (17, 32) if data == "prepared" else (9, 16)
    meta = json.loads((tmp_path / "video.json").read_text())
    assert (meta["frames"], meta["size"], meta["fps"], meta["source"]["class"]) == (frames, [size, size], 8, video)
    assert len(meta["source"]["digest"]) == 16 and meta["statistics"]["clips"] == 1
    assert (tmp_path / "video.safetensors").stat().st_size < 1000  # statistics only: the weights stay where they are
    codecs = load_codecs(tmp_path)
    layout = codecs.layout
    assert (layout.video_latent_frames, layout.video_latent_size, layout.audio_latents) == (
        latent_frames, (side, side), audio_latents)
    clip = open_dataset(world / data, "train")[0]  # the clip the statistics were measured on
    latents = codecs.encode(clip["video"][None], clip["audio"][None])
    assert latents.video.shape == (1, *layout.video_latent_shape(4))
    assert latents.audio.shape == (1, *layout.audio_latent_shape(codecs.audio.config.latent_channels))
    for z in latents:  # normalised by its own statistics: zero mean, unit std per channel
        flat = z.transpose(0, 1).reshape(z.shape[1], -1)
        torch.testing.assert_close(flat.mean(1), torch.zeros(z.shape[1]), atol=1e-4, rtol=0)
        torch.testing.assert_close(flat.std(1), torch.ones(z.shape[1]), atol=1e-3, rtol=0)
    video_out, audio_out = codecs.decode(latents)
    assert video_out.shape == (1, frames, size, size, 3) and video_out.dtype == torch.uint8
    assert audio_out.shape == (1, layout.num_samples)  # the padding of the last audio latent cut off


def test_stereo_codecs_take_mono_twice_and_give_the_mean_of_their_channels():
    net = _AudioNet(torch.nn.Identity(), ExternalAudioConfig(latent_channels=2, hop=1, channels=2),
                    encode=lambda model, x: x, decode=lambda model, z: z)
    audio = torch.randn(3, 50)
    assert torch.equal(net.encode(audio), torch.stack([audio, audio], 1))  # (B, 2, S)
    stereo = torch.randn(3, 2, 50)
    assert torch.allclose(net.decode(stereo), stereo.mean(1))


def test_presets_size_themselves_from_a_32x_codec_and_a_hop_of_2048():
    layout = ClipLayout(fps=8, frames=17, height=32, width=32, sample_rate=16000, video_temporal_stride=8,
                        video_spatial_stride=32, audio_hop=2048)
    config = get_preset("bt-tiny", layout=layout)
    assert (config.video_patch, config.audio_patch) == (1, 1)  # 1x1 latent frames; audio segments of 1 + 8 + 8
    assert [layout.audio_segments.count(n) for n in range(3)] == [1, 8, 8]
    paper = get_preset("paper", layout=ClipLayout(fps=8, frames=17, height=128, width=128, sample_rate=16000,
                                                  video_temporal_stride=8, video_spatial_stride=32, audio_hop=400))
    assert (paper.video_patch, paper.audio_patch, paper.num_video_tokens) == (2, 1, 3 * 2 * 2)


def test_what_does_not_fit_is_refused_with_what_would(world, tmp_path, capsys):
    assert main(["codec", "import", "--video", "AutoencoderTiny:/x", "--audio", f"EncodecModel:{world}/EncodecModel",
                 "--data", str(world / "prepared"), "--out", str(tmp_path / "a")]) == 2
    assert "unknown codec class 'AutoencoderTiny'" in (err := capsys.readouterr().err)
    assert "AutoencoderKLWan (diffusers)" in err and "AutoencoderKLLTXVideo (diffusers)" in err
    assert main(["codec", "import", "--video", f"AutoencoderKLWan:{world}/AutoencoderKLWan", "--audio", "EncodecModel",
                 "--data", str(world / "prepared"), "--out", str(tmp_path / "a")]) == 2
    assert "write CLASS:FOLDER" in capsys.readouterr().err
    assert _import(world, "AutoencoderKLWan", "EncodecModel", tmp_path / "b", data=tmp_path) == 2
    assert "prepared folder" in capsys.readouterr().err
    nowhere = tmp_path / "nowhere"
    assert main(["codec", "import", "--video", f"AutoencoderKLWan:{nowhere}", "--audio",
                 f"EncodecModel:{world}/EncodecModel", "--data", str(world / "prepared"), "--out", str(tmp_path)]) == 2
    assert "no config.json of a AutoencoderKLWan" in capsys.readouterr().err
    transformers.EncodecModel(transformers.EncodecConfig(sampling_rate=24000, audio_channels=1, num_filters=4,
                                                         hidden_size=8, upsampling_ratios=[8, 5, 4, 2],
                                                         num_lstm_layers=1, codebook_size=16)).save_pretrained(
        tmp_path / "EncodecModel")
    assert main(["codec", "import", "--video", f"AutoencoderKLWan:{world}/AutoencoderKLWan", "--audio",
                 f"EncodecModel:{tmp_path}/EncodecModel", "--data", str(world / "prepared"), "--out",
                 str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "EncodecModel runs at 24000 Hz, these clips at 16000 Hz" in err
    assert "avdit prepare VIDEOS OUT --fps 8 --duration 2.125 --size 32 32 --sample-rate 24000" in err
    assert main(["prepare", str(world / "bt"), str(tmp_path / "short"), "--fps", "8", "--size", "40", "40",
                 "--duration", "1.625"]) == 0  # 13 frames: 1 + 4k, but not 1 + 8k
    assert _import(world, "AutoencoderKLCogVideoX", "EncodecModel", tmp_path / "d", data=tmp_path / "short") == 2
    err = capsys.readouterr().err
    assert "AutoencoderKLCogVideoX takes clips of 1 + 8k frames (at 8 fps: 1.125 s (9 frames), 2.125 s" in err
    assert "--fps 8 --duration 2.125 --size 40 40 --sample-rate 16000" in err
    assert _import(world, "AutoencoderKLLTXVideo", "EncodecModel", tmp_path / "e", data=tmp_path / "short") == 2
    assert "sides are multiples of 32" in (err := capsys.readouterr().err) and "--size 32 32" in err


def test_a_codec_folder_refuses_weights_changed_under_it(world, tmp_path):
    shutil.copytree(world / "EncodecModel", tmp_path / "encodec")
    assert main(["codec", "import", "--video", f"AutoencoderKLLTXVideo:{world}/AutoencoderKLLTXVideo", "--audio",
                 f"EncodecModel:{tmp_path}/encodec", "--data", str(world / "prepared"), "--out",
                 str(tmp_path / "codecs"), "--clips", "1"]) == 0
    load_codecs(tmp_path / "codecs")
    torch.manual_seed(1)
    TINY["EncodecModel"]().save_pretrained(tmp_path / "encodec")  # other weights in the same folder
    with pytest.raises(CodecError, match="holds other weights than the EncodecModel.*avdit codec import"):
        load_codecs(tmp_path / "codecs")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "video.json").write_text(json.dumps({"kind": "video", "config": {}}))
    assert _import(world, "AutoencoderKLLTXVideo", "EncodecModel", tmp_path / "own") == 2  # avdit's own: kept


@pytest.mark.parametrize("video, audio, data, latent_frames, side, audio_latents", [
    pytest.param(*pair, marks=[] if pair[0] == "AutoencoderKLLTXVideo" else pytest.mark.slow) for pair in PAIRS])
def test_an_imported_pair_through_encode_train_generate_and_evaluate(world, tmp_path, video, audio, data,
                                                                     latent_frames, side, audio_latents):
    """Every class through every command with --codecs: LTX-Video (8x time, 32x space) and Stable Audio's Oobleck
    (stereo, hop 2048) in the default run, the other pairs with -m slow."""
    codecs, latents, run = tmp_path / "codecs", tmp_path / "latents", tmp_path / "run"
    assert _import(world, video, audio, codecs, data=world / data, clips="2") == 0
    assert main(["encode", str(world / data), "--codecs", str(codecs), "--out", str(latents)]) == 0
    index, pair = json.loads((latents / "index.json").read_text()), load_codecs(codecs)
    channels = pair.video.config.latent_channels, pair.audio.config.latent_channels
    assert (index["video_shape"], index["audio_shape"]) == ([channels[0], latent_frames, side, side],
                                                            [channels[1], audio_latents])
    assert (index["layout"]["video_temporal_stride"], index["layout"]["audio_hop"]) == (
        pair.layout.video_temporal_stride, pair.layout.audio_hop)
    assert main(["train", "--preset", "bt-tiny", "--data", str(latents), "--codecs", str(codecs), "--out", str(run),
                 "--steps", "2", "--batch-size", "2", "--precision", "fp32"]) == 0
    assert main(["generate", "--task", "v2a", "--input", str(world / "bt" / "clip_000000.mp4"), "--checkpoint",
                 str(run), "--codecs", str(codecs), "--steps", "2", "--out", str(tmp_path / "v2a")]) == 0
    assert (tmp_path / "v2a" / "sample_000.mp4").exists()
    assert main(["evaluate", "--checkpoint", str(run), "--codecs", str(codecs), "--data", str(world / data),
                 "--num", "2", "--steps", "2", "--tasks", "v2a", "--no-av-align", "--out", str(tmp_path / "eval")]) == 0
    assert "v2a" in json.loads((tmp_path / "eval" / "results.json").read_text())["rows"]
    shutil.rmtree(codecs)  # the checkpoint names its codecs: without them it says so
    assert main(["generate", "--task", "joint", "--checkpoint", str(run), "--steps", "1",
                 "--out", str(tmp_path / "joint")]) == 2
