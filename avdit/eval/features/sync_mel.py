"""Synchformer's audio input: the log-mel spectrogram of 0.64-s segments at 16 kHz, as av-benchmark and JavisBench
make it with ``torchaudio.transforms.MelSpectrogram(sample_rate=16000, win_length=400, hop_length=160, n_fft=1024,
n_mels=128)`` (torchaudio's defaults otherwise: periodic Hann window of ``win_length`` centred in ``n_fft``,
``center=True`` with reflect padding, power 2, HTK mel scale, no filter normalisation), then ``log(x + 1e-6)``,
zero-padded to 66 frames and scaled by the dataset statistics Synchformer was trained with. Written with
``torch.stft`` so that torchaudio is not needed at run time.
"""

from __future__ import annotations

import math

import torch

SAMPLE_RATE = 16000
N_FFT, WIN_LENGTH, HOP_LENGTH, N_MELS = 1024, 400, 160, 128
MAX_SPEC_T = 66  # frames Synchformer's AST takes (65 from 10240 samples, padded by one)
MEAN, STD = -4.2677393, 4.5689974  # Synchformer's log-mel statistics; the harnesses divide by 2 * STD


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE
                   ) -> torch.Tensor:
    """(n_freqs, n_mels) triangular HTK filters from 0 Hz to Nyquist, unnormalised: torchaudio's
    ``melscale_fbanks`` step for step, in float32 as torchaudio computes it."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float32)  # (n_freqs,)
    m_max = 2595.0 * math.log10(1.0 + (sample_rate // 2) / 700.0)
    f_pts = _mel_to_hz(torch.linspace(0.0, m_max, n_mels + 2, dtype=torch.float32))  # (n_mels + 2,)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts[None] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)  # (n_freqs, n_mels)


def mel_power(audio: torch.Tensor) -> torch.Tensor:
    """(..., S) waveform at 16 kHz -> (..., 128, 1 + S // 160) mel power spectrogram (torchaudio's
    MelSpectrogram with the arguments above)."""
    shape = audio.shape
    window = torch.hann_window(WIN_LENGTH, periodic=True).to(audio.dtype).to(audio.device)  # float32, as torchaudio
    spec = torch.stft(audio.reshape(-1, shape[-1]), N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                      window=window, center=True, pad_mode="reflect", normalized=False, onesided=True,
                      return_complex=True)  # (N, 513, frames)
    power = spec.abs() ** 2
    fb = mel_filterbank().to(audio.dtype).to(audio.device)  # (513, 128)
    mel = (power.transpose(-1, -2) @ fb).transpose(-1, -2)  # (N, 128, frames)
    return mel.reshape(*shape[:-1], *mel.shape[-2:])


def sync_log_mel(segments: torch.Tensor) -> torch.Tensor:
    """(..., 10240) audio segments -> (..., 128, 66) normalised log-mel, as av-benchmark's ``encode_audio_with_sync``
    and JavisBench's ``calc_desync_score``: log(mel + 1e-6), pad (zeros) or cut to 66 frames, (x - MEAN) / (2 STD)."""
    x = torch.log(mel_power(segments) + 1e-6)  # (..., 128, 65)
    if x.shape[-1] < MAX_SPEC_T:
        x = torch.nn.functional.pad(x, (0, MAX_SPEC_T - x.shape[-1]), value=0.0)
    x = x[..., :MAX_SPEC_T]
    return (x - MEAN) / (2 * STD)
