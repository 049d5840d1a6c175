"""PANNs' Cnn14 (FD-PANNs) against av-benchmark's own code, and its loading and protocol."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from avdit.eval.features import FeatureError
from avdit.eval.features.extractor import panns_extractor
from avdit.eval.features.panns import Cnn14
from tests.golden.make_panns_reference import deterministic_state, reference_audio

GOLDEN = Path(__file__).parent / "golden" / "panns_reference.safetensors"


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return deterministic_state(Cnn14().state_dict())  # 81 M sines: made once


def golden_net(state: dict[str, torch.Tensor], seconds: float = 8.0) -> Cnn14:
    net = Cnn14(seconds).eval()
    net.load_state_dict(state)
    return net


def test_cnn14_gives_av_benchmarks_own_embeddings_and_logits(state):
    """av-benchmark's Cnn14 (tests/golden/make_panns_reference.py) on fixed weights and two clips, both in float64.
    The bound comes from the computation, as the AudioCLIP test's: the float32 run's distance from the float64 one
    measures how much the network amplifies rounding; float64 rounding is 2^-29 times float32's, x 100 for the order
    of summation in any CPU's kernels. The spectrogram and mel kernels are computed here, not read from the golden,
    so the check also holds them to torchlibrosa's."""
    expected = load_file(GOLDEN)
    net = golden_net(state)
    with torch.no_grad():
        hidden32 = net.hidden(reference_audio())  # (2, 2048)
        single = {"embedding": hidden32.double(), "logits": net.fc_audioset(hidden32).double()}
        hidden = net.double().hidden(reference_audio().double())
        got = {"embedding": hidden, "logits": net.fc_audioset(hidden)}  # (2, 2048), (2, 527)
    for name, want in expected.items():
        assert want.dtype == torch.float64 and got[name].shape == want.shape
        amplified = (single[name] - got[name]).abs().max()
        bound = 100 * amplified * torch.finfo(torch.float64).eps / torch.finfo(torch.float32).eps
        assert bound < 1e-6 * want.abs().max()  # still far below any change of the function
        assert (got[name] - want).abs().max() <= bound, name
    got = got["embedding"]
    assert (got[0] - got[1]).abs().max() > 0.1 * expected["embedding"].abs().max()  # the clips are told apart


def test_cnn14_keeps_av_benchmarks_protocol(state):
    """Mean removed (an offset changes nothing), at most 8 s read, batching changes nothing."""
    net = golden_net(state, seconds=0.5)
    audio = reference_audio()[:, :12000]  # 0.75 s
    with torch.no_grad():
        both = net(audio)
        assert torch.allclose(net(audio + 0.3), both, rtol=1e-4, atol=1e-4 * both.abs().max())
        assert torch.allclose(net(audio[1:]), both[1:], rtol=1e-4, atol=1e-4 * both.abs().max())
        assert torch.equal(both, net(audio[:, :8000]))  # 0.75 s read as its first 0.5 s
    with pytest.raises(ValueError, match="at least 257 samples"):
        net(torch.zeros(1, 100, dtype=torch.float64))


def test_panns_extractor_reads_the_released_layout_and_resamples(state, tmp_path):
    """The released file holds {'model': state dict, ...}; audio at another rate is resampled to 16 kHz; a missing
    or foreign file is an error that names the file to get."""
    net = golden_net(state)
    torch.save({"model": net.state_dict(), "iteration": 0}, tmp_path / "Cnn14_16k_mAP=0.438.pth")
    extractor = panns_extractor(tmp_path / "Cnn14_16k_mAP=0.438.pth")
    assert (extractor.metric, extractor.sample_rate) == ("FD-PANNs", 16000)
    audio = reference_audio().numpy()[:, :8000]
    features = extractor(audio, 16000)  # (2, 1, 2048)
    with torch.no_grad():
        assert np.allclose(features[:, 0], net(torch.from_numpy(audio)).double().numpy(), rtol=1e-6)
    from scipy.signal import resample_poly

    at32 = np.sin(2 * np.pi * 440 * np.arange(16000) / 32000)[None].astype(np.float32)  # 0.5 s at 32 kHz
    with torch.no_grad():
        direct = net(torch.from_numpy(resample_poly(at32, 1, 2, axis=-1).astype(np.float32))).double().numpy()
    assert np.allclose(extractor(at32, 32000)[:, 0], direct, rtol=1e-6)
    with pytest.raises(FeatureError, match="Cnn14_16k_mAP=0.438.pth"):
        panns_extractor(tmp_path / "missing.pth")
    save_file({"conv.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(FeatureError, match="does not hold PANNs weights"):
        panns_extractor(tmp_path / "other.safetensors")
