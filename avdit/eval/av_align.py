"""AV-align (Yariv et al., "Diverse and Aligned Audio-to-Video Generation via Text-to-Video Model Adaptation").

Video peaks are the local maxima of the mean Farneback optical-flow magnitude between consecutive frames
(OpenCV, the reference's parameters); audio peaks are librosa onsets (at librosa's default 22.05 kHz, as the
reference loads audio). The score is the intersection over union of the two peak sets, an audio peak
matching a video peak strictly within one video frame.
"""

from __future__ import annotations

import numpy as np

REFERENCE_SAMPLE_RATE = 22050  # librosa.load's default, which the reference implementation uses


def flow_magnitudes(video: np.ndarray) -> np.ndarray:
    """(T,) mean optical-flow magnitude into each frame; frame 0 repeats the first pair, as the reference does."""
    import cv2

    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] < 2:
        raise ValueError(f"video must be (T >= 2, H, W, 3) uint8, got shape {video.shape}")
    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in video.astype(np.uint8)]
    magnitudes = []
    for previous, current in zip(grey[:-1], grey[1:]):
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
    """|matched| / (|A| + |V| - |matched|): an audio peak is matched if a video peak lies within 1/fps of it."""
    matched = sum(1 for a in audio_times if any(v - 1 / fps < a < v + 1 / fps for v in video_times))
    union = len(audio_times) + len(video_times) - matched
    return matched / union if union else 0.0


def av_align(video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int) -> float:
    """AV-align of one clip: video (T, H, W, 3) uint8, audio (S,) float."""
    peaks = video_peaks(video, fps)  # first: a bad video shape fails before any audio work
    return peak_iou(audio_peaks(audio, sample_rate), peaks, fps)
