"""What a user of a trained model calls: ``Pipeline.from_pretrained(DIR)`` then ``pipe(task=..., ...)``.

A task is a preset name or any grid; the given parts come as file paths, arrays or latents; the result is
clips (video uint8, audio float32) with their latents. How it samples is a ``SamplingConfig``. A modality the task
gives whole (a2v's audio, v2a's video) comes back as it was read, not through the codecs.

Past one window, ``duration`` generates by rolling continuation. Each next window is given segments 0-1 (0.625 s)
and makes the 1.5 s after them:

- segment 1 is the last 0.5 s made so far, re-encoded from pixels and samples: the motion goes on from there;
- segment 0 is the first window's own segment 0 (``SamplingConfig.anchor_segment``): the subject as it began, seen
  in every window, so a small change of colour or size in one window is not carried into the next and compounded;
  with ``SamplingConfig.anchor_guidance`` > 0 (off by default) each window is also guided towards it;
- a task that makes segment 0 of both modalities (joint) draws its first window twice: then again given its own
  segment 0 (``SamplingConfig.keyframe_first``), so that window, like every rolled one, continues the anchor;
- for a2v/v2a the given modality slides along its input instead (all of it is the input's, from the window's start);
  the generated one is carried and anchored as above;
- each window's generated video latents keep the distribution the first window's had, channel by channel
  (``SamplingConfig.anchor_spread``, ``avdit.diffusion.spread``); the audio's are left as made: a window's sound
  spreads with how many sounds it holds;
- every rolled window draws its generated video from the same noise, drawn once per stream, and its audio from
  fresh noise (``SamplingConfig.held_noise``; FreeNoise, Qiu et al. 2024, reuses noise along a long video): the
  disc's size flickers less from window to window, and the sound still follows each window's own motion;
- with ``SamplingConfig.audio_candidates`` k > 1 (2 by default), where the audio is generated, a rolled window
  whose sound is unlike the first window's (its spectrum, against the stream's own) is drawn again given the window's
  video, up to k draws, and the draw most alike is kept (``avdit.diffusion.sound_choice``): a draw that plays a
  neighbouring note is left out, at the cost of one more audio draw in 40-140 windows.

``pipe.stream(...)`` yields the same clips window by window, in the memory of one window, and without a duration
goes on until the caller stops.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from avdit.codecs.interface import CodecError, CodecPair, bundled_codecs_dir, load_codecs
from avdit.codecs.digest import codec_digest, codec_digest_matches, tensors_digest
from avdit.utils.devices import resolve_device
from avdit.diffusion import DEFAULT_SCHEDULE, SamplingConfig, generate_latents
from avdit.diffusion.sampling import STUDENT_PRESET
from avdit.diffusion.sound_choice import redraw_threshold, unlike
from avdit.diffusion.spread import match_quantiles, quantiles
from avdit.latents import AV
from avdit.layout import AUDIO, MODALITIES, VIDEO
from avdit.media import probe, read_clip
from avdit.model import AVDiT, lora
from avdit.tasks import Task, TaskError, get_task


def bundled_model_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("avdit") / "assets" / "model"))


def sampling_preset_of(info: dict) -> str:
    """The sampling preset a checkpoint's ``model.json`` (``info``) is made for: ``distilled`` for a student of
    ``avdit distill`` (``avdit.train.distill``), else ``default``."""
    return STUDENT_PRESET if info.get("train", {}).get("student_steps") else "default"


def checkpoint_sampling_preset(folder: str | Path | None) -> str:
    """``sampling_preset_of`` the checkpoint in ``folder`` (the bundled model when None; a folder of LoRA adapters
    answers for its base). ``default`` where ``folder`` is no checkpoint: loading it then says what is wrong."""
    folder = Path(folder) if folder is not None else bundled_model_dir()
    try:
        return sampling_preset_of(AVDiT.load_info(folder))
    except (OSError, ValueError, KeyError):
        return "default"


@dataclass
class Chunk:
    """What ``Pipeline.stream`` yields: the frames and samples one window adds."""

    video: np.ndarray  # (num, t, H, W, 3) uint8
    audio: np.ndarray  # (num, s) float32
    latents: AV  # of the window that made them
    task: Task
    start: float  # seconds of content before this chunk
    fps: int
    sample_rate: int


@dataclass
class Result:
    """What ``Pipeline.__call__`` returns: whole clips."""

    video: np.ndarray  # (num, T, H, W, 3) uint8
    audio: np.ndarray  # (num, S) float32
    latents: AV | None  # of the last window
    task: Task
    fps: int
    sample_rate: int

    @classmethod
    def join(cls, chunks: Iterable[Chunk]) -> "Result":
        """The clips ``Pipeline.stream`` yields, joined (it must end: give it a duration)."""
        chunks = list(chunks)
        last = chunks[-1]
        return cls(np.concatenate([c.video for c in chunks], 1), np.concatenate([c.audio for c in chunks], 1),
                   last.latents, last.task, last.fps, last.sample_rate)


class Pipeline:
    """The model samples on ``device`` (default: a GPU when there is one); the codecs encode and decode on the CPU.
    ``progress``: show a progress bar per sampler run."""

    progress: bool = False

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
        codecs_dir = Path(codecs) if codecs else codecs_of(folder, info)
        pair = load_codecs(codecs_dir)
        if info.get("codec_digest") and not codec_digest_matches(info["codec_digest"], codecs_dir):
            raise CodecError(f"{folder} was trained with other codecs than those in {codecs_dir} (digest "
                             f"{info['codec_digest']} there, {codec_digest(codecs_dir)} here); give codecs=FOLDER")
        return cls(model, pair, info, device)

    @property
    def default_sampling(self) -> SamplingConfig:
        """How this checkpoint samples unless told otherwise: the ``default`` preset, ``distilled`` for a student."""
        return SamplingConfig.preset(sampling_preset_of(self.info))

    def weights_digest(self) -> str:
        """sha256 of the model's and the codecs' weights as loaded (names and bytes), 16 hex digits: what makes
        this pipeline's outputs, so a saved result can tell whether it came from the same weights."""
        return tensors_digest(item for part in (self.model, self.codecs) for item in part.state_dict().items())

    # -- inputs ---------------------------------------------------------------------------------------------
    def _read(self, source, modality: int, offset: float) -> torch.Tensor:
        """A file path, an array or a tensor -> (1, ...) video uint8 or audio float32 of one window."""
        layout = self.layout
        if isinstance(source, (str, Path)):
            clip = read_clip(source, layout.fps, layout.sample_rate, (layout.height, layout.width), start=offset,
                             duration=layout.duration, video=modality == VIDEO, audio=modality == AUDIO)
            source = clip.video if modality == VIDEO else clip.audio
            offset = 0.0  # read_clip started there
        data = torch.as_tensor(np.asarray(source))
        data = data if data.dim() == (5 if modality == VIDEO else 2) else data[None]  # (B, T, H, W, 3) or (B, S)
        rate, length = (layout.fps, layout.frames) if modality == VIDEO else (layout.sample_rate, layout.num_samples)
        start = round(offset * rate)
        if data.shape[1] < start + length:
            raise ValueError(f"the given {MODALITIES[modality]} holds {data.shape[1] / rate:.3f} s; a window of "
                             f"{float(layout.duration):g} s from {offset:g} s needs {(start + length) / rate:.3f} s")
        return data[:, start:start + length]  # one window from ``offset``

    def _given_inputs(self, task: Task, video, audio, offset: float) -> tuple[torch.Tensor | None,
                                                                              torch.Tensor | None]:
        """The first window of each modality the task gives any cell of, read from ``offset``: video uint8
        (B, T, H, W, 3) and audio float32 (B, S), as many of each; None for a modality it gives no cell of."""
        needs = {m for m in (VIDEO, AUDIO) if bool(task.given[m].any())}
        if VIDEO in needs and video is None:
            raise TaskError(f"task {task.name!r} gives video segments: pass a video (file or array)")
        if AUDIO in needs and audio is None:
            raise TaskError(f"task {task.name!r} gives audio segments: pass audio (a file or an array)")
        v = self._read(video, VIDEO, offset) if VIDEO in needs else None
        a = self._read(audio, AUDIO, offset).float() if AUDIO in needs else None
        sizes = {x.shape[0] for x in (v, a) if x is not None}
        batch = max(sizes, default=1)
        if sizes - {1, batch}:
            raise ValueError(f"{v.shape[0]} videos and {a.shape[0]} audio tracks were given: give as many of each, "
                             "or one of either for all")
        return tuple(None if x is None else x.expand(batch, *x.shape[1:]) for x in (v, a))

    @torch.no_grad()
    def _clips(self, out: AV, inputs: dict[int, torch.Tensor], sound: torch.Tensor | None = None) -> tuple[
            torch.Tensor, torch.Tensor]:
        """A window's video uint8 (B, T, H, W, 3) and audio float32 (B, S): ``inputs`` holds the modalities the
        task gives whole (a2v's audio, v2a's video) as read, which come back as they are (decoding their latents
        would only return them through the codecs, at a third of a2v's and v2a's time); ``sound``: the audio,
        where it was decoded already; the rest is decoded from ``out``."""
        video, audio = inputs.get(VIDEO), inputs.get(AUDIO, sound)
        video = self.codecs.video.decode(out.video) if video is None else video.to(torch.uint8)
        audio = (self.codecs.audio.decode(out.audio, self.layout.num_samples) if audio is None
                 else audio.float().clamp(-1.0, 1.0))
        return video, audio

    def _input_frames(self, source, modality: int, offset: float) -> int:
        """Whole frame periods a given modality's input (file or array) covers from ``offset``."""
        if isinstance(source, (str, Path)):
            lasts = probe(source).duration
        else:  # an array or tensor: (T, ...) or (B, T, ...)
            shape = np.shape(source)
            rate = self.layout.fps if modality == VIDEO else self.layout.sample_rate
            lasts = shape[1 if len(shape) == (5 if modality == VIDEO else 2) else 0] / rate
        return int((lasts - offset) * self.layout.fps + 1e-3)

    # -- sampling -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _sample(self, task: Task, clean: AV, sampling: SamplingConfig, generator: torch.Generator,
                history: torch.Tensor | None = None, anchor: torch.Tensor | None = None,
                noise: AV | None = None) -> AV:
        """Latents of the task on the model's device (noise from the CPU ``generator``: the same on any device).
        The sampler turns the network's output into eps with its own schedule, the one the model was trained with.
        ``history``, ``anchor``: a rolled window's carried and anchor cells; ``noise``: the noise its sampler runs
        start from (``generate_latents``; None: fresh draws)."""
        out = generate_latents(self.model, clean.map(lambda p: p.to(self.device)), task.given, self.layout, sampling,
                               schedule=DEFAULT_SCHEDULE, generator=generator,
                               self_condition=self.model.config.self_condition,
                               prediction=self.model.config.prediction, history=history, progress=self.progress,
                               anchor=anchor, noise=None if noise is None else noise.map(lambda p: p.to(self.device)))
        return out.map(lambda p: p.float().cpu())

    def _sliding_frames(self, task: Task, video, audio, duration: float, offset: float) -> int | None:
        """Frames the inputs of the modalities a task gives whole cover from ``offset`` (None: it gives none whole);
        past one window (``duration``) they slide along, so they must last that long: else a clear error."""
        sliding = _given_whole(task)
        available = min((self._input_frames((video, audio)[m], m, offset) for m in sliding), default=None)
        fps = self.layout.fps
        if available is not None and available < round(duration * fps):
            name = " and ".join(MODALITIES[m] for m in sliding)
            raise ValueError(f"the given {name} lasts {available / fps:.2f} s from offset={offset:g}: past one window "
                             f"it slides along its input, which must last the duration={duration:g} s; ask for at most "
                             f"duration={max(available / fps, float(self.layout.duration)):.2f}, or give a longer input")
        return available

    def _roll(self, task: Task, video, audio, first: AV, tail_v: torch.Tensor, tail_a: torch.Tensor,
              duration: float | None, offset: float, available: int | None, sample,
              sampling: SamplingConfig,
              generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, AV]]:
        """Past one window: each next window is given its segments 0-1 from what was made so far and generates the
        rest; a modality the task gives whole (a2v's audio, v2a's video) slides along its input instead. Windows
        start every segments 2..N-1; where a sliding input would end first, the last window starts earlier to end
        with it, and only the frames it adds are yielded. ``first``: the first window's latents, ``tail_v``
        (B, T, H, W, 3), ``tail_a`` (B, S): its decoded clips; ``available``: the frames the sliding inputs cover
        (``_sliding_frames``); ``duration`` None: on without end. ``sampling.anchor_segment``: in each modality that
        does not slide, segment 0 of every window is the first window's (see the module doc);
        ``sampling.anchor_spread``: each window's generated video latents keep the distribution they had in the
        first window (``avdit.diffusion.spread``; the audio's are not held, see the module doc);
        ``sampling.audio_candidates``: at most this many audio draws, made where a window sounds unlike the first
        (``_held_sound``). Yields (new frames, new samples, latents) per window, keeping one window in memory."""
        layout = self.layout
        fps, rate = layout.fps, layout.sample_rate
        window, carry = layout.frames, layout.segment_frames(1).stop  # frames of a window, of segments 0-1
        wanted = math.inf if duration is None else round(duration * fps)
        sliding = _given_whole(task)
        carry_samples = layout.segment_samples(1).stop
        rolled = task.given.clone()
        rolled[:, :2] = True
        follow = Task(f"{task.name}+rolling", rolled)
        history = rolled.clone()  # the carried segments: the model's own output, not an input
        history[:, 2:] = False
        history[sliding] = False
        made, made_a = tail_v.shape[1], tail_a.shape[1]  # frames, samples made so far; the tails hold one window
        generated = layout.cells_to_latents((~rolled).expand(tail_v.shape[0], -1, -1))  # what each window makes
        reference = quantiles(first.video, generated.video) if sampling.anchor_spread else None  # (B, Cv, n)
        seg0_frames, seg0_samples = layout.segment_frames(0).stop, layout.segment_samples(0).stop
        # the modalities whose segment 0 is the first window's: every one that does not slide along an input
        anchored = [m for m in (VIDEO, AUDIO) if m not in sliding] if sampling.anchor_segment else []
        anchor = tail_v[:, :seg0_frames].clone(), tail_a[:, :seg0_samples].clone()  # (B, t, H, W, 3), (B, s)
        anchor_cells = torch.zeros_like(rolled)  # (M, N): where anchor guidance looks (sampling.anchor_guidance)
        anchor_cells[anchored, 0] = True
        redrawn = rolled.clone()  # an audio draw given the window's video: every cell given but the audio made
        redrawn[VIDEO] = True
        audio_draw = Task(f"{task.name}+audio", redrawn)
        audio_draws = sampling.audio_candidates if (~rolled[AUDIO]).any() else 1  # a2v's is the input's: none
        first_audio = tail_a.clone()  # (B, S): the first window's sound, what each window's draws are held to
        unlikeness: list[torch.Tensor] = []  # (B,) per rolled window: how unlike the first window's its audio sounds
        held = None  # (B, Cv, T, H, W): the noise every rolled window draws its video from (sampling.held_noise)
        while made < wanted:
            start = made - carry if available is None else min(made - carry, available - window)  # frame
            first_sample = start * rate // fps
            back_v, back_a = made - tail_v.shape[1], made_a - tail_a.shape[1]  # where the tails start
            v = torch.zeros_like(tail_v[:, :window])
            a = torch.zeros(tail_a.shape[0], layout.num_samples, dtype=tail_a.dtype)
            v[:, :carry] = tail_v[:, start - back_v:start - back_v + carry]
            a[:, :carry_samples] = tail_a[:, first_sample - back_a:first_sample - back_a + carry_samples]
            for m in sliding:
                target, source = (v, video) if m == VIDEO else (a, audio)
                target.copy_(self._read(source, m, offset + start / fps).expand_as(target))
            if VIDEO in anchored:  # segment 0 holds the first window's: the subject as it began
                v[:, :seg0_frames] = anchor[0]
            if AUDIO in anchored:
                a[:, :seg0_samples] = anchor[1]
            given = self.codecs.encode(v, a)
            if sampling.held_noise and held is None:
                held = torch.randn(given.video.shape, generator=generator)  # (B, Cv, T, H, W)
            out = sample(follow, given, history, anchor_cells, held)
            sound = None  # (B, S): the window's decoded audio, where the draws have decoded it
            if audio_draws > 1:
                out, sound = self._held_sound(out, first_audio, carry_samples, unlikeness, audio_draws,
                                              sampling.audio_redraw,
                                              lambda c, n: sample(audio_draw, c, history, anchor_cells, n), held)
            if reference is not None:  # the first window's video distribution, held (avdit.diffusion.spread)
                out = AV(match_quantiles(out.video, generated.video, reference), out.audio)
            new_v, new_a = self._clips(out, {m: (v, a)[m] for m in sliding}, sound)
            new_v, new_a = new_v[:, made - start:], new_a[:, made_a - first_sample:]
            made, made_a = made + new_v.shape[1], made_a + new_a.shape[1]
            tail_v = torch.cat([tail_v, new_v], 1)[:, -window:]
            tail_a = torch.cat([tail_a, new_a], 1)[:, -layout.num_samples:]
            yield new_v, new_a, out

    @torch.no_grad()
    def _held_sound(self, out: AV, first_audio: torch.Tensor, start: int, past: list[torch.Tensor], draws: int,
                    redraw: str, draw_audio, held: torch.Tensor | None) -> tuple[AV, torch.Tensor]:
        """A rolled window's latents ``out`` with its audio drawn again, up to ``draws`` draws in all, in the examples
        whose audio from sample ``start`` on sounds unlike ``first_audio`` (B, S) (above ``redraw_threshold`` of
        ``past``, the stream's windows before, to which this window's is appended; ``redraw`` 'always': in every
        example, as ``SamplingConfig.audio_redraw``); each keeps its draw most alike
        (``avdit.diffusion.sound_choice``). ``draw_audio(latents, video noise)``: another audio draw given the
        window's video. Returns the latents and their decoded audio (B, S)."""
        layout = self.layout
        audio = out.audio.clone()  # (B, Ca, Ta)
        sound = self.codecs.audio.decode(audio, layout.num_samples)  # (B, S)
        score = unlike(sound[:, start:], first_audio, layout.sample_rate)  # (B,)
        threshold = redraw_threshold(past) if redraw == "unlike" else -math.inf  # always: every example
        for _ in range(draws - 1):
            again = (score > threshold).nonzero().flatten()  # the examples drawn again
            if not again.numel():
                break
            extra = draw_audio(AV(out.video[again], audio[again]), None if held is None else held[again]).audio
            extra_sound = self.codecs.audio.decode(extra, layout.num_samples)  # (b, S)
            extra_score = unlike(extra_sound[:, start:], first_audio[again], layout.sample_rate)
            better = extra_score < score[again]
            kept = again[better]
            audio[kept], sound[kept], score[kept] = extra[better], extra_sound[better], extra_score[better]
        past.append(score)
        return AV(out.video, audio), sound

    def stream(self, task: str | Task = "joint", video=None, audio=None, *, latents: AV | None = None, num: int = 1,
               seed: int = 0, offset: float = 0.0, duration: float | None = None,
               sampling: SamplingConfig | None = None) -> Iterator[Chunk]:
        """``num`` clips of a task as they are made: the first window, then the frames each next window adds (see
        the module doc); ``duration`` None (or inf) goes on until the caller stops. Memory stays that of one window.

        ``video``/``audio``: paths, arrays (T, H, W, 3) uint8 / (S,) float32, or batches of them, read from
        ``offset`` seconds; ``latents`` replaces both. ``sampling``: how (``SamplingConfig``; default: the preset the
        checkpoint is made for, ``sampling_preset_of``). The same seed, inputs, device and thread count give the same
        clips bit for bit."""
        sampling = self.default_sampling if sampling is None else sampling
        if not isinstance(sampling, SamplingConfig):
            raise TypeError(f"sampling must be a SamplingConfig (avdit.diffusion), got {type(sampling).__name__}")
        layout = self.layout
        task = task if isinstance(task, Task) else get_task(task, layout.num_segments)
        if num < 1:
            raise ValueError(f"num={num}: give at least 1")
        if duration is not None and math.isinf(duration):
            duration = None  # no end
        if duration is not None and not duration > 0:
            raise ValueError(f"duration={duration:g}: give seconds > 0 (or None for no end)")
        if duration is None and _given_whole(task):
            raise ValueError(f"task {task.name!r} slides along its input, which ends: give a duration")
        generator = torch.Generator().manual_seed(seed)
        # the given cells' latents: as passed, or the inputs read and encoded (a modality given no cell of is not)
        inputs = (None, None) if latents is not None else self._given_inputs(task, video, audio, offset)
        clean = latents if latents is not None else self.codecs.encode(*inputs)
        rolls = duration is None or duration > float(layout.duration)
        # what the inputs of a sliding modality cover: one too short fails before any sampling
        available = self._sliding_frames(task, video, audio, duration, offset) if rolls and latents is None else None
        if clean.batch_size not in (1, num):
            raise ValueError(f"{clean.batch_size} inputs were given for num={num}: give one input, or one per clip")
        clean = clean.map(lambda p: p.expand(num, *p.shape[1:]).clone() if p.shape[0] == 1 else p)

        def sample(t: Task, c: AV, history: torch.Tensor | None = None, anchor: torch.Tensor | None = None,
                   video_noise: torch.Tensor | None = None) -> AV:
            """``video_noise``: the noise a rolled window draws its video from (the stream's held noise); the
            audio's is then drawn fresh. None: every part fresh."""
            noise = None if video_noise is None else AV(video_noise, torch.randn(c.audio.shape, generator=generator))
            return self._sample(t, c, sampling, generator, history, anchor, noise)

        out = sample(task, clean)
        if rolls and sampling.keyframe_first and not bool(task.given[:, 0].any()):
            keyframe = task.given.clone()  # (M, N): the task's given cells and the first window's segment 0
            keyframe[:, 0] = True
            out = sample(Task(f"{task.name}+keyframe", keyframe), out)
        whole = {m: inputs[m].expand(num, *inputs[m].shape[1:]) for m in _given_whole(task) if inputs[m] is not None}
        first_v, first_a = self._clips(out, whole)
        frames = None if duration is None else max(1, round(duration * layout.fps))  # None: no end
        samples = None if duration is None else round(duration * layout.sample_rate)
        windows = [(first_v, first_a, out)]
        if rolls:
            windows = itertools.chain(windows, self._roll(task, video, audio, out, first_v, first_a, duration, offset,
                                                          available, sample, sampling, generator))
        made_v = made_a = 0
        for new_v, new_a, out in windows:
            if frames is not None:  # the last window: only what the duration asks for
                new_v, new_a = new_v[:, :max(0, frames - made_v)], new_a[:, :max(0, samples - made_a)]
            # copies: a view would hold the whole decoded window in memory for as long as the chunk is kept
            yield Chunk(new_v.clone().numpy(), new_a.clone().numpy(), out, task, made_v / layout.fps, layout.fps,
                        layout.sample_rate)
            made_v, made_a = made_v + new_v.shape[1], made_a + new_a.shape[1]

    def __call__(self, task: str | Task = "joint", video=None, audio=None, *, num: int = 1, seed: int = 0,
                 duration: float | None = None, sampling: SamplingConfig | None = None) -> Result:
        """Generate ``num`` clips for a task (a preset name or a ``Task`` grid), ``duration`` seconds long (default:
        one window; longer rolls on, see the module doc). ``video``/``audio``: the given parts, as paths, arrays
        (T, H, W, 3) uint8 / (S,) float32, or batches of them. ``sampling``: how (``SamplingConfig``). For latents
        as input, or an offset into the inputs, ``Result.join(pipe.stream(...))`` gives the same clips."""
        duration = float(self.layout.duration) if duration is None else duration
        return Result.join(self.stream(task, video, audio, num=num, seed=seed, duration=duration, sampling=sampling))


def _given_whole(task: Task) -> list[int]:
    """The modalities a task gives in every segment (a2v's audio, v2a's video): past one window they slide along
    their input."""
    return [m for m in (VIDEO, AUDIO) if bool(task.given[m].all())]


def codecs_of(folder: Path, info: dict) -> Path:
    """The codecs a checkpoint names (recorded by ``avdit train``), or codecs copied beside it; a checkpoint that
    names none (exported with the bundled codecs) uses the bundled ones."""
    if info.get("codecs") and Path(info["codecs"]).is_dir():
        return Path(info["codecs"])
    if (folder / "video.json").exists():  # codecs copied beside the checkpoint
        return folder
    if info.get("codecs"):
        raise CodecError(f"{folder} was trained with the codecs in {info['codecs']}, which is not there now; give "
                         "codecs=FOLDER with that folder (or copy video.* and audio.* beside the checkpoint)")
    return bundled_codecs_dir()


def export_checkpoint(folder: str | Path, out: str | Path, half: bool = True, merge: bool = False) -> Path:
    """Copy the model of a checkpoint or run folder to ``out`` (fp16 weights unless ``half=False``): a small
    checkpoint to share or bundle. Its JSON keeps the codec digest, so it still refuses other codecs; the path of
    the bundled codecs is dropped, so the checkpoint finds them wherever avdit is installed. A folder of LoRA
    adapters is written as a plain checkpoint, its adapters merged into the base weights: only with ``merge``."""
    folder = Path(folder)
    if lora.is_adapter(folder) and not merge:
        raise ValueError(f"{folder} holds LoRA adapters: give merge=True to write them merged into their base as a "
                         "plain checkpoint (the folder itself already works wherever a checkpoint does)")
    model, info = AVDiT.from_pretrained(folder), AVDiT.load_info(folder)
    if info.get("codecs") and Path(info["codecs"]).resolve() == bundled_codecs_dir().resolve():
        info = {**info, "codecs": None}
    info = {k: v for k, v in info.items() if k not in ("lora", "base", "base_digest")}
    dtype = "float16" if half else "float32"
    return model.save_pretrained(out, {**info, "exported_from": str(folder), "dtype": dtype}, half=half)
