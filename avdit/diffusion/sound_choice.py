"""A stream's sound kept to its first window's: a rolled window whose audio sounds unlike it is drawn again.

One window's audio, drawn given its video, now and then plays a neighbouring note (about once in 400 windows with
the bundled model, a draw of the noise: another draw of the same window is almost always right), and the network's
own likelihood does not tell it from a right one (docs/streams.md). The long-term spectrum of what the stream played
first does: a wrong note puts its energy at other frequencies. So where ``SamplingConfig.audio_candidates`` is k > 1
(2 by default), a rolled window whose audio is more unlike the first window's (``unlike``: 1 - the cosine similarity
of their Welch spectra) than ``redraw_threshold`` (a few times the stream's own median, and at least a floor) is
drawn again given the window's video, up to k draws in all, and the draw most alike is kept. One window in 40
to 140 is drawn again (single v2a windows; joint streams), so a stream costs about as much as with one draw. Every
draw is the model's own sample given the same picture; the choice only keeps the stream's sound the sound it began
with, as the held video distribution keeps its picture's (``avdit.diffusion.spread``).
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


def unlike(sound: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """How unlike its reference each sound is: 1 - the cosine similarity of their spectra (0: alike; a wrong note
    scores 0.1-0.9, a right one mostly below 0.01). sound (B, S), reference (B, S') -> (B,)."""
    n_fft = fft_size(sample_rate, min(sound.shape[-1], reference.shape[-1]))
    return 1 - (spectrum(sound, n_fft) * spectrum(reference, n_fft)).sum(-1)


def redraw_threshold(past: list[torch.Tensor]) -> torch.Tensor | float:
    """Above what unlikeness (``unlike``) a rolled window's audio is drawn again: ``REDRAW_FACTOR`` times the
    stream's median over the windows before (each stream's own: some sound more varied than others), and at least
    ``REDRAW_FLOOR``. past: (B,) per window so far (empty: the floor)."""
    if not past:
        return REDRAW_FLOOR
    return (REDRAW_FACTOR * torch.stack(past).median(0).values).clamp_min(REDRAW_FLOOR)


# a rolled window's audio is drawn again where it is more unlike the first window's than this floor, and than this many
# times the stream's median: over 1,576 single v2a windows of held-out clips, 11 of 13 wrong notes scored above, and
# 2.5 % of all windows (the other two were alike a first window itself between two notes; docs/streams.md)
REDRAW_FLOOR, REDRAW_FACTOR = 0.03, 4.0
