"""``avdit codec import``: a codec folder from local pretrained models, its latent statistics measured on your clips.

The folder holds what ``avdit train-codec`` would leave, so ``--codecs`` takes it in every command: ``video.json`` /
``audio.json`` (the model's class, path and weight digest, the clip geometry of the data) and ``video.safetensors`` /
``audio.safetensors`` (the per-channel latent mean and std only; the weights stay in the model's own folder).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import torch
from tqdm.auto import tqdm

from avdit.codecs.codec import AudioCodec, CodecError, VideoCodec
from avdit.codecs.interface import CodecPair, geometry_record, save_codec
from avdit.codecs.adapters import CLASSES, load_pretrained, supported_classes
from avdit.data.datasets import dataset_geometry, open_dataset
from avdit.data.loader import make_loader
from avdit.utils.devices import resolve_device
from avdit.layout import COMMON_FPS, ClipLayout, LayoutError, working_durations
from avdit.tasks.grid import TaskError, preset

def parse_source(spec: str, kind: str) -> tuple[str, Path]:
    """'AutoencoderKLWan:/models/wan-vae' -> ('AutoencoderKLWan', Path('/models/wan-vae'))."""
    class_name, colon, folder = spec.partition(":")
    if not colon or not folder:
        raise CodecError(f"--{kind} {spec!r}: write CLASS:FOLDER, e.g. {next(iter(CLASSES[kind]))}:/models/"
                         f"{kind}-codec; classes: {supported_classes(kind)}")
    return class_name, Path(folder)


def _fitting_clip(fps: int, frame_step: int, duration: float, sample_rate: int, min_frames: int) -> tuple[int, int]:
    """(fps, frames) nearest to the clips asked for that a video codec taking 1 + frame_step k frames can take with
    whole audio samples at ``sample_rate``, ``min_frames`` or more: the same fps where it can, else the nearest frame
    rate that can."""
    for rate in sorted({fps, *COMMON_FPS}, key=lambda f: (abs(f - fps), -f)):  # a tie: the higher
        ks = [k for k in range(1, round(duration * rate / frame_step) + 2 * rate + min_frames)
              if 1 + frame_step * k >= min_frames and (1 + frame_step * k) * sample_rate % rate == 0]
        if ks:
            k = min(ks, key=lambda k: (abs((1 + frame_step * k) / rate - duration), -k))  # a tie: the longer
            return rate, 1 + frame_step * k
    raise CodecError(f"no frame rate takes whole samples at {sample_rate} Hz")  # never at the rates codecs use


def fitting_layout(video: VideoCodec, audio: AudioCodec, data: ClipLayout) -> ClipLayout:
    """The layout of clips of ``data``'s geometry through this codec pair (its strides); a ``CodecError`` saying
    what does not fit, which clip lengths do, and the ``avdit prepare`` flags that make such clips."""
    step, stride, rate = video.config.frame_step, video.config.spatial_stride, audio.sample_rate
    names = f"{video.source['class']} + {audio.source['class']}"
    problems = []
    if data.sample_rate != rate:
        problems.append(f"{audio.source['class']} runs at {rate} Hz, these clips at {data.sample_rate} Hz")
    if (data.frames - 1) % step:
        problems.append(f"{video.source['class']} takes clips of 1 + {step}k frames (at {data.fps} fps: "
                        f"{working_durations(data.fps, step, float(data.duration), sample_rate=rate)})")
    if data.height % stride or data.width % stride:
        problems.append(f"{video.source['class']} takes frames whose sides are multiples of {stride}")
    if not problems:
        try:
            layout = ClipLayout(fps=data.fps, frames=data.frames, height=data.height, width=data.width,
                                sample_rate=rate, video_temporal_stride=video.config.temporal_stride,
                                video_spatial_stride=stride, audio_hop=audio.config.hop)
            preset("av_continue", layout.num_segments)  # raises below the task presets' least number of segments
            return layout
        except (LayoutError, TaskError) as err:
            problems.append(str(err))
    min_frames = 1 + 2 * video.config.temporal_stride  # the first frame and two segments
    fps, frames = _fitting_clip(data.fps, step, float(data.duration), rate, min_frames)
    height, width = (max(stride, round(side / stride) * stride) for side in (data.height, data.width))
    raise CodecError(f"clips of {data.frames} frames at {data.fps} fps ({float(data.duration):g} s), "
                     f"{data.height}x{data.width}, {data.sample_rate} Hz do not fit {names}: {'; '.join(problems)}. "
                     f"Prepare clips that fit: `avdit prepare VIDEOS OUT --fps {fps} --duration "
                     f"{float(Fraction(frames, fps)):.10g} --size {height} {width} --sample-rate {rate}`")


def _check_out(out: Path) -> None:
    """An output folder may hold imported codecs (a rerun replaces them), not codecs that avdit trained."""
    for kind in ("video", "audio"):
        path = out / f"{kind}.json"
        if path.exists() and "source" not in json.loads(path.read_text()):
            raise CodecError(f"{out} holds a {kind} codec trained by `avdit train-codec`; choose another out=")


@torch.no_grad()
def measure_statistics(codecs: CodecPair, dataset: torch.utils.data.Dataset, batch_size: int,
                       device: torch.device, progress: bool = True) -> None:
    """Set each codec's per-channel latent mean and std to those of ``dataset``'s clips (all of them)."""
    for codec in (codecs.video, codecs.audio):  # fresh statistics (0, 1): encode gives the raw latents
        codec.latent_mean.zero_()
        codec.latent_std.fill_(1.0)
    codecs.to(device)
    raw_video, raw_audio = [], []
    with tqdm(total=len(dataset), desc="codec import: latent statistics", unit="clip", disable=not progress) as bar:
        for batch in make_loader(dataset, batch_size):
            latents = codecs.encode(batch["video"].to(device), batch["audio"].to(device))
            raw_video.append(latents.video.float().cpu())  # (B, Cv, Tv, h, w)
            raw_audio.append(latents.audio.float().cpu())  # (B, Ca, Ta)
            bar.update(batch["video"].shape[0])
    codecs.to("cpu")
    codecs.video.set_statistics(torch.cat(raw_video))
    codecs.audio.set_statistics(torch.cat(raw_audio))


def import_codecs(video: str, audio: str, data: str | Path, out: str | Path, clips: int = 64, batch_size: int = 4,
                  device: str | None = None, progress: bool = True) -> CodecPair:
    """A codec folder ``out`` from the local pretrained models ``video`` and ``audio`` ('CLASS:FOLDER'), at the
    clip geometry of ``data`` (a folder from ``avdit prepare`` or ``avdit data``), with latent statistics measured on
    its first ``clips`` training clips. Returns the codec pair as ``load_codecs(out)`` gives it."""
    if clips < 1:
        raise ValueError(f"clips={clips}: give at least 1")
    dataset = open_dataset(data, "train", size=clips, cache_mb=0)  # one pass: nothing to cache
    geometry = dataset_geometry(dataset)
    if len(dataset) == 0:
        raise ValueError(f"{data} has no training clips to measure the latents on")
    video_codec = load_pretrained("video", *parse_source(video, "video"), geometry.fps)
    audio_codec = load_pretrained("audio", *parse_source(audio, "audio"))
    layout = fitting_layout(video_codec, audio_codec, geometry)
    codecs = CodecPair(video_codec, audio_codec, frames=layout.frames, size=(layout.height, layout.width)).eval()
    out = Path(out)
    _check_out(out)
    subset = torch.utils.data.Subset(dataset, range(min(clips, len(dataset))))
    measure_statistics(codecs, subset, batch_size, resolve_device(device), progress)
    source = str(data) if str(data) == "bouncing-tones" else str(Path(data).resolve())
    record = {**geometry_record(layout), "statistics": {"data": source, "clips": len(subset)}}
    for codec in (codecs.video, codecs.audio):
        save_codec(codec, out, record)
    return codecs
