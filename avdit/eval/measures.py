"""Per-clip Bouncing Tones measures from decoded frames and audio only, and their summary over clips."""

from __future__ import annotations

import math

import numpy as np

from avdit.eval.bt_analysis import audio_onsets, colour_class, disc_count, fit_trajectory, pitch_class

ONSET_TOLERANCE = 0.05  # s: an onset within 50 ms of an impact counts as a hit for the F1


def sync_error_ms(impacts: list[float], onsets: np.ndarray) -> float:
    """Median distance (ms) from each video impact to the nearest audio onset; nan if either is missing.
    An extra click with no impact does not count here: ``onset_sync_error_ms`` is the other direction."""
    if not impacts or onsets.size == 0:
        return math.nan
    return float(np.median([np.abs(onsets - t).min() for t in impacts]) * 1000)


def onset_sync_error_ms(impacts: list[float], onsets: np.ndarray) -> float:
    """Median distance (ms) from each audio onset to the nearest video impact: every click counts, one off the
    impacts or between them included; nan if either is missing."""
    if not impacts or onsets.size == 0:
        return math.nan
    return float(np.median([np.abs(np.asarray(impacts) - o).min() for o in onsets]) * 1000)


def onset_f1(impacts: list[float], onsets: np.ndarray, tolerance: float = ONSET_TOLERANCE) -> float:
    """F1 of audio onsets against video impacts, one-to-one within ``tolerance`` seconds."""
    return onset_scores(impacts, onsets, tolerance)[2]


def onset_scores(impacts: list[float], onsets: np.ndarray,
                 tolerance: float = ONSET_TOLERANCE) -> tuple[float, float, float]:
    """Precision (onsets that hit an impact), recall (impacts that got an onset) and F1, matched one-to-one
    within ``tolerance`` seconds: an extra click lowers the precision, a missing one the recall."""
    if not impacts and onsets.size == 0:
        return 1.0, 1.0, 1.0
    unused = list(onsets)
    hits = 0
    for t in impacts:
        if unused:
            k = int(np.argmin([abs(o - t) for o in unused]))
            if abs(unused[k] - t) <= tolerance:
                hits += 1
                unused.pop(k)
    precision = hits / onsets.size if onsets.size else 0.0
    recall = hits / len(impacts) if impacts else 0.0
    return precision, recall, 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def majority_colour(per_frame: np.ndarray) -> int:
    """A clip's colour class: the one most of its frames' classes (``colour_class``, -1: no disc) show; -1 where
    no frame shows a disc."""
    seen = per_frame[per_frame >= 0]
    return int(np.bincount(seen).argmax()) if seen.size else -1


def clip_measures(video: np.ndarray, audio: np.ndarray) -> dict:
    """Colour and pitch class, cross-modal identity agreement, identity consistency over frames, AV sync."""
    per_frame = colour_class(video)
    seen = per_frame[per_frame >= 0]
    colour = majority_colour(per_frame)
    pitch = pitch_class(audio)
    trajectory = fit_trajectory(video) if seen.size >= 3 else None
    impacts = trajectory.impacts() if trajectory else []
    onsets = audio_onsets(audio)
    precision, recall, f1 = onset_scores(impacts, onsets)
    return {
        "colour": colour,
        "pitch": pitch,
        "identity_agreement": float(colour == pitch),
        "identity_consistency": float(np.mean(per_frame == colour)) if seen.size else 0.0,
        "one_disc": float(np.mean(disc_count(video) == 1)),  # a second disc, or none, is not a Bouncing Tones frame
        "sync_error_ms": sync_error_ms(impacts, onsets),
        "onset_sync_error_ms": onset_sync_error_ms(impacts, onsets),
        "onset_precision": precision,
        "onset_recall": recall,
        "onset_f1": f1,
        # one bounce fitted through every frame: a jump at a given/generated boundary shows as a large residual
        "trajectory_rms_px": trajectory.rms_error if trajectory else math.nan,
    }


def class_mix(drawn: np.ndarray, reference: np.ndarray) -> float:
    """1 - the total variation distance between the classes drawn (-1: no disc) and the reference clips' classes:
    1 where the generated clips hold each class as often as the data does, 1/8 where every clip is one class of
    eight spread evenly in the data. Colour = pitch cannot see a model that draws a few classes only; this can.
    Two samples of 200 clips from the same eight even classes score about 0.9 (each class count's own noise)."""
    classes = np.union1d(drawn, reference)
    counts = [np.array([np.mean(side == k) for k in classes]) for side in (drawn, reference)]
    return float(1 - 0.5 * np.abs(counts[0] - counts[1]).sum())


def median_where_defined(measures: list[dict], key: str) -> float:
    """The median of ``key`` over the measures where it is defined (not nan); nan where it never is."""
    defined = [m[key] for m in measures if not math.isnan(m.get(key, math.nan))]
    return float(np.median(defined)) if defined else math.nan


def summarise(measures: list[dict]) -> dict:
    """Means over clips (medians for the sync errors and the trajectory residual, over clips where defined)."""
    return {
        "identity_agreement": float(np.mean([m["identity_agreement"] for m in measures])),
        "identity_consistency": float(np.mean([m["identity_consistency"] for m in measures])),
        "one_disc": float(np.mean([m["one_disc"] for m in measures])),
        "sync_error_ms": median_where_defined(measures, "sync_error_ms"),
        "onset_sync_error_ms": median_where_defined(measures, "onset_sync_error_ms"),
        **{key: float(np.mean([m[key] for m in measures])) for key in ("onset_precision", "onset_recall", "onset_f1")},
        "trajectory_rms_px": median_where_defined(measures, "trajectory_rms_px"),
        "clips": len(measures),
    }
