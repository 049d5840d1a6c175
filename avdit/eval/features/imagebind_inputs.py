"""ImageBind's inputs for AV-IB, made from clips in memory as ImageBind's ``imagebind/data.py`` makes them from files.

JavisBench's ``ImageBindDataset`` calls ``load_and_transform_video_data`` and ``load_and_transform_audio_data`` with
their defaults; this module is those two functions (and the pytorchvideo pieces they use, at the commit ImageBind's
requirements pin, 28fe037) written afresh:

- clips: pytorchvideo's ``ConstantClipsPerVideoSampler`` — ``n`` windows of 2 s starting at
  k * max(D - 2, 0) / (n - 1) for k = 0..n-1, exact fractions of the duration D (a clip shorter than 2 s gives n
  copies of [0, 2));
- video: 5 windows; decord's ``get_clip`` takes the frames i with ceil(fps * start) <= i < min(ceil(fps * end), T),
  i.e. the frames whose display interval [i / fps, (i + 1) / fps) begins inside [start, end), and
  ``UniformTemporalSubsample(2)`` keeps the first and last of them. A decoded file of T frames at ``fps`` has
  duration T / fps and frame i is the picture shown (sample and hold) from i / fps, so frames in memory map one to
  one onto decord's; the first frame kept is the one shown at ceil(start * fps) / fps, the first frame boundary at or
  after ``start``, and the last the one shown just before ``end``. Then /255, ``ShortSideScale(224)`` (bilinear,
  no antialiasing, in float32 as pytorchvideo requires), CLIP normalisation and 3 crops of 224 (left/top, centre,
  right/bottom): (15, 3, 2, 224, 224) per video;
- audio: 3 windows of 2 s at 16 kHz (samples int(start * 16000) to int(end * 16000)), each minus its mean (in
  place, as ImageBind's ``waveform -= waveform.mean()`` on a view does: where windows overlap, the later one starts
  from samples already shifted by the earlier one's mean; only fbank frames across such a boundary notice), Kaldi
  fbank (128 mel bins, 25 ms Hann frames every 10 ms, power spectrum, log), padded with zeros or cut to 204 frames,
  then (x + 4.268) / 9.138: (3, 1, 128, 204) per clip.

Audio at another rate is resampled to 16 kHz with ``scipy.signal.resample_poly`` (ImageBind uses torchaudio's
windowed-sinc resampler; both are band-limited and agree within their filters' ripple).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from avdit.eval.features.rates import resample

SAMPLE_RATE = 16000
CLIP_SECONDS = 2  # ImageBind's clip_duration, for video and audio
VIDEO_CLIPS, AUDIO_CLIPS = 5, 3  # clips_per_video of load_and_transform_video_data / _audio_data
FRAMES_PER_CLIP = 2  # UniformTemporalSubsample(num_samples=clip_duration)
SIZE = 224
CROPS = 3
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MEL_BINS, TARGET_FRAMES = 128, 204
FBANK_MEAN, FBANK_STD = -4.268, 9.138
WINDOW, SHIFT, FFT = 400, 160, 512  # 25 ms and 10 ms at 16 kHz; the window rounded up to a power of two
PREEMPHASIS = 0.97
FLOAT32_EPS = torch.finfo(torch.float32).eps  # Kaldi's log floor in torchaudio, whatever the dtype


def clip_windows(duration: float, clips: int, seconds: int = CLIP_SECONDS) -> list[tuple[Fraction, Fraction]]:
    """``ConstantClipsPerVideoSampler`` read out to the end: (start, end) in seconds, as exact fractions."""
    latest = Fraction(max(duration - seconds, 0))  # Fraction of the float, as pytorchvideo takes it
    step = Fraction(latest, max(clips - 1, 1))
    out = []
    for k in range(clips):
        out.append((step * k, step * k + seconds))
        if step * (k + 1) > latest:
            break
    return out


def frame_pairs(frames: int, fps: float) -> list[tuple[int, int]]:
    """The two frame indices each of ImageBind's 5 video clips keeps, for ``frames`` frames at ``fps``."""
    out = []
    for start, end in clip_windows(frames / fps, VIDEO_CLIPS):
        first, stop = math.ceil(fps * float(start)), min(math.ceil(fps * float(end)), frames)
        if stop <= first:
            raise ValueError(f"AV-IB: no frame in [{float(start)}, {float(end)}) s of {frames} frames at {fps} fps")
        picks = torch.linspace(0, stop - first - 1, FRAMES_PER_CLIP).long()  # UniformTemporalSubsample
        out.append(tuple(first + int(p) for p in picks))
    return out


def crop_offsets(height: int, width: int, size: int = SIZE) -> list[tuple[int, int]]:
    """(y, x) of ImageBind's 3 ``uniform_crop``s: along the long side start, centre, end; centred on the short."""
    y, x = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if height > width:
        return [(0, x), (y, x), (height - size, x)]
    return [(y, 0), (y, x), (y, width - size)]


def video_clips(video: np.ndarray | torch.Tensor, fps: float) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 15, 3, 2, 224, 224) float32: 5 clips x 3 crops, clip-major as ImageBind stacks."""
    video = torch.as_tensor(video)
    picks = [i for pair in frame_pairs(video.shape[1], fps) for i in pair]
    x = video[:, picks].permute(0, 4, 1, 2, 3).float() / 255.0  # (B, 3, 10, H, W)
    b, c, t, h, w = x.shape
    if w < h:
        size = (math.floor(h / w * SIZE), SIZE)
    else:
        size = (SIZE, math.floor(w / h * SIZE))
    # ShortSideScale interpolates a (C, T, H, W) clip: C as the batch, T as channels; the same per frame
    x = F.interpolate(x.reshape(b * c, t, h, w), size=size, mode="bilinear", align_corners=False)
    x = x.reshape(b, c, VIDEO_CLIPS, FRAMES_PER_CLIP, *size)  # (B, 3, 5, 2, H', W')
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1, 1, 1)
    x = (x - mean) / std  # NormalizeVideo
    crops = [x[..., y:y + SIZE, x0:x0 + SIZE] for y, x0 in crop_offsets(*size)]  # 3 x (B, 3, 5, 2, 224, 224)
    out = torch.stack(crops, dim=3)  # (B, 3, 5, 3, 2, 224, 224)
    return out.permute(0, 2, 3, 1, 4, 5, 6).reshape(b, VIDEO_CLIPS * CROPS, c, FRAMES_PER_CLIP, SIZE, SIZE)


def mel_banks(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(257, 128) Kaldi mel filters (20 Hz to Nyquist, HTK mel), computed in float32 as torchaudio computes them;
    the Nyquist row is zero."""
    def mel(f):
        return 1127.0 * (1.0 + f / 700.0).log()

    low, high = 1127.0 * math.log(1.0 + 20.0 / 700.0), 1127.0 * math.log(1.0 + (SAMPLE_RATE / 2) / 700.0)
    delta = (high - low) / (MEL_BINS + 1)
    band = torch.arange(MEL_BINS).unsqueeze(1)  # (128, 1)
    left, centre, right = low + band * delta, low + (band + 1.0) * delta, low + (band + 2.0) * delta
    bins = mel(SAMPLE_RATE / FFT * torch.arange(FFT // 2)).unsqueeze(0)  # (1, 256) mel of each FFT bin
    up, down = (bins - left) / (centre - left), (right - bins) / (right - centre)
    weights = torch.max(torch.zeros(1), torch.min(up, down))  # (128, 256)
    return F.pad(weights, (0, 1)).T.to(dtype)  # (257, 128)


def kaldi_fbank(wave: torch.Tensor) -> torch.Tensor:
    """(S,) 16 kHz -> (frames, 128) log mel energies: ``torchaudio.compliance.kaldi.fbank`` with ImageBind's options
    (htk_compat, no energy, hanning window, no dither, 25 ms / 10 ms, DC offset removed, preemphasis 0.97)."""
    if wave.shape[-1] < WINDOW:
        return wave.new_zeros(0, MEL_BINS)
    frames = wave.unfold(-1, WINDOW, SHIFT)  # (m, 400), snip_edges
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - PREEMPHASIS * previous
    frames = frames * torch.hann_window(WINDOW, periodic=False, dtype=wave.dtype)
    power = torch.fft.rfft(frames, n=FFT).abs().pow(2.0)  # (m, 257)
    energies = power @ mel_banks(wave.dtype)  # (m, 128)
    return torch.max(energies, torch.tensor(FLOAT32_EPS, dtype=wave.dtype)).log()


def audio_clips(audio: np.ndarray | torch.Tensor, sample_rate: int, dtype: torch.dtype = torch.float32
                ) -> torch.Tensor:
    """(B, S) floats in [-1, 1] at ``sample_rate`` -> (B, 3, 1, 128, 204) normalised fbanks, in ``dtype``."""
    audio = resample(np.asarray(audio), sample_rate, SAMPLE_RATE)  # (B, S')
    audio = torch.as_tensor(np.ascontiguousarray(audio)).to(dtype)
    out = []
    for wave in audio.clone():
        specs = []
        for start, end in clip_windows(wave.shape[-1] / SAMPLE_RATE, AUDIO_CLIPS):
            piece = wave[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]  # a view, as in ImageBind
            piece -= piece.mean()  # in place: an overlapping later clip sees this clip's samples shifted
            fbank = kaldi_fbank(piece).T  # (128, m)
            fbank = F.pad(fbank, (0, TARGET_FRAMES - fbank.shape[1])) if fbank.shape[1] < TARGET_FRAMES \
                else fbank[:, :TARGET_FRAMES]  # (128, 204)
            specs.append((fbank[None] - FBANK_MEAN) / FBANK_STD)
        out.append(torch.stack(specs))  # (3, 1, 128, 204)
    return torch.stack(out)
