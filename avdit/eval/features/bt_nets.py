"""Small Bouncing Tones nets whose penultimate features give BT-FVD and BT-FAD, with no download.

Each net reads one modality of a decoded clip and is trained (``avdit train-features``) to predict the clip's
parameters: identity class, the 1/8 s bins holding an impact, period and phase (the video net also the
disc's radius, x and bounce height). Their 128-d penultimate activations are the features. They also see
clips whose given segments are blanked, so that the evaluation can exclude given frames and audio the same
way from reference and generated clips (see ``blank_given``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avdit.data import bouncing_tones as bt
from avdit.eval.features.log_mel import LogMel

FEATURES = 128
IMPACT_BINS = bt.FRAMES  # bin j holds the impacts in [j / 8, (j + 1) / 8) s


@dataclass(frozen=True)
class Targets:
    """What the nets predict, as tensors over a batch."""

    k: torch.Tensor  # (B,) long
    impacts: torch.Tensor  # (B, 17) 0/1
    period: torch.Tensor  # (B,) normalised
    phase: torch.Tensor  # (B, 2) cos, sin of 2 pi phase
    geometry: torch.Tensor  # (B, 3) radius, x, height, normalised

    @classmethod
    def of(cls, params: list[bt.BTParams]) -> "Targets":
        impacts = torch.zeros(len(params), IMPACT_BINS)
        for i, p in enumerate(params):
            for t in p.impacts:
                impacts[i, min(IMPACT_BINS - 1, int(t * bt.FPS))] = 1.0
        angle = torch.tensor([2 * math.pi * p.phase for p in params])
        return cls(
            k=torch.tensor([p.k for p in params]),
            impacts=impacts,
            period=torch.tensor([(p.period - 0.75) / 0.15 for p in params]),
            phase=torch.stack([angle.cos(), angle.sin()], dim=1),
            geometry=torch.tensor([[(p.radius - 7) / 1.2, (p.x - 32) / 10.4, (p.height - 26) / 4.6] for p in params]),
        )


class Heads(nn.Module):
    """Linear heads on the features: class logits, impact logits, period, phase (and geometry)."""

    def __init__(self, geometry: bool):
        super().__init__()
        self.geometry = geometry
        self.linear = nn.Linear(FEATURES, bt.NUM_CLASSES + IMPACT_BINS + 1 + 2 + (3 if geometry else 0))

    def loss(self, features: torch.Tensor, targets: Targets, visible_bins: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.linear(features)
        k, rest = out[:, :bt.NUM_CLASSES], out[:, bt.NUM_CLASSES:]
        impacts, period, phase = rest[:, :IMPACT_BINS], rest[:, IMPACT_BINS], rest[:, IMPACT_BINS + 1:IMPACT_BINS + 3]
        bce = nn.functional.binary_cross_entropy_with_logits(impacts, targets.impacts, reduction="none")
        losses = {
            "class": nn.functional.cross_entropy(k, targets.k),
            "impacts": (bce * visible_bins).sum() / visible_bins.sum().clamp(min=1),  # blanked bins: no loss
            "period": nn.functional.mse_loss(period, targets.period),
            "phase": nn.functional.mse_loss(phase, targets.phase),
        }
        if self.geometry:
            losses["geometry"] = nn.functional.mse_loss(rest[:, IMPACT_BINS + 3:], targets.geometry)
        losses["class_accuracy"] = (k.argmax(1) == targets.k).float().mean().detach()
        return losses


class BTVideoNet(nn.Module):
    """(B, 17, 64, 64, 3) uint8 -> (B, 128) features: 2D convs per frame, one conv over time, one linear."""

    def __init__(self):
        super().__init__()
        self.frame = nn.Sequential(
            nn.Conv2d(3, 32, 4, 4), nn.GELU(),  # (B*17, 32, 16, 16)
            nn.Conv2d(32, 64, 4, 4), nn.GELU(),  # (B*17, 64, 4, 4)
            nn.Conv2d(64, 32, 4), nn.GELU())  # (B*17, 32, 1, 1)
        self.time = nn.Sequential(
            nn.Conv1d(32, 32, 3, padding=1), nn.GELU(),  # (B, 32, 17)
            nn.Flatten(), nn.Linear(32 * bt.FRAMES, FEATURES), nn.GELU())
        self.heads = Heads(geometry=True)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if tuple(video.shape[1:]) != (bt.FRAMES, bt.SIZE, bt.SIZE, 3):
            raise ValueError(f"the BT video net reads (B, {bt.FRAMES}, {bt.SIZE}, {bt.SIZE}, 3) clips, "
                             f"got {tuple(video.shape)}")
        b, t = video.shape[:2]
        x = video.reshape(b * t, bt.SIZE, bt.SIZE, 3).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B*17, 3, 64, 64)
        per_frame = self.frame(x).reshape(b, t, -1).transpose(1, 2)  # (B, 32, 17)
        return self.time(per_frame)


class BTAudioNet(nn.Module):
    """(B, 34000) float audio -> (B, 128) features: VGGish's log-mel, three 1D convs over time, one linear."""

    def __init__(self):
        super().__init__()
        self.log_mel = LogMel()
        frames = 1 + (bt.NUM_SAMPLES - 400) // 160  # 211
        for _ in range(3):
            frames = (frames - 1) // 2 + 1  # 27 after three stride-2 convs
        self.body = nn.Sequential(
            nn.Conv1d(64, 96, 5, 2, 2), nn.GELU(),  # (B, 96, 106)
            nn.Conv1d(96, 96, 5, 2, 2), nn.GELU(),  # (B, 96, 53)
            nn.Conv1d(96, 32, 5, 2, 2), nn.GELU(),  # (B, 32, 27)
            nn.Flatten(), nn.Linear(32 * frames, FEATURES), nn.GELU())
        self.heads = Heads(geometry=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if tuple(audio.shape[1:]) != (bt.NUM_SAMPLES,):
            raise ValueError(f"the BT audio net reads (B, {bt.NUM_SAMPLES}) clips, got {tuple(audio.shape)}")
        mel = self.log_mel(audio)  # (B, 211, 64)
        return self.body((mel.transpose(1, 2) - math.log(0.01)) / 4)


def blank_given(video: np.ndarray | torch.Tensor, audio: np.ndarray | torch.Tensor, given: np.ndarray, layout):
    """Copies with the given segments' frames set to the background and their samples to silence.

    ``given``: (2, N) bool grid over the segments of ``layout`` (the task); video (B, T, H, W, 3), audio (B, S).
    Applied to reference and generated clips alike, it leaves only generated content.
    """
    from avdit.layout import AUDIO, VIDEO

    video, audio = video.clone() if torch.is_tensor(video) else video.copy(), \
        audio.clone() if torch.is_tensor(audio) else audio.copy()
    for n in range(given.shape[1]):
        if given[VIDEO, n]:
            video[:, layout.segment_frames(n)] = bt.BACKGROUND[0]
        if given[AUDIO, n]:
            audio[:, layout.segment_samples(n)] = 0.0
    return video, audio
