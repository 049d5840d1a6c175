"""AV-align (Yariv et al., "Diverse and Aligned Audio-to-Video Generation via Text-to-Video Model Adaptation"),
as published and in a form that cannot be gamed.

Video peaks are the local maxima of the mean Farneback optical-flow magnitude between consecutive frames
(OpenCV, the reference's parameters); audio peaks are librosa onsets (at librosa's default 22.05 kHz, as the
reference loads audio). An audio peak and a video peak match when they lie strictly within one video frame
(1 / fps) of each other.

``av_align_reference`` is the published score (guyyariv/TempoTokens ``av_align.py``), the number the AVDiT paper
reports: ``matched / (|A| + |V| - matched)``, an audio peak counting as matched if *any* video peak is near it.
It can be gamed (``benchmarks/av_align_gaming.py``, docs/studies.md): a video whose flow peaks every other frame
has a peak within one frame of every instant, so any audio matches; several audio peaks may match one video peak,
so the score can even exceed 1; it does not ask whether the match is better than chance.

``av_align_robust`` is what ``avdit evaluate`` leads with: the IoU of a one-to-one matching (each video peak
matches at most one audio peak; ``match_peaks``) minus the same IoU expected by chance, its mean over the video
peaks moved circularly by 2 or more frames (``chance_iou``). 1 - chance for perfectly aligned sparse events, about
0 for audio and video whose peaks fall anywhere (a flickering video), below 0 when the peaks avoid each other.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy.optimize import linear_sum_assignment

REFERENCE_SAMPLE_RATE = 22050  # librosa.load's default, which the reference implementation uses
REFERENCE, ROBUST = "AV-align", "AV-align-robust"  # the names evaluate reports the two scores under


def flow_magnitudes(video: np.ndarray) -> np.ndarray:
    """(T,) mean optical-flow magnitude into each frame; frame 0 repeats the first pair, as the reference does."""
    import cv2

    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] < 2:
        raise ValueError(f"video must be (T >= 2, H, W, 3) uint8, got shape {video.shape}")
    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in video.astype(np.uint8)]
    magnitudes = []
    for previous, current in pairwise(grey):
        flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitudes.append(float(cv2.magnitude(flow[..., 0], flow[..., 1]).mean()))
    return np.array(magnitudes[:1] + magnitudes)


def video_peaks(video: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) of strict local maxima of the flow magnitude curve."""
    curve = flow_magnitudes(video)
    inner = np.flatnonzero((curve[1:-1] > curve[:-2]) & (curve[1:-1] > curve[2:])) + 1
    return inner / fps


def audio_peaks(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times (s) by librosa's onset detector on the onset-strength envelope."""
    import librosa

    y = librosa.resample(audio.astype(np.float32), orig_sr=sample_rate, target_sr=REFERENCE_SAMPLE_RATE)
    envelope = librosa.onset.onset_strength(y=y, sr=REFERENCE_SAMPLE_RATE)
    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=REFERENCE_SAMPLE_RATE)
    return librosa.frames_to_time(frames, sr=REFERENCE_SAMPLE_RATE)


def peak_iou(audio_times: np.ndarray, video_times: np.ndarray, fps: float) -> float:
    """The reference's score: |matched| / (|A| + |V| - |matched|), an audio peak matched if any video peak lies
    within 1/fps of it (so it can exceed 1). 0 where the reference divides by zero (no peaks at all)."""
    matched = sum(1 for a in audio_times if any(v - 1 / fps < a < v + 1 / fps for v in video_times))
    union = len(audio_times) + len(video_times) - matched
    return matched / union if union else 0.0


def match_peaks(audio_times: np.ndarray, video_times: np.ndarray, fps: float) -> np.ndarray:
    """(K, 2) index pairs (audio, video) of a largest one-to-one matching of peaks within 1/fps of each other,
    of least total time difference among the largest."""
    a, v = np.asarray(audio_times, float), np.asarray(video_times, float)
    if not len(a) or not len(v):
        return np.zeros((0, 2), dtype=int)
    distance = np.abs(a[:, None] - v[None, :])  # (A, V)
    near = distance < 1 / fps
    # a pair outside the window costs more than any full set of pairs inside it: the assignment takes as many
    # near pairs as it can, then the closest; the far pairs it must take to be complete are dropped after
    cost = np.where(near, distance, (min(len(a), len(v)) + 1) / fps)
    rows, cols = linear_sum_assignment(cost)
    keep = near[rows, cols]
    return np.stack([rows[keep], cols[keep]], axis=1)


def matched_iou(audio_times: np.ndarray, video_times: np.ndarray, fps: float) -> float:
    """|one-to-one matches| / (|A| + |V| - |matches|), in [0, 1]; 0 when there are no peaks at all."""
    matched = len(match_peaks(audio_times, video_times, fps))
    union = len(audio_times) + len(video_times) - matched
    return matched / union if union else 0.0


def chance_iou(audio_times: np.ndarray, video_times: np.ndarray, fps: float, frames: int) -> float:
    """``matched_iou`` expected of a video not aligned with the audio: its mean over the video peaks moved
    circularly among the frames a peak can be on (1 .. T-2) by k = 2 .. T-4 frames, every shift that takes a
    peak out of the window it matched in. A video that peaks every other frame matches as well at any shift, so
    its chance IoU is its IoU; the audio is left as it is, so its onsets keep their own distribution in time."""
    cycle = frames - 2  # a local maximum is never on the first or last frame
    shifts = range(2, cycle - 1)
    if not len(audio_times) or not len(video_times) or not shifts:
        return 0.0
    slots = np.round(np.asarray(video_times) * fps).astype(int) - 1  # (V,) frame - 1, in [0, cycle)
    return float(np.mean([matched_iou(audio_times, ((slots + k) % cycle + 1) / fps, fps) for k in shifts]))


def robust_score(audio_times: np.ndarray, video_times: np.ndarray, fps: float, frames: int) -> float:
    """One-to-one IoU above chance, in [-1, 1]: ``matched_iou - chance_iou``."""
    return matched_iou(audio_times, video_times, fps) - chance_iou(audio_times, video_times, fps, frames)


def clip_peaks(video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(audio peak times, video peak times) of one clip: video (T, H, W, 3) uint8, audio (S,) float."""
    peaks = video_peaks(video, fps)  # first: a bad video shape fails before any audio work
    return audio_peaks(audio, sample_rate), peaks


def av_align_reference(video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int) -> float:
    """The published AV-align of one clip (the paper's number; gameable, see the module's docstring)."""
    return peak_iou(*clip_peaks(video, audio, fps, sample_rate), fps)


def av_align_robust(video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int) -> float:
    """One-to-one, chance-corrected AV-align of one clip."""
    return robust_score(*clip_peaks(video, audio, fps, sample_rate), fps, len(video))


def av_align_scores(video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int) -> dict[str, float]:
    """Both scores of one clip from one peak detection: {REFERENCE: published, ROBUST: robust}."""
    audio_times, video_times = clip_peaks(video, audio, fps, sample_rate)
    return {REFERENCE: peak_iou(audio_times, video_times, fps),
            ROBUST: robust_score(audio_times, video_times, fps, len(video))}
