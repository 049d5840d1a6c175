"""Measures of long Bouncing Tones clips (more than one 2.125-s window): does the clip hold together?

A long clip is cut into windows of one clip (17 frames, 34000 samples) that start every 16 frames, the last one
flush with the end; ``clip_measures`` scores each window. Over the clip:

- identity held: every window shows the colour and plays the pitch of the first window (the input's class for
  a continuation);
- one disc: the share of the clip's frames that hold exactly one disc (``disc_count``);
- sync per window: the median of each window's two-way sync errors, beside the first window's;
- continuity: one bounce fitted through every frame of the clip (``fit_trajectory``). A disc that jumps, changes
  its bounce or drifts at a seam between generated windows leaves a residual no single bounce explains, so the
  residual over the whole clip, against the median window's, shows a seam that does not hold.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from avdit.data import bouncing_tones as bt
from avdit.eval.bt_analysis import colour_class, disc_area, disc_centres, disc_count, fit_trajectory, pitch_class
from avdit.eval.measures import clip_measures, majority_colour, median_where_defined

WINDOW_FRAMES = bt.FRAMES
WINDOW_HOP = bt.FRAMES - 1  # frames between window starts: neighbours share one frame


def window_starts(frames: int) -> list[int]:
    """First frame of each window of a ``frames``-long clip: every ``WINDOW_HOP`` frames, then one flush with the
    end so the last frames are measured too."""
    if frames < WINDOW_FRAMES:
        raise ValueError(f"a long clip needs at least {WINDOW_FRAMES} frames, got {frames}")
    starts = list(range(0, frames - WINDOW_FRAMES + 1, WINDOW_HOP))
    if starts[-1] != frames - WINDOW_FRAMES:
        starts.append(frames - WINDOW_FRAMES)
    return starts


def window_measures(video: np.ndarray, audio: np.ndarray) -> list[dict]:
    """``clip_measures`` of each window of a long clip: video (T, 64, 64, 3) uint8, audio (S,) float at 16 kHz."""
    per_frame = bt.SAMPLES_PER_FRAME
    if abs(audio.shape[0] - video.shape[0] * per_frame) > per_frame:
        raise ValueError(f"{video.shape[0]} frames need about {video.shape[0] * per_frame} audio samples, "
                         f"got {audio.shape[0]}")
    audio = np.pad(audio, (0, max(0, video.shape[0] * per_frame - audio.shape[0])))
    return [clip_measures(video[s:s + WINDOW_FRAMES], audio[s * per_frame:s * per_frame + bt.NUM_SAMPLES])
            for s in window_starts(video.shape[0])]


def long_clip_measures(video: np.ndarray, audio: np.ndarray) -> dict:
    """Per-clip figures of a long clip (see the module doc)."""
    windows = window_measures(video, audio)
    first = windows[0]
    held = all(w["colour"] == first["colour"] and w["pitch"] == first["pitch"] for w in windows)

    _, _, area = disc_centres(video)
    whole = fit_trajectory(video) if (area > 1).sum() >= 3 else None
    return {
        "windows": len(windows),
        "identity_held": float(held and first["colour"] >= 0),
        "identity_agreement": float(np.mean([w["identity_agreement"] for w in windows])),
        "one_disc": float(np.mean(disc_count(video) == 1)),
        "sync_error_ms": median_where_defined(windows, "sync_error_ms"),
        "onset_sync_error_ms": median_where_defined(windows, "onset_sync_error_ms"),
        "first_window_sync_error_ms": first["sync_error_ms"],
        "first_window_onset_sync_error_ms": first["onset_sync_error_ms"],
        "onset_f1": float(np.mean([w["onset_f1"] for w in windows])),
        "window_trajectory_rms_px": median_where_defined(windows, "trajectory_rms_px"),
        "clip_trajectory_rms_px": whole.rms_error if whole else math.nan,
    }


def summarise_long(measures: list[dict]) -> dict:
    """Over clips: shares and means, medians for sync errors and residuals."""
    means = ("identity_held", "identity_agreement", "one_disc", "onset_f1")
    medians = ("sync_error_ms", "onset_sync_error_ms", "first_window_sync_error_ms",
               "first_window_onset_sync_error_ms", "window_trajectory_rms_px", "clip_trajectory_rms_px")
    return {**{k: float(np.mean([m[k] for m in measures])) for k in means},
            **{k: median_where_defined(measures, k) for k in medians}, "clips": len(measures)}


def stream_windows(video: np.ndarray, audio: np.ndarray, sync_every: int = 8) -> list[dict]:
    """Cheap measures of every window of a long stream (minutes: ``clip_measures`` on all of them would take longer
    than making the stream): colour and pitch class, the disc's size (mean ``disc_area``, px^2) and brightness (99.5th
    percentile of the brightest channel), the share of its frames that hold exactly one disc (``disc_count``); the
    two-way sync on every ``sync_every``-th window only (nan elsewhere).
    video (T, 64, 64, 3) uint8, audio (S,) float at 16 kHz."""
    per_frame = bt.SAMPLES_PER_FRAME
    audio = np.pad(audio, (0, max(0, video.shape[0] * per_frame - audio.shape[0])))
    rows = []
    for k, s in enumerate(window_starts(video.shape[0])):
        frames, samples = video[s:s + WINDOW_FRAMES], audio[s * per_frame:s * per_frame + bt.NUM_SAMPLES]
        row = {"start_s": s / bt.FPS, "colour": majority_colour(colour_class(frames)),
               "pitch": pitch_class(samples), "size_px2": float(disc_area(frames).mean()),
               "brightness": float(np.percentile(frames.max(axis=-1), 99.5)),
               "one_disc": float(np.mean(disc_count(frames) == 1)),
               "sync_error_ms": math.nan, "onset_sync_error_ms": math.nan}
        if k % sync_every == 0:
            measured = clip_measures(frames, samples)
            row.update(sync_error_ms=measured["sync_error_ms"], onset_sync_error_ms=measured["onset_sync_error_ms"])
        rows.append(row)
    return rows


def off_subject(window: dict, first: dict) -> bool:
    """Whether a window of ``stream_windows`` has lost the first window's subject: its colour or pitch class is not
    the first window's (whose own colour and pitch must agree)."""
    return not (window["colour"] == window["pitch"] == first["colour"] == first["pitch"])


def time_held(windows: list[dict], tolerance: float = 0.1) -> dict:
    """How long a stream keeps its first window: the start (s) of the first window whose colour or pitch class is
    not the first window's (subject lost), or whose disc size or brightness is off the first window's by more than
    ``tolerance`` or with a frame that does not hold exactly one disc (ball lost; that window's start is also
    ``discs_off_s``); None where every window holds.
    The disc count is not read against the first window: a stream whose first window already shows a second disc
    beside the first would keep its size and colour, and is lost from there. (Windows measured before the count
    existed have no ``one_disc`` and are judged without it.)"""
    first = windows[0]
    subject = ball = discs = None
    for w in windows:
        if subject is None and off_subject(w, first):
            subject = w["start_s"]
        if discs is None and w.get("one_disc", 1.0) < 1.0:
            discs = w["start_s"]
        off = [abs(w[k] - first[k]) > tolerance * first[k] for k in ("size_px2", "brightness")]
        off.append(discs is not None)
        if ball is None and any(off):
            ball = w["start_s"]
    return {"subject_lost_s": subject, "ball_lost_s": ball, "discs_off_s": discs,
            "lost_s": min((t for t in (subject, ball) if t is not None), default=None)}


def subject_losses(streams: list[list[dict]]) -> dict:
    """How the streams (``stream_windows`` of each) that lost their subject lost it: what was off in the first
    window off (the pitch, the colour or both), how many never came back (their last window is off too), how many
    were off for no more than one window at a time, and how many windows of all streams were off (``off_subject``,
    as ``time_held`` counts them). What was off is read against the first window's colour."""
    first_off = {"pitch": 0, "colour": 0, "both": 0}
    lasting = brief = off_windows = windows = 0
    for stream in streams:
        off = [off_subject(w, stream[0]) for w in stream]
        windows, off_windows = windows + len(off), off_windows + sum(off)
        if not any(off):
            continue
        k = off.index(True)
        subject = stream[0]["colour"]
        colour, pitch = stream[k]["colour"] != subject, stream[k]["pitch"] != subject
        first_off["both" if colour and pitch else "colour" if colour else "pitch"] += 1
        lasting += off[-1]
        brief += not any(a and b for a, b in itertools.pairwise(off))
    return {"lost": sum(first_off.values()), "first_off": first_off, "lasting": lasting, "brief": brief,
            "off_windows": off_windows, "windows": windows}
