"""One interface for every codec: encode/decode, latent shapes and rates, normalisation inside, safetensors + JSON.

The codecs themselves (``VideoCodec``, ``AudioCodec``) are defined in ``avdit.codecs.codec``; avdit's own and
pretrained ones (``avdit.codecs.adapters``) are saved and loaded here. A ``CodecPair`` joins
a video and an audio codec with the clip geometry and gives the ``ClipLayout`` that maps latent time steps
to task segments, so that mapping is computed from the codecs and nowhere else.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from avdit.utils.atomic import atomic_path, write_json
from avdit.codecs.audio import AudioCodecConfig
from avdit.codecs.codec import AudioCodec, CodecError, VideoCodec
from avdit.codecs.adapters import load_pretrained
from avdit.codecs.video import VideoCodecConfig
from avdit.latents import AV
from avdit.layout import ClipLayout


def save_codec(codec: VideoCodec | AudioCodec, folder: str | Path, extra: dict | None = None) -> None:
    """Write ``<kind>.safetensors`` (weights and latent statistics) and ``<kind>.json`` (config) atomically.

    A pretrained codec keeps only its latent statistics here; its JSON points at the model's own folder (class,
    path and a digest of its weights).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in codec.state_dict().items()
             if not codec.source or k in ("latent_mean", "latent_std")}
    with atomic_path(folder / f"{codec.kind}.safetensors", ".safetensors") as tmp:
        save_file(state, tmp)
    write_json(folder / f"{codec.kind}.json", {**codec.describe(), **(extra or {})})


def load_codec(folder: str | Path, kind: str) -> VideoCodec | AudioCodec:
    folder = Path(folder)
    config_path, weights_path = folder / f"{kind}.json", folder / f"{kind}.safetensors"
    for path in (config_path, weights_path):
        if not path.exists():
            raise CodecError(f"{path} not found: a codec folder holds {kind}.json and {kind}.safetensors "
                             f"(made by `avdit train-codec {kind}` or `avdit codec import`)")
    meta = json.loads(config_path.read_text())
    if meta.get("kind") != kind:
        raise CodecError(f"{config_path} describes a {meta.get('kind')!r} codec, not {kind!r}")
    if "source" in meta:
        source = meta["source"]
        codec = load_pretrained(kind, source["class"], source["path"],
                                meta.get("fps", 8) if kind == "video" else meta["sample_rate"], source.get("digest"))
    elif kind == "video":
        codec = VideoCodec(VideoCodecConfig.from_dict(meta["config"]), fps=meta["fps"])
    else:
        codec = AudioCodec(AudioCodecConfig.from_dict(meta["config"]), sample_rate=meta["sample_rate"])
    try:
        codec.load_state_dict(load_file(weights_path), strict="source" not in meta)
    except RuntimeError as err:
        raise CodecError(f"{weights_path} does not match {config_path}: {err}") from None
    return codec.eval()


def geometry_record(layout: ClipLayout) -> dict:
    """The clip geometry a codec was trained on, as stored in its JSON."""
    return {"fps": layout.fps, "frames": layout.frames, "size": [layout.height, layout.width],
            "sample_rate": layout.sample_rate}


def recorded_geometry(meta: dict) -> dict | None:
    """The clip geometry a codec's JSON records (``geometry_record``'s keys), or None where it records none."""
    return {key: meta.get(key) for key in ("fps", "frames", "size", "sample_rate")} if "frames" in meta else None


def describe_geometry(record: dict) -> str:
    size = record.get("size") or ["?", "?"]
    return (f"{record.get('frames')} frames at {record.get('fps')} fps, {size[0]}x{size[1]}, "
            f"{record.get('sample_rate')} Hz")


class CodecPair(nn.Module):
    """A video and an audio codec and the clip they take: frames at the video codec's fps, size, samples."""

    def __init__(self, video: VideoCodec, audio: AudioCodec, frames: int, size: tuple[int, int]):
        super().__init__()
        self.video, self.audio = video, audio
        self.frames, self.size = frames, tuple(size)
        self.layout  # validate the geometry now

    @property
    def layout(self) -> ClipLayout:
        """The task grid's geometry, from the codecs' strides and rates."""
        try:
            return ClipLayout(fps=self.video.fps, frames=self.frames, height=self.size[0], width=self.size[1],
                              sample_rate=self.audio.sample_rate,
                              video_temporal_stride=self.video.config.temporal_stride,
                              video_spatial_stride=self.video.config.spatial_stride,
                              audio_hop=self.audio.config.hop)
        except ValueError as err:
            raise CodecError(f"these codecs cannot cut a {self.frames}-frame {self.size} clip into the task grid: "
                             f"{err}") from None

    def check_clip(self, video: torch.Tensor | None, audio: torch.Tensor | None) -> None:
        layout = self.layout
        expected_video = (layout.frames, layout.height, layout.width, 3)
        if video is not None and tuple(video.shape[1:]) != expected_video:
            raise CodecError(f"video must be (B, {', '.join(map(str, expected_video))}) at {layout.fps} fps, "
                             f"got {tuple(video.shape)}; resample it with avdit.media.read_clip")
        if audio is not None and tuple(audio.shape[1:]) != (layout.num_samples,):
            raise CodecError(f"audio must be (B, {layout.num_samples}) at {layout.sample_rate} Hz, "
                             f"got {tuple(audio.shape)}")
        if video is not None and audio is not None and video.shape[0] != audio.shape[0]:
            raise CodecError(f"{video.shape[0]} videos and {audio.shape[0]} audio tracks: give as many of each")

    def zeros(self, batch: int) -> AV:
        """Latents of zeros: (B, Cv, t, h, w) and (B, Ca, ta), the shapes a clip's latents have."""
        layout = self.layout
        return AV(torch.zeros(batch, *self.video.latent_shape(layout.frames, layout.height, layout.width)),
                  torch.zeros(batch, *self.audio.latent_shape(layout.num_samples)))

    @torch.no_grad()
    def encode(self, video: torch.Tensor | None, audio: torch.Tensor | None, batch: int = 1) -> AV:
        """video uint8 (B, T, H, W, 3), audio float32 (B, S) -> normalised latents AV. A modality given as None
        comes back as zeros (``zeros``): where a task gives no cell of it, samplers never read its latents, and
        encoding it would cost as much as encoding the other. ``batch``: B where neither is given."""
        self.check_clip(video, audio)
        given = video if video is not None else audio
        missing = video is None or audio is None
        zeros = self.zeros(batch if given is None else given.shape[0]) if missing else None
        return AV(zeros.video if video is None else self.video.encode(video),
                  zeros.audio if audio is None else self.audio.encode(audio))

    @torch.no_grad()
    def decode(self, latents: AV) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised latents AV -> video uint8 (B, T, H, W, 3), audio float32 (B, S) (the padding of a last audio
        latent the clip does not fill cut off)."""
        return self.video.decode(latents.video), self.audio.decode(latents.audio, self.layout.num_samples)

    def save(self, folder: str | Path) -> None:
        record = geometry_record(self.layout)
        save_codec(self.video, folder, record)
        save_codec(self.audio, folder, record)


def load_codecs(folder: str | Path | None = None) -> CodecPair:
    """The codec pair in ``folder`` (video.* and audio.*), or the bundled Bouncing Tones codecs, at the clip
    geometry they were trained on (recorded in video.json; audio.json, when it records one, must agree)."""
    folder = Path(folder) if folder is not None else bundled_codecs_dir()
    if not folder.is_dir():
        raise CodecError(f"{folder}: codec folder not found")
    video, audio = load_codec(folder, "video"), load_codec(folder, "audio")
    meta = json.loads((folder / "video.json").read_text())
    if "frames" not in meta or "size" not in meta:
        raise CodecError(f"{folder / 'video.json'} records no clip geometry (frames, size); retrain it with "
                         "`avdit train-codec video`, or add the frames and size of its training clips")
    pair = CodecPair(video, audio, frames=meta["frames"], size=tuple(meta["size"]))
    video_geometry = geometry_record(pair.layout)
    audio_geometry = recorded_geometry(json.loads((folder / "audio.json").read_text()))
    if audio_geometry is not None and audio_geometry != video_geometry:
        raise CodecError(f"{folder}: the video codec was trained on clips of {describe_geometry(video_geometry)}, "
                         f"the audio codec on {describe_geometry(audio_geometry)}; train both on the same data")
    return pair.eval()


def bundled_codecs_dir() -> Path:
    return Path(str(resources.files("avdit") / "assets" / "codecs"))
