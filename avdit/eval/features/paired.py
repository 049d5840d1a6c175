"""Scores of a video and its audio taken together, one per clip (AV-IB, DeSync), beside the Fréchet distances.

A ``PairedScorer`` batches clips through a network and a ``score`` function that implements a reference harness's
protocol (its rates, windows and crops); ``evaluate`` reports the mean over clips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# score(net, video (B, T, H, W, 3) uint8, audio (B, S) float in [-1, 1], fps, sample_rate) -> (B,) float64
ScoreFn = Callable[[torch.nn.Module, np.ndarray, np.ndarray, float, int], np.ndarray]


@dataclass
class PairedScorer:
    """``metric`` (e.g. 'AV-IB') per clip from ``net`` through ``score``."""

    metric: str
    net: torch.nn.Module
    score: ScoreFn
    batch_size: int = 4

    @torch.no_grad()
    def __call__(self, video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int) -> np.ndarray:
        """(B, T, H, W, 3) uint8 video and (B, S) float audio at ``sample_rate`` -> (B,) float64 scores."""
        if len(video) != len(audio):
            raise ValueError(f"{self.metric}: {len(video)} videos but {len(audio)} audio clips; give one each")
        self.net.eval()
        out = [np.asarray(self.score(self.net, video[i:i + self.batch_size], audio[i:i + self.batch_size], fps,
                                     sample_rate), dtype=np.float64)
               for i in range(0, len(video), self.batch_size)]
        return np.concatenate(out) if out else np.zeros(0)
