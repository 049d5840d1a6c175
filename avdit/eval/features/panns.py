"""PANNs' Cnn14 at 16 kHz (Kong et al. 2020), the network behind FD-PANNs, as av-benchmark computes it.

av-benchmark (github.com/hkchengrex/av-benchmark, ``av_bench/extract.py`` and ``av_bench/panns/models.py``; MMAudio's
and many 2025-26 papers' harness) reads the audio mono, removes its mean, resamples it to 16 kHz, keeps at most 8 s
(no padding), and takes Cnn14's 2048-d embedding (``"2048"``: ReLU of ``fc1`` after the clip-wise max + mean pooling);
FD-PANNs is the Fréchet distance between generated and reference embeddings. This module is that network, written
afresh with the reference's module names so the released ``Cnn14_16k_mAP=0.438.pth`` loads as it is:

- torchlibrosa's spectrogram as a convolution with the Hann-windowed DFT (``spectrogram_extractor.stft.conv_real``
  and ``conv_imag``: n_fft 512, hop 160, centred with reflection padding), power 2;
- its log-mel bank (``logmel_extractor.melW``: librosa's Slaney mel, 64 bands from 50 Hz to 8 kHz), 10 log10 with
  floor 1e-10;
- ``bn0`` over the mel bands, six conv blocks (two 3x3 conv + BN + ReLU, 2x2 average pooling but the last), the
  mean over frequency, max + mean over time, ``fc1`` and ReLU. ``fc_audioset`` gives the 527 AudioSet logits.

av-benchmark resamples with torchaudio's windowed sinc; here ``scipy.signal.resample_poly`` does it (audio at 16 kHz,
as the bundled geometries make it, is not resampled at all).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16000
SECONDS = 8.0  # av-benchmark's audio_length: longer clips are cut, shorter ones kept whole
N_FFT, HOP, MELS, FMIN, FMAX, CLASSES = 512, 160, 64, 50, 8000, 527
EMBEDDING = 2048
WEIGHTS_HINT = ("PANNs' 16 kHz Cnn14, 'Cnn14_16k_mAP=0.438.pth' (zenodo.org/record/3987831, the file av-benchmark "
                "loads); its 'model' state dict is read")


def dft_kernels(n_fft: int = N_FFT) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_fft // 2 + 1, 1, n_fft) real and imaginary Hann-windowed DFT kernels, computed as torchlibrosa's ``STFT``
    does (so in float32 they equal the released checkpoint's)."""
    x, y = np.meshgrid(np.arange(n_fft), np.arange(n_fft))
    w = np.power(np.exp(-2 * np.pi * 1j / n_fft), x * y)[:, :n_fft // 2 + 1]  # (n_fft, bins)
    window = librosa.filters.get_window("hann", n_fft, fftbins=True)[:, None]
    return tuple(torch.Tensor(part(w * window).T)[:, None, :].contiguous() for part in (np.real, np.imag))


class STFT(nn.Module):
    """(B, S) -> (B, 1, frames, bins) real and imaginary parts; reflection-padded by n_fft / 2 each side."""

    def __init__(self, n_fft: int = N_FFT, hop: int = HOP):
        super().__init__()
        self.n_fft = n_fft
        real, imag = dft_kernels(n_fft)
        self.conv_real = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        self.conv_real.weight.data, self.conv_imag.weight.data = real, imag

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.pad(audio[:, None], (self.n_fft // 2, self.n_fft // 2), mode="reflect")  # (B, 1, S + n_fft)
        return self.conv_real(x)[:, None].transpose(2, 3), self.conv_imag(x)[:, None].transpose(2, 3)


class Spectrogram(nn.Module):
    def __init__(self):
        super().__init__()
        self.stft = STFT()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(audio)
        return real**2 + imag**2  # (B, 1, frames, 257)


class LogmelFilterBank(nn.Module):
    """Power spectrogram -> 10 log10 of its mel bands (floor 1e-10, reference 1, no top-dB cut)."""

    def __init__(self):
        super().__init__()
        mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=MELS, fmin=FMIN, fmax=FMAX).T  # (257, 64)
        self.melW = nn.Parameter(torch.Tensor(np.ascontiguousarray(mel)), requires_grad=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(power @ self.melW, min=1e-10))  # (B, 1, frames, 64)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU, then average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, pool)


class Cnn14(nn.Module):
    """(B, S) audio at 16 kHz in [-1, 1] -> (B, 2048) embeddings, as av-benchmark extracts them (mean removed,
    first 8 s). ``logits`` gives the 527 AudioSet logits of the same clips."""

    def __init__(self, seconds: float = SECONDS):
        super().__init__()
        self.samples = int(SAMPLE_RATE * seconds)
        self.spectrogram_extractor = Spectrogram()
        self.logmel_extractor = LogmelFilterBank()
        self.bn0 = nn.BatchNorm2d(MELS)
        widths = (1, 64, 128, 256, 512, 1024, 2048)
        for i in range(6):
            self.add_module(f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(EMBEDDING, EMBEDDING)
        self.fc_audioset = nn.Linear(EMBEDDING, CLASSES)

    def hidden(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, 2048): ReLU of fc1, which both the embedding and the logits take."""
        if audio.shape[-1] < N_FFT // 2 + 1:
            raise ValueError(f"PANNs needs at least {N_FFT // 2 + 1} samples at {SAMPLE_RATE} Hz (reflection "
                             f"padding); got {audio.shape[-1]}")
        audio = audio[:, :self.samples]
        audio = audio - audio.mean(dim=-1, keepdim=True)  # av-benchmark's AudioDataset removes the mean
        x = self.logmel_extractor(self.spectrogram_extractor(audio))  # (B, 1, frames, 64)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, 2 if i < 5 else 1)  # (B, C, frames', mels')
        x = x.mean(dim=3)  # (B, 2048, frames')
        x = x.max(dim=2).values + x.mean(dim=2)  # (B, 2048)
        return F.relu(self.fc1(x))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.hidden(audio)

    def logits(self, audio: torch.Tensor) -> torch.Tensor:
        return self.fc_audioset(self.hidden(audio))  # (B, 527)
