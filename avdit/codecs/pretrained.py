"""Pretrained codecs from maintained libraries, loaded from a local folder, behind avdit's codec interface.

Video: diffusers ``AutoencoderKLCogVideoX`` and ``AutoencoderKLWan`` (causal 3D VAEs: 1 + 4k frames -> 1 + k
latent frames, 8x spatial). Audio: transformers ``EncodecModel`` (its continuous pre-quantiser latents,
as the paper uses SoundStream's). Nothing is downloaded: the folder is what ``save_pretrained`` wrote (or a
copy of a hub snapshot). The posterior mean is taken as the latent. Latent statistics are measured on your
data (``set_statistics``) and saved with ``save_codec``, which stores only them and the model's path.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from avdit.codecs.codec import AudioCodec, CodecError, VideoCodec

VIDEO_CLASSES = ("AutoencoderKLCogVideoX", "AutoencoderKLWan")
AUDIO_CLASSES = ("EncodecModel",)


@dataclass(frozen=True)
class ExternalVideoConfig:
    latent_channels: int
    temporal_stride: int = 4
    spatial_stride: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExternalAudioConfig:
    latent_channels: int
    hop: int

    def to_dict(self) -> dict:
        return asdict(self)


class _DiffusersVideoNet(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def encoder(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x).latent_dist.mode()  # (B, C, 1 + k, H/8, W/8)

    def decoder(self, z: torch.Tensor) -> torch.Tensor:
        x = self.model.decode(z).sample  # (B, 3, 1 + 4k, H, W)
        if x.shape[2] != 1 + 4 * (z.shape[2] - 1):
            raise CodecError(f"{type(self.model).__name__} decoded {z.shape[2]} latent frames into {x.shape[2]} "
                             f"frames, not {1 + 4 * (z.shape[2] - 1)}; it needs an odd number of latent frames "
                             "(clips of 1 + 8k frames)")
        return x


class _EncodecNet(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        return self.model.encoder(audio[:, None])  # (B, C, S / hop)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(z)[:, 0]  # (B, S)


def _require_folder(path: str | Path, class_name: str) -> Path:
    path = Path(path)
    if not (path / "config.json").exists():
        raise CodecError(f"{path}: no config.json of a {class_name}; give the local folder written by "
                         f"{class_name}.save_pretrained (or a copy of its hub snapshot); nothing is downloaded")
    return path


def _from_pretrained(library: str, class_name: str, supported: tuple[str, ...], path: str | Path):
    """``library.class_name.from_pretrained`` on a local folder, with a clear error for each way it can fail."""
    if class_name not in supported:
        raise CodecError(f"unknown codec class {class_name!r} for {library}; supported: {', '.join(supported)}")
    folder = _require_folder(path, class_name)
    try:
        module = __import__(library)
    except ImportError:
        raise CodecError(f"{class_name} needs {library}: pip install {library}") from None
    return getattr(module, class_name).from_pretrained(folder, local_files_only=True).eval(), folder


def load_pretrained(kind: str, class_name: str, path: str | Path, rate: int) -> VideoCodec | AudioCodec:
    """A pretrained ``class_name`` from the local folder ``path``; ``rate`` is the fps (video) or sample rate
    (audio) the clips are read at."""
    if kind == "video":
        model, folder = _from_pretrained("diffusers", class_name, VIDEO_CLASSES, path)
        channels = getattr(model.config, "latent_channels", None) or model.config.z_dim
        return VideoCodec(ExternalVideoConfig(channels), fps=rate, net=_DiffusersVideoNet(model),
                          source={"class": class_name, "path": str(folder.resolve())}).eval()
    model, folder = _from_pretrained("transformers", class_name, AUDIO_CLASSES, path)
    if model.config.audio_channels != 1:
        raise CodecError(f"{folder}: avdit's audio is mono; this EnCodec takes {model.config.audio_channels} channels")
    if model.config.sampling_rate != rate:
        raise CodecError(f"{folder}: this EnCodec runs at {model.config.sampling_rate} Hz; read the audio at that "
                         f"rate (sample_rate={model.config.sampling_rate}), not {rate} Hz")
    config = ExternalAudioConfig(model.config.hidden_size, math.prod(model.config.upsampling_ratios))
    return AudioCodec(config, sample_rate=rate, net=_EncodecNet(model),
                      source={"class": class_name, "path": str(folder.resolve())}).eval()
