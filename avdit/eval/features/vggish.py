"""VGGish (Hershey et al. 2017), the audio network behind FAD, with weights from a local file.

The module layout matches the public PyTorch port (``features`` and ``embeddings`` sequentials), so its
converted state dict (``vggish-10086976.pth``, or the same tensors as safetensors) loads as is. Each 0.96 s
of 16 kHz audio (96 log-mel frames, non-overlapping) gives one 128-d embedding; FAD treats every such
embedding as a sample, as the reference does.
"""

from __future__ import annotations

import torch
from torch import nn

from avdit.eval.features.log_mel import LogMel

EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames
EMBEDDING = 128
WEIGHTS_HINT = ("the VGGish weights converted to PyTorch, e.g. 'vggish-10086976.pth' from the torchvggish "
                "project's releases (harritaylor/torchvggish), or the same tensors saved as .safetensors")


def _features() -> nn.Sequential:
    layers, channels = [], 1
    for width in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """(B, S) audio at 16 kHz -> (B, S // 15360, 128) embeddings (one per whole 0.96 s example)."""

    def __init__(self):
        super().__init__()
        self.log_mel = LogMel()
        self.features = _features()
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Linear(4096, EMBEDDING), nn.ReLU(True))

    def examples(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, K, 96, 64) log-mel examples; a clip shorter than 0.975 s is an error."""
        mel = self.log_mel(audio)  # (B, F, 64)
        count = mel.shape[1] // EXAMPLE_FRAMES
        if count == 0:
            raise ValueError(f"VGGish needs at least 0.975 s of audio per clip, got {audio.shape[-1]} samples")
        return mel[:, :count * EXAMPLE_FRAMES].reshape(mel.shape[0], count, EXAMPLE_FRAMES, mel.shape[2])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        examples = self.examples(audio)  # (B, K, 96, 64)
        b, k = examples.shape[:2]
        x = self.features(examples.reshape(b * k, 1, EXAMPLE_FRAMES, -1))  # (B*K, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(b * k, -1)  # TensorFlow's (H, W, C) flattening order
        return self.embeddings(x).reshape(b, k, EMBEDDING)
