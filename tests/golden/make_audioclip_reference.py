"""Make ``audioclip_reference.safetensors``: AudioCLIP's own audio head on fixed weights and audio, the values
``tests/test_features.py`` holds ``avdit.eval.features.audioclip`` to.

    python tests/golden/make_audioclip_reference.py PATH/TO/AudioCLIP   # a checkout of AndreyGuzhov/AudioCLIP

The reference is AudioCLIP's ``ESResNeXtFBSP`` built with the arguments ``AudioCLIP`` gives it (MM-Diffusion vendors
the same files). Its imports of torchvision, termcolor and AudioCLIP's trainer are stood in for (they are not used by
the forward pass). Weights are a function of each tensor's name and index alone, so the test rebuilds them without
the reference; the audio is two tones, fed as MM-Diffusion feeds it (floats in [-1, 1], 1.6 s at 44.1 kHz).

The reference runs in float64: in float32 this head's result moves with the CPU's convolution kernels (0.25 on values
near 1.7 against float64, here: the log spectrogram of near-silence amplifies rounding), so a float32 golden holds
only on the machine that made it; in float64 the same amplification leaves ~1e-9.
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import torch

from tests.golden.fixed_weights import fixed_value, sine

GOLDEN = Path(__file__).with_name("audioclip_reference.safetensors")
NORMS = ("bn1.weight", "bn2.weight", "bn3.weight", "bn.weight", "downsample.1.weight")


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every floating tensor of ``state`` set from its key and element index: a sine wave, scaled by fan-in for
    weights, near 1 for norms and variances; the FBSP basis keeps Fourier-like values."""
    out = {}
    for key, value in state.items():
        if not value.is_floating_point() or value.numel() == 0:
            out[key] = value
            continue
        out[key] = fixed_value(key, value, sine(key, value.numel()), norm_weight=key.endswith(NORMS))
    bins = torch.arange(state["fbsp.fc"].numel(), dtype=torch.float64)
    out["fbsp.m"], out["fbsp.fb"] = (0.1 * torch.sin(bins)).float(), (1 + 0.1 * torch.cos(bins)).float()
    out["fbsp.fc"] = bins.float()
    return out


def reference_audio() -> torch.Tensor:
    """(2, 70560): a 440 Hz tone then a 1234 Hz one, and that clip reversed and quieter."""
    t = torch.arange(70560, dtype=torch.float64) / 44100
    audio = 0.5 * torch.sin(2 * math.pi * 440 * t) * (t < 0.8) + 0.3 * torch.sin(2 * math.pi * 1234 * t) * (t >= 0.5)
    return torch.stack([audio, 0.7 * audio.flip(0)]).float()


def _stand_ins() -> None:
    """Modules the reference imports but its forward pass does not use."""
    class Module(torch.nn.Module):
        pass

    sys.modules["ignite_trainer"] = types.SimpleNamespace(AbstractNet=Module, AbstractTransform=Module)
    sys.modules["termcolor"] = types.SimpleNamespace(colored=lambda text, *a, **k: text)
    sys.modules["torchvision"] = types.SimpleNamespace(
        models=types.SimpleNamespace(resnet50=None, resnext50_32x4d=None),
        transforms=types.SimpleNamespace(ToTensor=object))
    for package in ("model", "utils"):  # their __init__ files import CLIP and the datasets: skip them
        sys.modules[package] = types.ModuleType(package)


def main(checkout: str) -> None:
    from safetensors.torch import save_file

    root = Path(checkout)
    _stand_ins()
    sys.modules["model"].__path__ = [str(root / "model")]
    sys.modules["utils"].__path__ = [str(root / "utils")]
    from model.esresnet.fbsp import ESResNeXtFBSP  # AudioCLIP's, with the arguments of AudioCLIP.__init__

    net = ESResNeXtFBSP(n_fft=2048, hop_length=561, win_length=1654, window="blackmanharris", normalized=True,
                        onesided=True, spec_height=-1, spec_width=-1, num_classes=1024, apply_attention=True,
                        pretrained=False).eval()
    net.load_state_dict(deterministic_state(net.state_dict()))
    with torch.no_grad():
        embedding = net.double()(reference_audio().double()[:, None])  # (2, 1024); MM-Diffusion feeds (B, 1, S)
    save_file({"embedding": embedding.contiguous()}, GOLDEN)
    print(f"wrote {GOLDEN}: embedding {tuple(embedding.shape)}, norms {embedding.norm(dim=-1).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1])
