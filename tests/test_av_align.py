import importlib.util
from pathlib import Path

import numpy as np
import pytest

from avdit.eval.av_align import (
    REFERENCE,
    ROBUST,
    audio_peaks,
    av_align_reference,
    av_align_robust,
    av_align_scores,
    chance_iou,
    match_peaks,
    matched_iou,
    peak_iou,
    robust_score,
    video_peaks,
)

GAMING = Path(__file__).parent.parent / "benchmarks" / "av_align_gaming.py"


def test_peak_iou_by_hand():
    # audio 0.5 matches video 0.55 (within 1/8 s); 1.0 matches nothing; video 1.6 unmatched
    assert peak_iou(np.array([0.5, 1.0]), np.array([0.55, 1.6]), fps=8) == pytest.approx(1 / 3)
    assert peak_iou(np.array([0.5]), np.array([0.5]), fps=8) == 1.0
    assert peak_iou(np.array([]), np.array([]), fps=8) == 0.0
    assert peak_iou(np.array([0.5]), np.array([0.5 + 1 / 8]), fps=8) == 0.0  # the window is open


def test_the_published_formula_lets_many_audio_peaks_match_one_video_peak():
    # the reference counts all three onsets near the one video peak: 3 / (3 + 1 - 3)
    assert peak_iou(np.array([0.45, 0.5, 0.55]), np.array([0.5]), fps=10) == 3.0
    assert matched_iou(np.array([0.45, 0.5, 0.55]), np.array([0.5]), fps=10) == pytest.approx(1 / 3)


def test_one_to_one_matching_by_hand():
    # window 0.1 s. Near pairs: a0-v0 (0.05), a1-v0 (0.02), a1-v1 (0.06). Taking the closest pair first (a1-v0)
    # leaves a0 alone; the largest matching is a0-v0, a1-v1. a2 and v2 have no partner.
    audio, video = np.array([0.45, 0.52, 1.3]), np.array([0.50, 0.58, 0.9])
    assert match_peaks(audio, video, fps=10).tolist() == [[0, 0], [1, 1]]
    assert matched_iou(audio, video, fps=10) == pytest.approx(2 / (3 + 3 - 2))
    # of two largest matchings the closer one: a0 takes v0 (0.02 away), not v1 (0.07)
    assert match_peaks(np.array([0.5]), np.array([0.52, 0.43]), fps=10).tolist() == [[0, 0]]
    assert match_peaks(np.array([]), video, fps=10).shape == (0, 2)
    assert matched_iou(np.array([]), np.array([]), fps=10) == 0.0


def test_chance_level_by_hand():
    # 9 frames at 10 fps: peaks can be on frames 1..7, moved by k = 2..5. A video peak on frame 4 (0.4 s) and an
    # onset at 0.42 s: no moved peak (frames 6, 7, 1, 2) is within 0.1 s, so chance is 0 and robust = IoU = 1.
    assert chance_iou(np.array([0.42]), np.array([0.4]), fps=10, frames=9) == 0.0
    assert robust_score(np.array([0.42]), np.array([0.4]), fps=10, frames=9) == 1.0
    # peaks on frames 2, 4, 6: moved by k = 2..5 they sit on frames {4,6,1} {5,7,2} {6,1,3} {7,2,4}; the onset at
    # 0.42 s matches one of them (IoU 1/3) at every k but 4: chance = 3 * (1/3) / 4 = 1/4, robust = 1/3 - 1/4
    flicker = np.array([0.2, 0.4, 0.6])
    assert chance_iou(np.array([0.42]), flicker, fps=10, frames=9) == pytest.approx(1 / 4)
    assert robust_score(np.array([0.42]), flicker, fps=10, frames=9) == pytest.approx(1 / 3 - 1 / 4)
    assert chance_iou(np.array([]), flicker, fps=10, frames=9) == 0.0


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
    assert av_align_reference(video, aligned, 8, sr) == 1.0
    assert av_align_reference(video, shifted, 8, sr) == 0.0
    # moved by 6, 7, 9 or 10 frames, one of the two video peaks lands within a frame of the other's onset
    assert av_align_robust(video, aligned, 8, sr) == pytest.approx(1 - 4 / 12 * (1 / 3))
    assert av_align_robust(video, shifted, 8, sr) < 0
    assert av_align_scores(video, aligned, 8, sr) == {REFERENCE: 1.0, ROBUST: av_align_robust(video, aligned, 8, sr)}


def test_bad_video_shape_is_a_clear_error():
    for score in (av_align_reference, av_align_robust, av_align_scores):
        with pytest.raises(ValueError, match="video must be"):
            score(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1000, np.float32), 8, 16000)


@pytest.fixture(scope="module")
def gaming_table():
    """Mean scores of 6 synthetic Landscape clips of each kind in benchmarks/av_align_gaming.py."""
    spec = importlib.util.spec_from_file_location("av_align_gaming", GAMING)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = ("bouncing ball, a click at each impact", "bouncing ball, clicks 0.25 s late",
             "stutter video, random clicks", "stutter video, clicks every 0.1 s", "noise video, noise audio",
             "static video, silence")
    return {case: module.score_case(case, clips=6) for case in cases}


def test_the_published_score_is_gamed_and_the_robust_one_is_not(gaming_table):
    aligned = gaming_table["bouncing ball, a click at each impact"]
    gaming = [gaming_table[c] for c in ("stutter video, random clicks", "stutter video, clicks every 0.1 s",
                                         "noise video, noise audio")]
    assert aligned["reference"] > 0.5 and aligned["robust"] > 0.3  # the aligned clips score high under both
    for case in gaming:  # the defect: flicker and noise score as high as true alignment, or higher (even > 1)
        assert case["reference"] > aligned["reference"] - 0.05
        assert abs(case["robust"]) < 0.15 and case["robust"] < aligned["robust"] - 0.25
    assert gaming_table["stutter video, clicks every 0.1 s"]["reference"] > 1
    late = gaming_table["bouncing ball, clicks 0.25 s late"]
    assert late["reference"] < aligned["reference"] and late["robust"] < 0.05
    assert gaming_table["static video, silence"]["reference"] == gaming_table["static video, silence"]["robust"] == 0
