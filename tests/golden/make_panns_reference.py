"""Make ``panns_reference.safetensors``: av-benchmark's own Cnn14 on fixed weights and audio, the values
``tests/test_panns.py`` holds ``avdit.eval.features.panns`` to.

    python -m venv --system-site-packages /tmp/ref-panns && /tmp/ref-panns/bin/pip install --no-deps torchlibrosa
    git -C AV_BENCHMARK_CHECKOUT archive HEAD av_bench | tar -x -C /tmp/avbench   # hkchengrex/av-benchmark
    /tmp/ref-panns/bin/python tests/golden/make_panns_reference.py /tmp/avbench

The reference is ``av_bench.panns.Cnn14`` built with the arguments of av-benchmark's ``ExtractionModels`` (16 kHz,
window 512, hop 160, 64 mels from 50 Hz to 8 kHz). Its constructor downloads and loads the released checkpoint; that
is stood in for, and the weights are then set from each tensor's name and index alone (the spectrogram and mel
tensors keep the values torchlibrosa computes), so the test rebuilds them without the reference. The audio is fed as
av-benchmark's ``AudioDataset`` gives it: mean removed. The reference runs in float64, as the AudioCLIP golden does.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch

from tests.golden.fixed_weights import fixed_value, sine

GOLDEN = Path(__file__).with_name("panns_reference.safetensors")
COMPUTED = ("spectrogram_extractor.", "logmel_extractor.")  # values the network computes itself, not learned


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every learned floating tensor of ``state`` set from its key and element index: a sine wave, scaled by fan-in
    for weights, near 1 for batch-norm scales and variances."""
    out = {}
    for key, value in state.items():
        if not value.is_floating_point() or key.startswith(COMPUTED):
            out[key] = value
            continue
        bn = value.dim() == 1 and key.rsplit(".", 2)[-2].startswith("bn") and key.endswith("weight")
        out[key] = fixed_value(key, value, sine(key, value.numel()), norm_weight=bn)
    return out


def reference_audio() -> torch.Tensor:
    """(2, 34000): 2.125 s at 16 kHz; a 440 Hz tone with clicks every 0.25 s, and a 1234 Hz chirp-like tone that
    starts late, with an offset (which the mean removal takes away)."""
    t = torch.arange(34000, dtype=torch.float64) / 16000
    clicks = (torch.remainder(t, 0.25) < 0.004).double()
    first = 0.4 * torch.sin(2 * math.pi * 440 * t) + 0.5 * clicks
    second = 0.3 * torch.sin(2 * math.pi * (1234 + 300 * t) * t) * (t > 0.6) + 0.05
    return torch.stack([first, second]).float()


def main(checkout: str) -> None:
    from safetensors.torch import save_file

    sys.path.insert(0, checkout)
    from av_bench.panns import models

    exists, load, load_state = os.path.exists, torch.load, models.Cnn14.load_state_dict
    os.path.exists = lambda path: True  # skip the download ...
    torch.load = lambda *args, **kwargs: {"model": None}
    models.Cnn14.load_state_dict = lambda self, *args, **kwargs: None  # ... and the released weights
    try:
        net = models.Cnn14(features_list=["2048", "logits"], sample_rate=16000, window_size=512, hop_size=160,
                           mel_bins=64, fmin=50, fmax=8000, classes_num=527)
    finally:
        os.path.exists, torch.load, models.Cnn14.load_state_dict = exists, load, load_state
    net.load_state_dict(deterministic_state(net.state_dict()))
    audio = reference_audio().double()
    with torch.no_grad():
        out = net.double().eval()(audio - audio.mean(dim=-1, keepdim=True))  # av-benchmark's AudioDataset
    save_file({"embedding": out["2048"].contiguous(), "logits": out["logits"].contiguous()}, GOLDEN)
    print(f"wrote {GOLDEN}: embedding {tuple(out['2048'].shape)}, logits {tuple(out['logits'].shape)}, "
          f"norms {out['2048'].norm(dim=-1).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1])
