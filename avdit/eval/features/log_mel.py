"""VGGish's log-mel front end (the reference ``mel_features.py``), in torch.

16 kHz audio, 25 ms periodic-Hann windows every 10 ms (FFT 512, only whole windows), magnitude spectrogram,
64 HTK-mel bands from 125 to 7500 Hz with triangles linear in mel, log(mel + 0.01).
"""

from __future__ import annotations

import math

import numpy as np
import torch

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
FFT = 512  # 2 ** ceil(log2(WINDOW))
MEL_BANDS = 64
LOWER_HZ, UPPER_HZ = 125.0, 7500.0
LOG_OFFSET = 0.01


def hertz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + hz / 700.0)


def mel_matrix(bands: int = MEL_BANDS, fft: int = FFT, sample_rate: int = SAMPLE_RATE, lower: float = LOWER_HZ,
               upper: float = UPPER_HZ) -> np.ndarray:
    """(fft // 2 + 1, bands): triangles in mel space, DC row zeroed, as the reference builds them."""
    bins_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2, fft // 2 + 1))
    edges = np.linspace(hertz_to_mel(np.array(lower)), hertz_to_mel(np.array(upper)), bands + 2)
    weights = np.empty((bins_mel.size, bands))
    for i in range(bands):
        low, centre, high = edges[i:i + 3]
        weights[:, i] = np.maximum(0.0, np.minimum((bins_mel - low) / (centre - low), (high - bins_mel) / (high - centre)))
    weights[0, :] = 0.0
    return weights


class LogMel(torch.nn.Module):
    """(B, S) float audio at 16 kHz -> (B, frames, 64) log-mel, frames = 1 + (S - 400) // 160."""

    def __init__(self):
        super().__init__()
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(WINDOW, dtype=torch.float64) / WINDOW)  # periodic
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_matrix()).float(), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.shape[-1] < WINDOW:
            raise ValueError(f"audio needs at least {WINDOW} samples (25 ms at 16 kHz), got {audio.shape[-1]}")
        frames = audio.float().unfold(-1, WINDOW, HOP) * self.window  # (B, F, 400)
        magnitude = torch.fft.rfft(frames, n=FFT).abs()  # (B, F, 257)
        return torch.log(magnitude @ self.mel + LOG_OFFSET)  # (B, F, 64)
