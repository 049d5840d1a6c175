import numpy as np
import pytest

from avdit.eval.av_align import audio_peaks, av_align, peak_iou, video_peaks


def test_peak_iou_by_hand():
    # audio 0.5 matches video 0.55 (within 1/8 s); 1.0 matches nothing; video 1.6 unmatched
    assert peak_iou(np.array([0.5, 1.0]), np.array([0.55, 1.6]), fps=8) == pytest.approx(1 / 3)
    assert peak_iou(np.array([0.5]), np.array([0.5]), fps=8) == 1.0
    assert peak_iou(np.array([]), np.array([]), fps=8) == 0.0
    assert peak_iou(np.array([0.5]), np.array([0.5 + 1 / 8]), fps=8) == 0.0  # the window is open


def moving_square(fast_frames: set[int], frames: int = 17) -> np.ndarray:
    """A square that stands still except for a 6 px jump into each frame of ``fast_frames``."""
    video = np.zeros((frames, 64, 64, 3), dtype=np.uint8)
    x = 10
    for j in range(frames):
        x += 6 if j in fast_frames else 0
        video[j, 20:36, x:x + 12] = 200
    return video


def test_video_peaks_are_the_frames_of_fast_motion():
    assert np.allclose(video_peaks(moving_square({5, 11}), fps=8), [5 / 8, 11 / 8])


def test_audio_peaks_find_clicks_to_within_a_hop():
    sr, times = 16000, [0.4, 1.1, 1.7]
    audio = np.zeros(34000, dtype=np.float32)
    rng = np.random.default_rng(0)
    for t in times:
        start = int(t * sr)
        audio[start:start + 800] = rng.normal(0, 0.5, 800) * np.exp(-np.arange(800) / 200)
    found = audio_peaks(audio, sr)
    assert len(found) == len(times)
    assert np.abs(found - times).max() < 0.03  # librosa's hop is 512 / 22050 s


def test_aligned_clip_scores_higher_than_a_misaligned_one():
    sr = 16000
    video = moving_square({5, 11})
    aligned = np.zeros(34000, dtype=np.float32)
    shifted = np.zeros(34000, dtype=np.float32)
    for t, target in ((5 / 8, aligned), (11 / 8, aligned), (0.3, shifted), (1.0, shifted)):
        start = int(t * sr)
        target[start:start + 800] = np.sin(np.arange(800) * 0.3) * np.exp(-np.arange(800) / 200)
    assert av_align(video, aligned, 8, sr) == 1.0
    assert av_align(video, shifted, 8, sr) == 0.0


def test_bad_video_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="video must be"):
        av_align(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1000, np.float32), 8, 16000)
