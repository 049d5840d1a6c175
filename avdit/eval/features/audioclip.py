"""AudioCLIP's audio head (Guzhov et al. 2022), the network behind MM-Diffusion's FAD and so the paper's Table 2.

MM-Diffusion's evaluator (github.com/researchmm/MM-Diffusion, ``mm_diffusion/evaluator.py``) reads 1.6 s of audio
at 44.1 kHz (the first channel, zero-padded when shorter), feeds it as floats in [-1, 1] to AudioCLIP's ESResNeXt-FBSP
audio head, takes the raw 1024-d embeddings (before AudioCLIP normalises them) and reports the Fréchet distance
between generated and real embeddings times 1e4. This module is that head, written afresh; its module names match
AudioCLIP's, so the ``audio.*`` tensors of ``AudioCLIP-Full-Training.pt`` load as they are. The head:

- a learned Fourier basis (FBSP: frequency, bandwidth and window power per bin) applied to windowed frames
  (n_fft 2048, window 1654 Blackman-Harris, hop 561), power in dB;
- the 1025 frequency bins cut into three bands of 341 rows, which are the three input channels of
- a ResNeXt-50 (32x4d) with AudioCLIP's attention blocks after each stage and the pooling, and a linear layer to
  the 1024-d embedding.

AudioCLIP expects 16-bit sample values and rescales them to [-1, 1]; MM-Diffusion feeds [-1, 1] floats, which the
head then shrinks by 32768. That is kept: it is how the published figures were computed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy.signal import get_window
from torch import nn

SAMPLE_RATE = 44100  # MM-Diffusion's AUDIO_RATE
SECONDS = 1.6  # MM-Diffusion's AUDIO_SIZE: int(44100 * 1.6) samples
SAMPLES = int(SAMPLE_RATE * SECONDS)
EMBEDDING = 1024
FAD_SCALE = 1e4  # MM-Diffusion reports the Fréchet distance of these embeddings times 10000
N_FFT, WINDOW, HOP, BANDS = 2048, 1654, 561, 3
WEIGHTS_HINT = ("AudioCLIP's weights, 'AudioCLIP-Full-Training.pt' from the AudioCLIP project's releases "
                "(AndreyGuzhov/AudioCLIP, v0.1), the file MM-Diffusion's evaluator loads; only its audio.* tensors "
                "are read")


def frames(signal: torch.Tensor, length: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """(B, S) -> (B, F, length) windowed frames; the signal is zero-padded (half each side) to whole frames, as
    AudioCLIP's ``frame_signal`` does."""
    count = 1 if signal.shape[-1] <= length else 1 + math.ceil((signal.shape[-1] - length) / hop)
    pad = max((count - 1) * hop + length - signal.shape[-1], 0)
    signal = F.pad(signal, (pad // 2, pad - pad // 2))
    return signal.unfold(-1, length, hop)[..., :count, :] * window


class LinearFBSP(nn.Module):
    """Frequency B-spline layer: a Fourier transform whose per-bin frequency ``fc``, bandwidth ``fb`` and window
    power ``m`` are learned (AudioCLIP's ``LinearFBSP``, without its bias). (B, F, n) real frames -> (B, F, k, 2)
    real and imaginary parts."""

    eps = 1e-8

    def __init__(self, out_features: int, normalized: bool = True):
        super().__init__()
        self.normalized = normalized
        self.m = nn.Parameter(torch.zeros(out_features))
        self.fb = nn.Parameter(torch.ones(out_features))
        self.fc = nn.Parameter(torch.arange(out_features, dtype=torch.float32))

    def weights(self, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """(k, n, 2) complex basis: sqrt(fb) * sinc(fb t / m)^m * exp(-i fc t), t in [-pi, pi]."""
        t = math.pi * torch.linspace(-1.0, 1.0, n, dtype=dtype, device=device)[None, :] + self.eps  # (1, n)
        m, fb, fc = (p[:, None] for p in (self.m, self.fb, self.fc))  # (k, 1)
        arg = fb * t / (m + self.eps)
        sinc = torch.where(arg == 0, torch.ones_like(arg), torch.sin(arg) / arg)  # (k, n), real
        # the complex power of a real number: |w|^m, with phase m * arg(w) (pi where w < 0)
        phase = m * torch.atan2(torch.zeros_like(sinc), sinc)
        magnitude = (sinc**2) ** (0.5 * m)
        real, imag = magnitude * torch.cos(phase), magnitude * torch.sin(phase)
        kernel_re, kernel_im = torch.cos(fc * t), -torch.sin(fc * t)
        out = fb.sqrt()[..., None] * torch.stack([real * kernel_re - imag * kernel_im,
                                                  real * kernel_im + imag * kernel_re], dim=-1)  # (k, n, 2)
        return out / n**0.5 if self.normalized else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights(x.shape[-1], x.dtype, x.device)
        return torch.stack([F.linear(x, w[..., 0]), F.linear(x, w[..., 1])], dim=-1)  # (B, F, k, 2)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)


class Bottleneck(nn.Module):
    """ResNeXt bottleneck (torchvision's layout): 1x1, grouped 3x3 (stride here), 1x1 x4, residual."""

    def __init__(self, cin: int, planes: int, stride: int = 1, groups: int = 32, width_per_group: int = 4):
        super().__init__()
        width = int(planes * width_per_group / 64) * groups
        self.conv1, self.bn1 = _conv(cin, width, 1), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv(width, width, 3, stride, groups), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = _conv(width, planes * 4, 1), nn.BatchNorm2d(planes * 4)
        self.downsample = (nn.Sequential(_conv(cin, planes * 4, 1, stride), nn.BatchNorm2d(planes * 4))
                           if stride != 1 or cin != planes * 4 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Attention2d(nn.Module):
    """AudioCLIP's attention block: max-pool the stage's input to its output size, depthwise then pointwise conv,
    batch norm, sigmoid; the stage's output is multiplied by it."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int]):
        super().__init__()
        self.conv_depth = nn.Conv2d(cin, cin, kernel, padding=(kernel[0] // 2, kernel[1] // 2), groups=cin)
        self.conv_point = nn.Conv2d(cin, cout, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        return torch.sigmoid(self.bn(self.conv_point(self.conv_depth(F.adaptive_max_pool2d(x, size)))))


class AudioCLIPAudio(nn.Module):
    """(B, S) audio at 44.1 kHz in [-1, 1] -> (B, 1024) AudioCLIP audio embeddings of its first 1.6 s (zero-padded
    when shorter), as MM-Diffusion's evaluator computes them."""

    def __init__(self, samples: int = SAMPLES):
        super().__init__()
        self.samples = samples
        self.fbsp = LinearFBSP(N_FFT // 2 + 1)
        self.register_buffer("window", torch.from_numpy(get_window("blackmanharris", WINDOW, fftbins=True)).float())
        self.conv1, self.bn1 = nn.Conv2d(BANDS, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64)
        cin, kernels = 64, ((3, 1), (1, 5), (3, 1), (1, 5))
        for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
            stride = 1 if stage == 1 else 2
            layer = [Bottleneck(cin, planes, stride)] + [Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
            self.add_module(f"layer{stage}", nn.Sequential(*layer))
            self.add_module(f"att{stage}", Attention2d(cin, planes * 4, kernels[stage - 1]))
            cin = planes * 4
        self.att5 = Attention2d(cin, cin, (3, 5))
        self.fc = nn.Linear(cin, EMBEDDING)

    def decibels(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, 3, 341, F) power in dB of the FBSP spectrum, its bins cut into three bands."""
        audio = (audio + 32768.0) * 2.0 / 65535.0 - 1.0  # AudioCLIP's scale() from 16-bit values to [-1, 1]
        pad = N_FFT - WINDOW
        x = F.pad(frames(audio, WINDOW, HOP, self.window), (pad // 2, pad - pad // 2))  # (B, F, 2048)
        spec = self.fbsp(x).transpose(1, 2)  # (B, 1025, F, 2)
        rows = spec.shape[1] // BANDS
        spec = spec[:, :rows * BANDS].reshape(spec.shape[0], BANDS, rows, *spec.shape[2:])  # (B, 3, 341, F, 2)
        power = spec[..., 0] ** 2 + spec[..., 1] ** 2
        return 10.0 * torch.log10(torch.where(power > 0, power, torch.full_like(power, 1e-18)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        audio = audio.float()[..., :self.samples]
        audio = F.pad(audio, (0, self.samples - audio.shape[-1]))  # (B, samples)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(self.decibels(audio)))), 3, stride=2, padding=1)
        for stage in range(1, 5):
            out = getattr(self, f"layer{stage}")(x)
            x = out * getattr(self, f"att{stage}")(x, out.shape[-2:])
        x = F.adaptive_avg_pool2d(x, 1) * self.att5(x, (1, 1))  # (B, 2048, 1, 1)
        return self.fc(x.flatten(1))  # (B, 1024)


def audio_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The audio head's tensors of a whole AudioCLIP state dict (its ``audio.`` keys, prefix removed; a state dict
    of the head alone as it is), without AudioCLIP's empty ``fbsp.bias`` (the head has no bias)."""
    audio = {k.removeprefix("audio."): v for k, v in state.items() if k.startswith("audio.")} or dict(state)
    return {k: v for k, v in audio.items() if not (k == "fbsp.bias" and v.numel() == 0)}
