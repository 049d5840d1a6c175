"""What a user of a trained model calls: ``Pipeline.from_pretrained(DIR)`` then ``pipe(task=..., ...)``.

A task is a preset name or any grid; the given parts come as file paths, arrays or latents; the result is
clips (video uint8, audio float32) with their latents. Past one window, ``duration`` generates by rolling
continuation: each window is given the last 0.625 s (segments 0-1) of the one before, re-encoded from pixels
and samples, and for a2v/v2a the input slides along with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from avdit.codecs.interface import CodecError, CodecPair, bundled_codecs_dir, load_codecs
from avdit.codecs.digest import codec_digest, codec_digest_matches
from avdit.devices import resolve_device
from avdit.diffusion import DEFAULT_SCHEDULE, generate_latents
from avdit.diffusion.conditioning import DEFAULT_GUIDANCE
from avdit.latents import AV
from avdit.layout import AUDIO, MODALITIES, VIDEO
from avdit.media import probe, read_clip
from avdit.model import AVDiT
from avdit.tasks import Task, TaskError, get_task


def bundled_model_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("avdit") / "assets" / "model"))


@dataclass
class Result:
    video: np.ndarray  # (num, T, H, W, 3) uint8
    audio: np.ndarray  # (num, S) float32
    latents: AV | None  # of the last window
    task: Task
    fps: int
    sample_rate: int


class Pipeline:
    """The model samples on ``device`` (default: a GPU when there is one); the codecs encode and decode on the CPU."""

    def __init__(self, model: AVDiT, codecs: CodecPair, info: dict | None = None, device: str | None = None):
        if model.config.layout != codecs.layout:
            raise CodecError(f"the model's layout {model.config.layout} does not match the codecs' {codecs.layout}")
        self.device = resolve_device(device)
        self.model, self.codecs, self.info = model.eval().to(self.device), codecs.eval(), info or {}
        self.layout = codecs.layout

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None, codecs: str | Path | None = None,
                        device: str | None = None) -> "Pipeline":
        """A checkpoint folder (``model.json`` + ``model.safetensors``; the bundled Bouncing Tones model when
        None) with the codecs it was trained with (checked by digest; ``codecs`` overrides where they are)."""
        folder = Path(folder) if folder is not None else bundled_model_dir()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: checkpoint folder not found")
        model, info = AVDiT.from_pretrained(folder), AVDiT.load_info(folder)
        codecs_dir = Path(codecs) if codecs else _codecs_of(folder, info)
        pair = load_codecs(codecs_dir)
        if info.get("codec_digest") and not codec_digest_matches(info["codec_digest"], codecs_dir):
            raise CodecError(f"{folder} was trained with other codecs than those in {codecs_dir} (digest "
                             f"{info['codec_digest']} there, {codec_digest(codecs_dir)} here); give --codecs")
        return cls(model, pair, info, device)

    # -- inputs ---------------------------------------------------------------------------------------------
    def _read(self, source, modality: int, offset: float) -> torch.Tensor:
        """A file path, an array or a tensor -> (1, ...) video uint8 or audio float32 of one window."""
        layout = self.layout
        if isinstance(source, (str, Path)):
            clip = read_clip(source, layout.fps, layout.sample_rate, (layout.height, layout.width), start=offset,
                             duration=layout.duration, video=modality == VIDEO, audio=modality == AUDIO)
            source = clip.video if modality == VIDEO else clip.audio
        data = torch.as_tensor(np.asarray(source))
        data = data if data.dim() == (5 if modality == VIDEO else 2) else data[None]
        return data

    def _clean_latents(self, task: Task, video, audio, latents: AV | None, offset: float) -> AV:
        layout = self.layout
        needs = {m for m in (VIDEO, AUDIO) if bool(task.given[m].any())}
        if latents is not None:
            return latents
        if VIDEO in needs and video is None:
            raise TaskError(f"task {task.name!r} gives video segments: pass a video (file or array)")
        if AUDIO in needs and audio is None:
            raise TaskError(f"task {task.name!r} gives audio segments: pass audio (a file or an array)")
        v = self._read(video, VIDEO, offset) if VIDEO in needs else torch.zeros(1, layout.frames, layout.height,
                                                                                 layout.width, 3, dtype=torch.uint8)
        a = self._read(audio, AUDIO, offset) if AUDIO in needs else torch.zeros(1, layout.num_samples)
        batch = max(v.shape[0], a.shape[0])
        if {v.shape[0], a.shape[0]} - {1, batch}:
            raise ValueError(f"{v.shape[0]} videos and {a.shape[0]} audio tracks were given: give as many of each, "
                             "or one of either for all")
        return self.codecs.encode(v.expand(batch, *v.shape[1:]), a.float().expand(batch, *a.shape[1:]))

    def _check_input_lasts(self, source, modality: int, offset: float, span: float, hop: float) -> None:
        """A given modality that slides along its input past one window needs a file that covers the ``span``
        seconds of the windows (one window, then ``hop`` per window after it) from ``offset``."""
        name, window = MODALITIES[modality], float(self.layout.duration)
        if not isinstance(source, (str, Path)):
            raise ValueError(f"past one window ({window:g} s) the given {name} slides along its input: give it as a "
                             "file, not an array")
        lasts = probe(source).duration
        if lasts + 1e-3 < offset + span:
            longest = window + max(0, int((lasts - offset - window + 1e-3) // hop)) * hop
            raise ValueError(f"{source} lasts {lasts:.2f} s: the given {name} slides along it in windows of "
                             f"{window:g} s, {offset + span:.2f} s in all from --offset {offset:g}; ask for at most "
                             f"--duration {longest:.2f}, or give a longer input")

    # -- sampling -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _sample(self, task: Task, clean: AV, steps: int, sampler: str, eta: float, guidance, mode: str,
                generator: torch.Generator, pyramid_lag: int, progress: bool) -> AV:
        """Latents of the task on the model's device (noise from the CPU ``generator``: the same on any device).
        The sampler turns the network's output into eps with its own schedule, the one the model was trained with."""
        out = generate_latents(self.model, clean.map(lambda p: p.to(self.device)), task.given, self.layout,
                               steps=steps, sampler=sampler, eta=eta, mode=mode, guidance=guidance,
                               schedule=DEFAULT_SCHEDULE, generator=generator,
                               self_condition=self.model.config.self_condition, progress=progress,
                               pyramid_lag=pyramid_lag, prediction=self.model.config.prediction)
        return out.map(lambda p: p.float().cpu())

    def __call__(self, task: str | Task = "joint", video=None, audio=None, latents: AV | None = None, num: int = 1,
                 steps: int = 50, sampler: str = "ddim", eta: float = 0.0,
                 guidance: float | Sequence[float] = DEFAULT_GUIDANCE, mode: str = "clean", seed: int = 0, offset: float = 0.0,
                 duration: float | None = None, pyramid_lag: int = 0, progress: bool = False) -> Result:
        """Generate ``num`` clips for a task. ``video``/``audio``: paths, arrays (T, H, W, 3) uint8 / (S,) float32,
        or batches of them; ``latents`` replaces both. ``duration`` > one window rolls on (see module doc)."""
        layout = self.layout
        task = task if isinstance(task, Task) else get_task(task, layout.num_segments)
        if steps < 1:
            raise ValueError(f"--steps must be >= 1, got {steps}")
        if num < 1:
            raise ValueError(f"--num must be >= 1, got {num}")
        generator = torch.Generator().manual_seed(seed)
        clean = self._clean_latents(task, video, audio, latents, offset)
        if clean.batch_size not in (1, num):
            raise ValueError(f"{clean.batch_size} inputs were given for --num {num}: give one input, or one per clip")
        clean = clean.map(lambda p: p.expand(num, *p.shape[1:]).clone() if p.shape[0] == 1 else p)
        out = self._sample(task, clean, steps, sampler, eta, guidance, mode, generator, pyramid_lag, progress)
        video_out, audio_out = self.codecs.decode(out)
        videos, audios = [video_out], [audio_out]
        window = float(layout.duration)
        sliding = [m for m in (VIDEO, AUDIO) if bool(task.given[m].all())]  # a2v's audio, v2a's video
        if duration is not None and duration > window:
            hop = float(layout.segment_bounds[-1] - layout.segment_bounds[2])  # segments 2..N-1 are new each window
            carry = 2  # segments 0-1 of each window come from the one before
            windows = int(np.ceil((duration - window) / hop - 1e-9))
            for m in sliding:
                self._check_input_lasts((video, audio)[m], m, offset, window + windows * hop, hop)
            for w in range(1, windows + 1):
                rolled = task.given.clone()
                rolled[:, :carry] = True
                follow = Task(f"{task.name}+rolling", rolled)
                prev_v, prev_a = video_out, audio_out
                frames = layout.segment_frames(1).stop  # frames of segments 0-1
                samples = layout.segment_samples(1).stop  # samples of segments 0-1
                v = torch.zeros_like(prev_v)
                a = torch.zeros_like(prev_a)
                v[:, :frames] = prev_v[:, -frames:]
                a[:, :samples] = prev_a[:, -samples:]
                window_offset = offset + w * hop
                for m in sliding:  # a modality the task gives whole slides along its input; the rest continue
                    target, source = (v, video) if m == VIDEO else (a, audio)
                    target.copy_(self._read(source, m, window_offset).expand_as(target))
                clean = self.codecs.encode(v, a)
                out = self._sample(follow, clean, steps, sampler, eta, guidance, mode, generator, pyramid_lag,
                                   progress)
                video_out, audio_out = self.codecs.decode(out)
                videos.append(video_out[:, frames:])
                audios.append(audio_out[:, samples:])
        video_all, audio_all = torch.cat(videos, 1), torch.cat(audios, 1)
        if duration is not None:
            video_all = video_all[:, :max(1, round(duration * layout.fps))]
            audio_all = audio_all[:, :round(duration * layout.sample_rate)]
        return Result(video_all.numpy(), audio_all.numpy(), out, task, layout.fps, layout.sample_rate)


def _codecs_of(folder: Path, info: dict) -> Path:
    """The codecs a checkpoint names (recorded by ``avdit train``), or codecs copied beside it; a checkpoint that
    names none (exported with the bundled codecs) uses the bundled ones."""
    if info.get("codecs") and Path(info["codecs"]).is_dir():
        return Path(info["codecs"])
    if (folder / "video.json").exists():  # codecs copied beside the checkpoint
        return folder
    if info.get("codecs"):
        raise CodecError(f"{folder} was trained with the codecs in {info['codecs']}, which is not there now; give "
                         "--codecs with that folder (or copy video.* and audio.* beside the checkpoint)")
    return bundled_codecs_dir()


def export_checkpoint(folder: str | Path, out: str | Path, half: bool = True) -> Path:
    """Copy the model of a checkpoint or run folder to ``out`` (fp16 weights unless ``half=False``): a small
    checkpoint to share or bundle. Its JSON keeps the codec digest, so it still refuses other codecs; the path of
    the bundled codecs is dropped, so the checkpoint finds them wherever avdit is installed."""
    folder = Path(folder)
    model, info = AVDiT.from_pretrained(folder), AVDiT.load_info(folder)
    if info.get("codecs") and Path(info["codecs"]).resolve() == bundled_codecs_dir().resolve():
        info = {**info, "codecs": None}
    dtype = "float16" if half else "float32"
    return model.save_pretrained(out, {**info, "exported_from": str(folder), "dtype": dtype}, half=half)
