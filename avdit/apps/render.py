"""Contact sheets: each clip's frames in a row with its waveform beneath, the given segments marked."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from avdit.utils.atomic import atomic_path
from avdit.layout import AUDIO, VIDEO, ClipLayout

GIVEN = np.array([80, 200, 120], np.uint8)  # green: given (clean) segment
GENERATED = np.array([230, 120, 60], np.uint8)  # orange: generated segment
WAVE_HEIGHT = 48
BAR = 4


def _waveform(audio: np.ndarray, width: int) -> np.ndarray:
    """(WAVE_HEIGHT, width, 3) uint8: min/max of the samples under each column."""
    image = np.full((WAVE_HEIGHT, width, 3), 24, np.uint8)
    columns = np.array_split(audio, width)
    mid = WAVE_HEIGHT // 2
    for x, col in enumerate(columns):
        if col.size:
            lo, hi = int(mid - col.max() * (mid - 1)), int(mid - col.min() * (mid - 1))
            image[max(0, lo):min(WAVE_HEIGHT, hi + 1), x] = (200, 200, 200)
    return image


def _bar(given_row: np.ndarray, layout: ClipLayout, width: int, unit: float) -> np.ndarray:
    """(BAR, width, 3): each segment's span coloured by given / generated; ``unit`` px per second."""
    bar = np.zeros((BAR, width, 3), np.uint8)
    for n in range(layout.num_segments):
        lo, hi = (round(float(layout.segment_bounds[k]) * unit) for k in (n, n + 1))
        bar[:, lo:hi] = GIVEN if given_row[n] else GENERATED
    return bar


def contact_sheet(videos: np.ndarray, audios: np.ndarray, layout: ClipLayout, given: np.ndarray) -> np.ndarray:
    """videos (K, T, H, W, 3) uint8, audios (K, S), given (M, N) bool -> an RGB image, one row per clip."""
    rows = []
    for video, audio in zip(videos, audios):
        frames = np.concatenate(list(video), axis=1)  # (H, T * W, 3)
        width = frames.shape[1]
        unit = width / float(layout.duration)  # a frame of W px lasts 1 / fps s
        rows.append(np.concatenate([_bar(given[VIDEO], layout, width, unit), frames,
                                    _bar(given[AUDIO], layout, width, unit), _waveform(audio, width),
                                    np.zeros((6, width, 3), np.uint8)], axis=0))
    return np.concatenate(rows, axis=0)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    with atomic_path(path, ".png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
