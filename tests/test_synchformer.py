"""Synchformer and the DeSync protocol against av-benchmark's code and JavisBench's steps
(tests/golden/make_synchformer_reference.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avdit.eval.features.synchformer import (
    GRID,
    Synchformer,
    audio_segments,
    desync_scores,
    group_logits,
    video_segments,
)
from tests.golden.make_synchformer_reference import SHALLOW, deterministic_state, reference_clips

GOLDEN_PATH = Path(__file__).parent / "golden" / "synchformer_reference.safetensors"
GRID_ROUNDING = 1e-7  # the reference's grid is float32 (make_class_grid(...).float()); ours is float64


def _golden() -> dict:
    from safetensors.torch import load_file

    return load_file(GOLDEN_PATH)


def _shallow_net() -> Synchformer:
    net = Synchformer(**SHALLOW).eval()
    net.load_state_dict(deterministic_state(net.state_dict()))
    return net.double()


def _bound(amplified: torch.Tensor) -> float:
    """float64 rounding is 2^-29 times float32's; the reference's float32-vs-float64 distance measures how much
    the computation amplifies rounding; x 100 for the order of summation (any CPU's kernels)."""
    return float(100 * amplified * torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps)


def _input_ulp(net, vf: torch.Tensor, audio: np.ndarray, seconds: float, logits: torch.Tensor) -> float:
    """What one float32 ulp on every audio sample moves the logits: the clips are float32 made from numpy's float64
    sines, which differ by an ulp from one CPU's SIMD code to another's and can round to the neighbouring float32."""
    nudged = np.nextafter(audio, np.float32(np.inf)).astype(np.float32)
    with torch.no_grad():
        af = net.extract_afeats(audio_segments(nudged, 16000, seconds, torch.float64))
        return float((torch.stack(group_logits(net, vf, af), 1) - logits).abs().max())


def test_full_size_state_dict_has_the_references_keys_and_shapes():
    """The release file loads key for key: the full-size net, built on the meta device, against the key -> shape
    list of av-benchmark's Synchformer()."""
    from safetensors import safe_open

    with safe_open(GOLDEN_PATH, "pt") as f:
        expected = json.loads(f.metadata()["keys"])
    with torch.device("meta"):
        net = Synchformer()
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert len(expected) == 513 and got == expected


def test_shallow_synchformer_gives_the_references_logits_and_scores():
    """One block per transformer, real widths, two 0.75-s clips at 8 fps (one segment each, tiled to 14): the log-mel
    against torchaudio's, the logits of compare_v_a and the scores against av-benchmark's modules run through
    JavisBench's calc_desync_score, all in float64; then one clip alone gives the same score (batching)."""
    golden = _golden()
    net = _shallow_net()
    video, audio = reference_clips(6, 8.0, (48, 64))
    mel = audio_segments(audio, 16000, 0.75, torch.float64)  # (2, 1, 1, 128, 66)
    assert (mel[:, :, 0] - golden["mel_short"]).abs().max() < 1e-9  # same float64 ops as torchaudio; measured 0
    with torch.no_grad():
        # frames made in float32 as torchvision's ToDtype makes them (the maker casts them to float64 likewise)
        vf = net.extract_vfeats(video_segments(video, 8.0).double())  # (2, 1, 8, 768)
        af = net.extract_afeats(mel)  # (2, 1, 6, 768)
        logits = torch.stack(group_logits(net, vf, af), 1)  # (2, 1, 21)
    expected = golden["logits_short"]
    bound = _bound(golden["amp_logits_short"]) + _input_ulp(net, vf, audio, 0.75, logits)
    assert bound < 1e-4 * expected.abs().max()  # still tight: far below any change of the function
    assert (logits - expected).abs().max() <= bound
    assert (expected[0] - expected[1]).abs().max() > 0.05  # the two clips are told apart
    scores = GRID[logits.argmax(-1)].abs().mean(1).numpy()
    np.testing.assert_allclose(scores, golden["scores_short"].numpy(), atol=GRID_ROUNDING, rtol=0)
    one = desync_scores(net, video[1:], audio[1:], 8.0, 16000)
    assert one.dtype == np.float64 and one.shape == (1,) and one[0] == scores[1]
    assert ((scores >= 0) & (scores <= 2)).all()


@pytest.mark.slow
def test_shallow_synchformer_on_bundled_geometry_clips():
    """2.125 s at 8 fps, 64x64 (5 segments, tiled to 14), two clips: the reference's logits and scores."""
    golden = _golden()
    video, audio = reference_clips(17, 8.0, (64, 64))
    net = _shallow_net()
    with torch.no_grad():
        vf = net.extract_vfeats(video_segments(video, 8.0).double())
        af = net.extract_afeats(audio_segments(audio, 16000, 2.125, torch.float64))
        assert vf.shape[1] == af.shape[1] == 5
        logits = torch.stack(group_logits(net, vf, af), 1)
    assert (logits - golden["logits_long"]).abs().max() <= (_bound(golden["amp_logits_long"])
                                                            + _input_ulp(net, vf, audio, 2.125, logits))
    np.testing.assert_allclose(desync_scores(net, video, audio, 8.0, 16000), golden["scores_long"].numpy(),
                               atol=GRID_ROUNDING, rtol=0)


def test_grid_and_too_short_clips():
    assert torch.equal(GRID, torch.linspace(-2, 2, 21, dtype=torch.float64))
    video = np.zeros((1, 5, 64, 64, 3), np.uint8)  # 0.625 s at 8 fps
    with pytest.raises(ValueError, match="at least 0.64 s"):
        desync_scores(None, video, np.zeros((1, 10000)), 8.0, 16000)


def test_segment_counts_and_groups_of_fourteen():
    """Bundled geometry gives 5 + 5 segments; 30 segments make groups [0, 14), [14, 28) and the last 14; 5 segments
    are tiled 0..4, 0..4, 0..3 -- JavisBench's grouping."""
    video, audio = reference_clips(17, 8.0, (64, 64))
    assert video_segments(video[:1], 8.0).shape == (1, 5, 16, 3, 224, 224)
    assert audio_segments(audio[:1], 16000, 2.125).shape == (1, 5, 1, 128, 66)

    class Stub:
        def __init__(self):
            self.seen = []

        def compare_v_a(self, v, a):
            assert v.shape[1] == a.shape[1] == 14
            self.seen.append(v[0, :, 0, 0].tolist())
            return torch.zeros(len(v), 21)

    for s, groups in ((30, [list(range(14)), list(range(14, 28)), list(range(16, 30))]),
                      (5, [[0, 1, 2, 3, 4] * 2 + [0, 1, 2, 3]])):
        stub = Stub()
        ids = torch.arange(s, dtype=torch.float64)[None, :, None, None]
        group_logits(stub, ids.expand(2, s, 8, 4), ids.expand(2, s, 6, 4))
        assert stub.seen == [[float(i) for i in g] for g in groups]
