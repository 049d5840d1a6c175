"""A stream's sound kept to its first window's: of a rolled window's audio draws, the one whose spectrum is closest.

One window's audio, drawn given its video, now and then plays a neighbouring note (about once in 400 windows with
the bundled model, a draw of the noise: another draw of the same window is almost always right), and the network's
own likelihood does not tell it from a right one (docs/streams.md). The long-term spectrum of what the stream played
first does: a wrong note puts its energy at other frequencies. So where ``SamplingConfig.audio_candidates`` is k > 1
(an option: 1 by default, as k = 2 makes a stream about a sixth slower), each rolled window's audio is drawn k times
given the window's video, and the draw whose spectrum is most alike the first window's (cosine similarity of Welch
spectra) is kept. Every draw is the model's own sample given the same picture; the choice only keeps the stream's
sound the sound it began with, as the held video distribution keeps its picture's (``avdit.diffusion.spread``).
"""

from __future__ import annotations

import math

import torch


def fft_size(sample_rate: int, samples: int) -> int:
    """Frames of about 1/8 s (2048 at 16 kHz: 7.8-Hz bins, finer than a semitone above 140 Hz), a power of two no
    longer than ``samples``."""
    return 2 ** min(round(math.log2(sample_rate / 8)), int(math.log2(samples)))


def spectrum(audio: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Welch's spectrum of each clip, unit norm: the rms magnitude per frequency over Hann frames of ``n_fft``
    samples overlapping by half. audio (B, S) -> (B, n_fft // 2 + 1)."""
    frames = torch.stft(audio.float(), n_fft, hop_length=n_fft // 2, window=torch.hann_window(n_fft),
                        center=False, return_complex=True)  # (B, F, frames)
    magnitude = frames.abs().pow(2).mean(-1).sqrt()  # (B, F)
    return magnitude / magnitude.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def closest(draws: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Which draw of each example sounds most like its reference: draws (B, k, S), reference (B, S') -> (B,) index."""
    batch, k, _ = draws.shape
    n_fft = fft_size(sample_rate, min(draws.shape[-1], reference.shape[-1]))
    made = spectrum(draws.flatten(0, 1), n_fft).view(batch, k, -1)  # (B, k, F)
    wanted = spectrum(reference, n_fft)  # (B, F)
    return torch.einsum("bkf,bf->bk", made, wanted).argmax(1)
