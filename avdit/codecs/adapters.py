"""Pretrained codecs from maintained libraries, loaded from a local folder, behind avdit's codec interface.

Video (diffusers; causal 3D VAEs, 1 + s k frames -> 1 + k latent frames): ``AutoencoderKLWan`` and
``AutoencoderKLCogVideoX`` (s = 4, 8x spatial; CogVideoX decodes an odd number of latent frames only, so its clips
have 1 + 8k frames), ``AutoencoderKLHunyuanVideo`` (4, 8x), ``AutoencoderKLLTXVideo`` (8, 32x). The strides are read
from each model's config (Wan 2.2's VAE is 16x). Audio: diffusers ``AutoencoderOobleck`` (Stable Audio Open:
stereo, 44.1 kHz, hop 2048), transformers ``EncodecModel`` and ``DacModel`` (their continuous pre-quantiser
latents, as the paper uses SoundStream's). avdit's audio is mono: a stereo codec gets the channel twice on encode,
and its two decoded channels are averaged.

Nothing is downloaded: the folder is what ``save_pretrained`` wrote (or a copy of a hub snapshot). The posterior
mode (mean) is taken as the latent. Latent statistics are measured on your clips (``avdit codec import``,
``avdit.codecs.importing``) and saved with ``save_codec``, which stores only them, the model's class and path, and
a digest of its weight files (checked when the codec is loaded again).

Memory: the diffusers classes run a batch one clip at a time (their ``enable_slicing``, on by default: the same
latents to float rounding, within 1e-5 of the largest, at the peak memory of one clip whatever the batch size).
``load_pretrained(..., tiling=True)`` also switches on their ``enable_tiling`` at the library's tile sizes: frames
larger than a tile (256 px for Wan and HunyuanVideo, 512 for LTX-Video, half the model's ``sample_height`` /
``sample_width`` for CogVideoX; for Oobleck, 30 s of audio to encode and 512 latents to decode) are encoded and
decoded in overlapping tiles blended at the seams. Those latents are not the untiled ones (diffusers' own tests
allow a difference of 0.5; on tiny random models with tiles of a few latents it is as large as the latents), so
tiling is off unless asked for, and a codec must encode with the setting its statistics were measured with.
Smaller clips never take the tiled path. HunyuanVideo encodes and decodes clips over 16 frames in overlapping
16-frame pieces by diffusers' own default, tiled or not. Transformers' EnCodec and DAC offer neither (audio is small
beside video).
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avdit.codecs.codec import AudioCodec, CodecError, VideoCodec


@dataclass(frozen=True)
class ExternalVideoConfig:
    latent_channels: int
    temporal_stride: int = 4
    spatial_stride: int = 8
    frame_step: int = 4  # clips have 1 + frame_step k frames: the temporal stride, or more where decoding needs it

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExternalAudioConfig:
    latent_channels: int
    hop: int
    channels: int = 1  # the model's audio channels: 2 for a stereo codec fed avdit's mono audio

    def to_dict(self) -> dict:
        return asdict(self)


# -- what each class is: its library, and how its config gives avdit's ------------------------------------------
def _wan(config) -> ExternalVideoConfig:
    t, s = config.scale_factor_temporal or 4, config.scale_factor_spatial or 8
    return ExternalVideoConfig(config.z_dim, t, s, t)


def _cogvideox(config) -> ExternalVideoConfig:
    t, s = int(config.temporal_compression_ratio), 2 ** (len(config.block_out_channels) - 1)
    return ExternalVideoConfig(config.latent_channels, t, s, 2 * t)  # an odd number of latent frames


def _ltx(config) -> ExternalVideoConfig:
    t = config.patch_size_t * 2 ** sum(config.spatio_temporal_scaling)
    s = config.patch_size * 2 ** sum(config.spatio_temporal_scaling)
    return ExternalVideoConfig(config.latent_channels, config.temporal_compression_ratio or t,
                               config.spatial_compression_ratio or s, config.temporal_compression_ratio or t)


def _hunyuan(config) -> ExternalVideoConfig:
    t = config.temporal_compression_ratio
    return ExternalVideoConfig(config.latent_channels, t, config.spatial_compression_ratio, t)


def _oobleck(config) -> tuple[ExternalAudioConfig, int]:
    return ExternalAudioConfig(config.decoder_input_channels, math.prod(config.downsampling_ratios),
                               config.audio_channels), config.sampling_rate


def _encodec(config) -> tuple[ExternalAudioConfig, int]:
    return ExternalAudioConfig(config.hidden_size, math.prod(config.upsampling_ratios),
                               config.audio_channels), config.sampling_rate


def _dac(config) -> tuple[ExternalAudioConfig, int]:
    return ExternalAudioConfig(config.hidden_size, math.prod(config.downsampling_ratios), 1), config.sampling_rate


@dataclass(frozen=True)
class Supported:
    library: str  # the package whose class it is
    describe: Callable  # the model's config -> avdit's codec config (and, for audio, the model's sample rate)


VIDEO_CLASSES: dict[str, Supported] = {
    "AutoencoderKLWan": Supported("diffusers", _wan),
    "AutoencoderKLCogVideoX": Supported("diffusers", _cogvideox),
    "AutoencoderKLLTXVideo": Supported("diffusers", _ltx),
    "AutoencoderKLHunyuanVideo": Supported("diffusers", _hunyuan),
}
AUDIO_CLASSES: dict[str, Supported] = {
    "AutoencoderOobleck": Supported("diffusers", _oobleck),
    "EncodecModel": Supported("transformers", _encodec),
    "DacModel": Supported("transformers", _dac),
}
CLASSES = {"video": VIDEO_CLASSES, "audio": AUDIO_CLASSES}


def supported_classes(kind: str) -> str:
    """'AutoencoderKLWan (diffusers), ...': the classes ``avdit codec import`` takes for ``kind``."""
    return ", ".join(f"{name} ({entry.library})" for name, entry in CLASSES[kind].items())


# -- the networks behind VideoCodec / AudioCodec -----------------------------------------------------------------
class _DiffusersVideoNet(nn.Module):
    """A diffusers video VAE as ``VideoCodec.net``: pixels (B, 3, 1 + s k, H, W) <-> (B, C, 1 + k, H/r, W/r)."""

    def __init__(self, model: nn.Module, config: ExternalVideoConfig):
        super().__init__()
        self.model, self.config = model, config

    def encoder(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model.encode(x).latent_dist.mode()  # (B, C, 1 + k, H/r, W/r)
        c, (t, h, w) = self.config, x.shape[2:]
        expected = (x.shape[0], c.latent_channels, 1 + (t - 1) // c.temporal_stride, h // c.spatial_stride,
                    w // c.spatial_stride)
        if tuple(z.shape) != expected:  # tiles whose stride is no whole number of latents
            raise CodecError(f"{type(self.model).__name__} encoded {tuple(x.shape)} pixels into latents "
                             f"{tuple(z.shape)}, not {expected}; with tiling on, its tile sizes do not fit this clip")
        return z

    def decoder(self, z: torch.Tensor) -> torch.Tensor:
        frames = 1 + self.config.temporal_stride * (z.shape[2] - 1)
        if getattr(self.model.config, "timestep_conditioning", False):  # LTX-Video 0.9.1+: decode at timestep 0
            x = self.model.decode(z, temb=torch.zeros(z.shape[0], device=z.device)).sample
        else:
            x = self.model.decode(z).sample  # (B, 3, 1 + s k, H, W)
        if x.shape[2] != frames:
            raise CodecError(f"{type(self.model).__name__} decoded {z.shape[2]} latent frames into {x.shape[2]} "
                             f"frames, not {frames}; it takes clips of 1 + {self.config.frame_step}k frames")
        return x


class _AudioNet(nn.Module):
    """A pretrained audio autoencoder as ``AudioCodec.net``: mono (B, S) <-> (B, C, S / hop), S a multiple of hop.
    A stereo model gets the mono channel twice, and its decoded channels are averaged."""

    def __init__(self, model: nn.Module, config: ExternalAudioConfig, encode: Callable, decode: Callable):
        super().__init__()
        self.model, self.config = model, config
        self._encode, self._decode = encode, decode

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio[:, None].expand(-1, self.config.channels, -1)  # (B, channels, S)
        return self._encode(self.model, x)  # (B, C, S / hop)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self._decode(self.model, z).mean(1)  # (B, S'): DAC's decoder gives a few samples fewer than T x hop
        samples = z.shape[2] * self.config.hop
        return F.pad(x, (0, samples - x.shape[1])) if x.shape[1] < samples else x[:, :samples]  # (B, T x hop)


_AUDIO_CALLS = {  # how each class encodes (B, channels, S) and decodes its continuous latents
    "AutoencoderOobleck": (lambda m, x: m.encode(x).latent_dist.mode(), lambda m, z: m.decode(z).sample),
    "EncodecModel": (lambda m, x: m.encoder(x), lambda m, z: m.decoder(z)),
    "DacModel": (lambda m, x: m.encoder(x), lambda m, z: m.decoder(z)),
}


# -- loading ------------------------------------------------------------------------------------------------
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def weights_digest(folder: str | Path) -> str:
    """sha256 of a model folder's weight files (names and bytes, in name order), 16 hex digits."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    for path in files:
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()[:16]


def _from_pretrained(kind: str, class_name: str, path: str | Path) -> tuple[nn.Module, Path]:
    """``library.class_name.from_pretrained`` on a local folder, with a clear error for each way it can fail."""
    if class_name not in CLASSES[kind]:
        libraries = " or ".join(sorted({entry.library for entry in CLASSES[kind].values()}))
        raise CodecError(f"unknown codec class {class_name!r} for {libraries} ({kind}); supported: "
                         f"{supported_classes(kind)}")
    folder = Path(path)
    if not (folder / "config.json").exists():
        raise CodecError(f"{folder}: no config.json of a {class_name}; give the local folder written by "
                         f"{class_name}.save_pretrained (or a copy of its hub snapshot); nothing is downloaded")
    library = CLASSES[kind][class_name].library
    try:
        module = importlib.import_module(library)
    except ImportError:
        raise CodecError(f"{class_name} needs {library}: pip install {library}") from None
    return getattr(module, class_name).from_pretrained(folder, local_files_only=True).eval(), folder


def _switch_memory(model: nn.Module, slicing: bool, tiling: bool) -> None:
    """Switch the library's sliced (a clip at a time) and tiled paths on or off, where it offers them."""
    if hasattr(model, "use_slicing"):  # diffusers' AutoencoderMixin raises without these attributes
        model.enable_slicing() if slicing else model.disable_slicing()
    if hasattr(model, "use_tiling"):
        model.enable_tiling() if tiling else model.disable_tiling()


def load_pretrained(kind: str, class_name: str, path: str | Path, rate: int | None = None,
                    digest: str | None = None, slicing: bool = True, tiling: bool = False) -> VideoCodec | AudioCodec:
    """A pretrained ``class_name`` from the local folder ``path`` behind avdit's interface. ``rate``: the fps
    (video) or sample rate (audio) the clips are read at; an audio codec refuses any but its own (None: its own).
    ``digest``: the ``weights_digest`` the folder must still have (as recorded by ``avdit codec import``).
    ``slicing`` / ``tiling``: the library's sliced and tiled encode and decode (see the module's docstring)."""
    model, folder = _from_pretrained(kind, class_name, path)
    _switch_memory(model, slicing, tiling)
    source = {"class": class_name, "path": str(folder.resolve()), "digest": weights_digest(folder)}
    if digest is not None and digest != source["digest"]:
        raise CodecError(f"{folder} holds other weights than the {class_name} this codec folder was measured on "
                         f"(digest {digest} then, {source['digest']} now): import it again with `avdit codec import`")
    describe = CLASSES[kind][class_name].describe
    if kind == "video":
        config = describe(model.config)
        return VideoCodec(config, fps=rate or 8, net=_DiffusersVideoNet(model, config), source=source).eval()
    config, sample_rate = describe(model.config)
    if rate is not None and rate != sample_rate:
        raise CodecError(f"{folder}: this {class_name} runs at {sample_rate} Hz; read the audio at that rate "
                         f"(`avdit prepare ... --sample-rate {sample_rate}`), not {rate} Hz")
    return AudioCodec(config, sample_rate=sample_rate, net=_AudioNet(model, config, *_AUDIO_CALLS[class_name]),
                      source=source).eval()
