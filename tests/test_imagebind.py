"""AV-IB: ImageBind's vision and audio towers and JavisBench's protocol, held to ImageBind's own code
(tests/golden/make_imagebind_reference.py) on fixed weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avdit.eval.features.imagebind import ImageBindVisionAudio, av_ib_scores, vision_audio_state
from avdit.eval.features.imagebind_inputs import audio_clips, clip_windows, frame_pairs, kaldi_fbank, video_clips
from tests.golden.make_imagebind_reference import (
    FPS,
    SMALL,
    STRIDE_FRAMES,
    STRIDE_MEL,
    STRIDE_VIDEO,
    deterministic_state,
    extra_clip,
    reference_clips,
)

GOLDEN = Path(__file__).parent / "golden"
EPS_RATIO = torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps  # 2^-29


@pytest.fixture(scope="module")
def golden():
    return load_file(GOLDEN / "imagebind_reference.safetensors")


@pytest.fixture(scope="module")
def small():
    net = ImageBindVisionAudio(**SMALL).eval()
    net.load_state_dict(deterministic_state(net.state_dict()))
    return net


def test_huge_state_dict_is_imagebinds_vision_and_audio():
    """Keys and shapes of imagebind_huge's vision and audio towers, read from ImageBind's own model (on meta)."""
    with torch.device("meta"):
        net = ImageBindVisionAudio()
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert ours == json.loads((GOLDEN / "imagebind_huge_keys.json").read_text())


def test_vision_audio_state_keeps_only_the_two_towers():
    state = {"modality_trunks.vision.blocks.0.attn.in_proj_weight": torch.zeros(1),
             "modality_postprocessors.audio.1.log_logit_scale": torch.zeros(()),
             "modality_trunks.text.blocks.0.attn.in_proj_weight": torch.zeros(1),
             "modality_preprocessors.imu.cls_token": torch.zeros(1),
             "modality_heads.depth.0.weight": torch.zeros(1), "modality_postprocessors.text.1.log_logit_scale": 0}
    assert sorted(vision_audio_state(state)) == ["modality_postprocessors.audio.1.log_logit_scale",
                                                  "modality_trunks.vision.blocks.0.attn.in_proj_weight"]
    net = ImageBindVisionAudio(**SMALL)
    state = vision_audio_state(deterministic_state(net.state_dict()))
    state.pop("modality_trunks.audio.blocks.1.attn.bias_k")
    with pytest.raises(RuntimeError, match="bias_k"):
        net.load_state_dict(state)


def test_clips_and_frames_follow_pytorchvideos_samplers():
    assert [(float(a), float(b)) for a, b in clip_windows(2.125, 5)] == [
        (k / 32, 2 + k / 32) for k in range(5)]
    assert clip_windows(1.5, 3) == clip_windows(0.0, 3) and len(clip_windows(1.5, 3)) == 3  # all [0, 2)
    assert frame_pairs(17, 8) == [(0, 15), (1, 16), (1, 16), (1, 16), (1, 16)]
    with pytest.raises(ValueError, match="no frame"):
        frame_pairs(0, 8)


def test_preprocessing_is_imagebinds(golden):
    """Crops, frame sampling and fbank against ImageBind's data.py. Video: float32 in both (pytorchvideo requires
    it): bilinear weights and normalisation round to a few float32 ulps of the largest value. Audio: float64 in both,
    bounded by this fbank's own float32 rounding (the log of near-silent bands amplifies it) times 2^-29, x 100 for
    the order of summation, plus what one float32 ulp on every input sample moves (the input's own precision)."""
    video, audio = reference_clips()
    extra_video, extra_fps, extra_audio = extra_clip()
    for got, key in [(video_clips(video, FPS), "video_inputs"), (video_clips(extra_video, extra_fps),
                                                                 "extra_video_inputs")]:
        expected = golden[key]
        got = got[..., ::STRIDE_VIDEO, ::STRIDE_VIDEO]
        assert got.dtype == expected.dtype == torch.float32 and got.shape == expected.shape
        assert (got - expected).abs().max() <= 8 * torch.finfo(torch.float32).eps * expected.abs().max()
    crops = video_clips(extra_video, extra_fps)[0, :3]  # the 3 crops of 224x313 frames differ
    assert (crops[0] - crops[2]).abs().max() > 0.5
    for clips, key in [(audio, "audio_inputs"), (extra_audio, "extra_audio_inputs")]:
        got = audio_clips(clips, 16000, torch.float64)
        single = audio_clips(clips, 16000, torch.float32).double()
        expected = golden[key]
        assert got.shape[-2:] == (128, 204)
        amplified = (single - got).abs().max()
        # the clips are float32 made from numpy's float64 sines, which differ by an ulp from one CPU's SIMD code to
        # another's and can round to the neighbouring float32: what one float32 ulp on every sample moves
        nudged = np.nextafter(clips, np.float32(np.inf)).astype(np.float32)
        input_ulp = (audio_clips(nudged, 16000, torch.float64) - got).abs().max()
        bound = 100 * amplified * EPS_RATIO + input_ulp
        got = got[..., ::STRIDE_MEL, ::STRIDE_FRAMES]
        assert got.shape == expected.shape and bound < 1e-3 * expected.abs().max()
        assert (got - expected).abs().max() <= bound


def test_fbank_of_a_tone_peaks_at_its_band():
    s = torch.arange(32000, dtype=torch.float64) / 16000
    fbank = kaldi_fbank(torch.sin(2 * torch.pi * 1000 * s))  # (198, 128)
    assert fbank.shape == (198, 128)
    mel = 1127 * np.log(1 + 1000 / 700)
    low, high = 1127 * np.log(1 + 20 / 700), 1127 * np.log(1 + 8000 / 700)
    assert abs(int(fbank.mean(0).argmax()) + 1 - (mel - low) / (high - low) * 129) <= 1


def test_embeddings_and_scores_are_imagebinds(golden, small):
    """ImageBind's forward on fixed weights, in float64. The bound comes from the computation: our float32 run's
    (fbank included) distance from our float64 run measures how much the towers amplify rounding (the log of
    near-silent mel bands most); float64 rounding is 2^-29 of
    float32's, x 100 for the order of summation. The video inputs are float32 in the protocol (as in the reference),
    so they may differ from the reference's by float32 rounding: that adds the float32 run's distance scaled by the
    inputs' difference in float32 ulps (0 here). The audio is float32 made from numpy's float64 sines, which differ
    by an ulp from one CPU's SIMD code to another's and can round to the neighbouring float32: that adds what one
    float32 ulp on every sample moves."""
    video, audio = reference_clips()
    frames, fbanks = video_clips(video, FPS), audio_clips(audio, 16000, torch.float64)
    with torch.no_grad():
        single = {"vision": small.float().embed_vision(frames).double(),
                  "audio": small.embed_audio(audio_clips(audio, 16000, torch.float32)).double()}
        got = {"vision": small.double().embed_vision(frames), "audio": small.embed_audio(fbanks)}
        nudged = np.nextafter(audio, np.float32(np.inf)).astype(np.float32)  # one float32 ulp on every sample
        nudged_audio = small.embed_audio(audio_clips(nudged, 16000, torch.float64))
        input_ulp = (nudged_audio - got["audio"]).abs().max()
    ulps = ((frames[..., ::STRIDE_VIDEO, ::STRIDE_VIDEO] - golden["video_inputs"]).abs().max()
            / (torch.finfo(torch.float32).eps * golden["video_inputs"].abs().max()))
    for key in ("vision", "audio"):
        amplified = (single[key] - got[key]).abs().max()
        bound = amplified * (100 * EPS_RATIO + (ulps if key == "vision" else 0)) + (input_ulp if key == "audio" else 0)
        assert got[key].shape == golden[key].shape == (2, SMALL["out_dim"])
        assert bound < 1e-3 * golden[key].abs().max()
        assert (got[key] - golden[key]).abs().max() <= bound, key
        assert (got[key][0] - got[key][1]).abs().max() > 0.01 * golden[key].abs().max()  # clips told apart
    def cosine(e):
        return torch.nn.functional.cosine_similarity(e["audio"], e["vision"], dim=-1, eps=1e-6)

    amplified = (cosine(single) - cosine(got)).abs().max()
    moved = (cosine({**got, "audio": nudged_audio}) - cosine(got)).abs().max()  # one float32 ulp on every audio sample
    assert (cosine(got) - golden["sim_av"]).abs().max() <= amplified * (100 * EPS_RATIO + ulps) + moved
    scores = av_ib_scores(small, video, audio, FPS, 16000)  # fbanks in float32, as the protocol computes them
    assert scores.dtype == np.float64 and scores.shape == (2,)
    assert np.abs(scores - golden["sim_av"].numpy()).max() <= amplified
    print(f"AV-IB float64 error {(cosine(got) - golden['sim_av']).abs().max():.2e}, float32 run {amplified:.2e}")


def test_scores_are_cosines_batch_independent_and_take_any_rate(small):
    video, audio = reference_clips()
    small.double()
    both = av_ib_scores(small, video, audio, FPS, 16000)
    one = av_ib_scores(small, video[1:], audio[1:], FPS, 16000)
    assert np.all(np.abs(both) <= 1) and abs(both[1] - one[0]) <= 1e-12
    from scipy.signal import resample_poly

    at_24k = resample_poly(audio, 3, 2, axis=-1)
    assert audio_clips(at_24k, 24000).shape == (2, 3, 1, 128, 204)
    assert np.abs(av_ib_scores(small, video, at_24k, FPS, 24000) - both).max() < 1e-3
