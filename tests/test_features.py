from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from avdit.data import bouncing_tones as bt
from avdit.eval.features import FeatureError
from avdit.eval.features.audioclip import AudioCLIPAudio
from avdit.eval.features.bt_nets import BTAudioNet, BTVideoNet, blank_given
from avdit.eval.features.extractor import audioclip_extractor, bt_extractors, i3d_extractor, vggish_extractor
from avdit.eval.features.i3d import InceptionI3d
from avdit.eval.features.log_mel import LogMel, hertz_to_mel, mel_matrix
from avdit.eval.features.vggish import VGGish
from avdit.layout import BOUNCING_TONES
from avdit.tasks import get_task
from tests.conftest import randomize
from tests.golden.make_audioclip_reference import deterministic_state, reference_audio


def test_mel_bands_are_triangles_peaking_at_their_centres():
    weights = mel_matrix()  # (257, 64)
    assert weights.shape == (257, 64) and (weights >= 0).all() and (weights[0] == 0).all()
    freqs = np.linspace(0, 8000, 257)
    centres = np.linspace(hertz_to_mel(np.array(125.0)), hertz_to_mel(np.array(7500.0)), 66)[1:-1]
    peak_mel = hertz_to_mel(freqs[weights.argmax(axis=0)])
    bin_width = hertz_to_mel(np.array(8000.0)) / 256 * 2  # mel spacing of FFT bins is at most this
    assert np.abs(peak_mel - centres).max() < bin_width


def test_log_mel_of_a_tone_peaks_in_the_band_of_its_frequency():
    sr, f = 16000, 1000.0
    tone = torch.sin(2 * torch.pi * f * torch.arange(16000) / sr)[None]
    mel = LogMel()(tone)  # (1, 98, 64)
    assert mel.shape == (1, 1 + (16000 - 400) // 160, 64)
    band = int(mel[0].mean(0).argmax())
    centres = np.linspace(hertz_to_mel(np.array(125.0)), hertz_to_mel(np.array(7500.0)), 66)[1:-1]
    assert band == int(np.abs(centres - hertz_to_mel(np.array(f))).argmin())


def test_vggish_shapes_batching_and_weights_round_trip(tmp_path):
    net = randomize(VGGish(), std=0.02).eval()
    audio = torch.randn(3, 34000) * 0.1
    with torch.no_grad():
        both = net(audio)
        one = net(audio[1:2])
    assert both.shape == (3, 2, 128)  # two whole 0.96 s examples in 2.125 s
    assert torch.allclose(both[1:2], one, atol=1e-5)
    path = tmp_path / "vggish.safetensors"
    save_file(net.state_dict(), path)
    extractor = vggish_extractor(path)
    assert np.allclose(extractor(audio.numpy()), both.double().numpy(), atol=1e-5)
    with pytest.raises(FeatureError, match="torchvggish"):
        vggish_extractor(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="0.975 s"):
        net(torch.zeros(1, 8000))


def test_vggish_takes_audio_at_any_rate_resampled_to_its_16_khz(tmp_path):
    """Pretrained audio codecs give 24 or 44.1 kHz: the same sound at 44.1 kHz gives VGGish's 16 kHz features."""
    from scipy.signal import resample_poly

    path = tmp_path / "vggish.safetensors"
    save_file(randomize(VGGish(), std=0.02).state_dict(), path)
    extractor = vggish_extractor(path)
    clip = bt.make_clip(0, 1, "test").audio[None]  # (1, 34000) at 16 kHz: plucks, well inside 8 kHz
    at_44k = resample_poly(clip, 441, 160, axis=-1)
    expected, got = extractor(clip, 16000), extractor(at_44k, 44100)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
    assert extractor(at_44k).shape[1] == 6  # read as 16 kHz it would hear 5.9 s of slowed-down sound


def test_i3d_shapes_batching_and_weights_round_trip(tmp_path):
    net = randomize(InceptionI3d(), std=0.02).eval()
    video = torch.randint(0, 256, (2, 17, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        both = net(video)
        one = net(video[1:2])
    assert both.shape == (2, 1, 400)
    assert torch.allclose(both[1:2], one, rtol=1e-4, atol=1e-5)
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(net.state_dict(), path)
    assert np.allclose(i3d_extractor(path)(video.numpy()), both.double().numpy(), rtol=1e-4, atol=1e-5)
    torch.save({"not": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(FeatureError, match="does not hold I3D weights"):
        i3d_extractor(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="T >= 9"):
        net(video[:, :4])


def test_audioclip_head_gives_audioclips_own_embeddings():
    """AudioCLIP's code itself (tests/golden/make_audioclip_reference.py) on fixed weights and two tone clips, both in
    float64. The bound comes from the computation, not from one CPU: the float32 run's distance from the float64 one
    measures how much this head amplifies rounding (the log spectrogram of near-silence); float64 rounding is
    2^-29 times float32's, so the two float64 implementations may differ by that distance x 2^-29, x 100 for the
    order of summation (any CPU's kernels, AMX or not)."""
    from safetensors.torch import load_file

    net = AudioCLIPAudio().eval()
    net.load_state_dict(deterministic_state(net.state_dict()))
    expected = load_file(Path(__file__).parent / "golden" / "audioclip_reference.safetensors")["embedding"]
    assert expected.dtype == torch.float64
    with torch.no_grad():
        single = net(reference_audio()).double()  # (2, 1024)
        got = net.double()(reference_audio().double())  # (2, 1024)
    assert got.shape == expected.shape == (2, 1024)
    amplified = (single - got).abs().max()  # float32 rounding, as amplified by the head
    bound = 100 * amplified * torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps
    assert bound < 1e-6 * expected.abs().max()  # still a tight check: far below any change of the function
    assert (got - expected).abs().max() <= bound
    assert (got[0] - got[1]).abs().max() > 0.1 * expected.abs().max()  # the two clips are told apart


def test_audioclip_reads_the_whole_checkpoint_and_mm_diffusions_audio_span(tmp_path):
    """The audio.* tensors of a full AudioCLIP file (its empty fbsp.bias and the image and text towers ignored);
    audio at any rate is resampled to 44.1 kHz, then cut to its first 1.6 s or zero-padded to it."""
    from scipy.signal import resample_poly

    net = AudioCLIPAudio().eval()
    state = deterministic_state(net.state_dict())
    net.load_state_dict(state)
    full = {**{f"audio.{k}": v for k, v in state.items()}, "audio.fbsp.bias": torch.empty(0),
            "visual.conv1.weight": torch.zeros(64, 3, 7, 7), "logit_scale_ai": torch.zeros(())}
    torch.save(full, tmp_path / "AudioCLIP-Full-Training.pt")
    extractor = audioclip_extractor(tmp_path / "AudioCLIP-Full-Training.pt")
    assert (extractor.metric, extractor.scale, extractor.sample_rate) == ("FAD-AudioCLIP", 1e4, 44100)
    clip = bt.make_clip(0, 3, "test").audio[None]  # (1, 34000): 2.125 s at 16 kHz
    at_44k, second = (torch.from_numpy(resample_poly(a, 441, 160, axis=-1).astype(np.float32))
                      for a in (clip, clip[:, :16000]))  # (1, 93712), (1, 44100)
    with torch.no_grad():
        expected = net(at_44k[:, :70560]).double().numpy()
        padded = net(torch.nn.functional.pad(second, (0, 70560 - 44100))).double().numpy()
    assert np.allclose(extractor(clip, 16000)[:, 0], expected, rtol=1e-4, atol=1e-4)
    assert np.allclose(extractor(clip[:, :16000], 16000)[:, 0], padded, rtol=1e-3, atol=1e-3)
    with pytest.raises(FeatureError, match="AudioCLIP-Full-Training.pt"):
        audioclip_extractor(tmp_path / "missing.pt")
    torch.save(VGGish().state_dict(), tmp_path / "vggish.pt")
    with pytest.raises(FeatureError, match="does not hold AudioCLIP weights"):
        audioclip_extractor(tmp_path / "vggish.pt")


def test_blank_given_blanks_exactly_the_given_segments():
    clip = bt.make_clip(0, 0, "test")
    video, audio = clip.video[None], clip.audio[None]
    given = get_task("av_continue", 5).given.numpy()  # segments 0-1 of both: frames 0-4, samples 0-9999
    v, a = blank_given(video, audio, given, BOUNCING_TONES)
    assert (v[:, :5] == bt.BACKGROUND[0]).all() and (a[:, :10000] == 0).all()
    assert (v[:, 5:] == video[:, 5:]).all() and (a[:, 10000:] == audio[:, 10000:]).all()
    assert not (video[:, :5] == bt.BACKGROUND[0]).all()  # the input is left alone


def test_bt_nets_reject_other_clip_shapes():
    with pytest.raises(ValueError, match="BT video net"):
        BTVideoNet()(torch.zeros(1, 9, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="BT audio net"):
        BTAudioNet()(torch.zeros(1, 16000))


@pytest.fixture(scope="module")
def held_out():
    clips = [bt.make_clip(7, i, "test") for i in range(400)]
    return np.stack([c.video for c in clips]), np.stack([c.audio for c in clips]), np.array([c.params.k for c in clips])


def test_bundled_bt_nets_know_the_clip_classes(held_out):
    video, audio, k = held_out
    for extractor, data in zip(bt_extractors(), (video[:96], audio[:96])):
        net = extractor.net
        with torch.no_grad():
            logits = net.heads.linear(net(torch.from_numpy(data)))[:, :bt.NUM_CLASSES]
        assert (logits.argmax(1).numpy() == k[:96]).mean() >= 0.95, extractor.metric


def test_bt_features_separate_real_from_broken_clips(held_out):
    """Two halves of the real clips are far closer in BT-FVD/BT-FAD than real clips and clips with half the
    classes missing (mode dropping), or, for video, frozen frames."""
    from avdit.eval.metrics import StreamingStats, frechet_from_stats

    video, audio, k = held_out
    half = np.flatnonzero(k < 4).repeat(2)[:200]  # 200 clips of classes 0-3 only
    video_extractor, audio_extractor = bt_extractors()

    def stats(extractor, x):
        s = StreamingStats(128)
        s.update(extractor(x).reshape(-1, 128))
        return s

    for extractor, data in ((video_extractor, video), (audio_extractor, audio)):
        real = stats(extractor, data[:200])
        same = frechet_from_stats(real, stats(extractor, data[200:]))
        dropped = frechet_from_stats(real, stats(extractor, data[half]))
        assert dropped > 3 * same, (extractor.metric, same, dropped)
    frozen = np.repeat(video[200:, :1], video.shape[1], axis=1)
    real = stats(video_extractor, video[:200])
    assert frechet_from_stats(real, stats(video_extractor, frozen)) > 3 * frechet_from_stats(
        real, stats(video_extractor, video[200:]))


def test_trained_feature_nets_load_from_their_folder(tmp_path):
    from avdit.eval.features.bt_train import train_features

    info = train_features(tmp_path / "nets", steps=2, batch_size=4, clips=8, held_out_clips=8,
                          progress=False)
    assert set(info["held_out"]) == {"video_class_accuracy", "video_impact_bin_accuracy", "audio_class_accuracy",
                                     "audio_impact_bin_accuracy"}
    video = np.stack([bt.make_clip(0, i, "test").video for i in range(2)])
    features = bt_extractors(tmp_path / "nets")[0](video)
    assert features.shape == (2, 1, 128) and features.dtype == np.float64
    with pytest.raises(FeatureError, match="train-features"):
        bt_extractors(tmp_path / "nowhere")
