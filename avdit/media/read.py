"""Reading video and audio from any file FFmpeg decodes (through PyAV), following timestamps.

Video is resampled to the target fps by time: output frame j shows the source frame on screen at time
start + j / fps (variable frame rate included), centre-cropped to the target aspect and resized. Audio is
resampled to the target rate, mixed to mono, and every decoded frame is placed at its own timestamp, so the
encoder's priming samples and gaps cannot shift it against the video.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from avdit.media.errors import MediaError

MAX_PIXELS = 8192 * 8192  # one frame larger than this is refused as absurd
MAX_SECONDS = 24 * 3600
LATE_START = 0.25  # a video stream whose first frame comes this late (AVI's dropped frames) shows it from 0
AUDIO_LEAD = 0.5  # seconds of audio decoded before a span, so the resampler and decoder settle first

# Files where a seek failed or gave unusable data (by path, size, mtime): later reads decode from the start.
_NO_SEEK: set[tuple[str, int, float]] = set()


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds, without decoding it."""

    path: str
    duration: float  # seconds (longest stream)
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0  # average
    sample_rate: int = 0
    channels: int = 0
    format: str = ""  # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpeg"


@dataclass
class Clip:
    """Decoded media: video (T, H, W, 3) uint8 at ``fps`` and/or audio (S,) float32 mono at ``sample_rate``."""

    video: np.ndarray | None
    audio: np.ndarray | None
    fps: int
    sample_rate: int


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    if not os.path.exists(path):
        raise MediaError(path, "file not found")
    if os.path.isdir(path):
        raise MediaError(path, "is a folder, not a media file")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "file is empty (zero bytes)")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as err:
        raise MediaError(path, f"not a readable media file ({err.strerror or type(err).__name__})") from None


def _stream_duration(stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def _info(container, path) -> MediaInfo:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise MediaError(path, "no video or audio stream")
    durations = [_stream_duration(s) for s in (video, audio) if s is not None]
    if container.duration is not None:
        durations.append(container.duration / av.time_base)
    info = MediaInfo(
        path=str(path),
        duration=max(durations),
        has_video=video is not None,
        has_audio=audio is not None,
        width=video.codec_context.width if video else 0,
        height=video.codec_context.height if video else 0,
        fps=float(video.average_rate or video.guessed_rate or 0) if video else 0.0,
        sample_rate=audio.codec_context.sample_rate if audio else 0,
        channels=audio.codec_context.channels if audio else 0,
        format=container.format.name,
    )
    if info.has_video and info.width * info.height > MAX_PIXELS:
        raise MediaError(path, f"absurd frame size {info.width}x{info.height}")
    if info.duration > MAX_SECONDS:
        raise MediaError(path, f"absurd duration {info.duration:.0f} s")
    return info


def probe(path: str | os.PathLike) -> MediaInfo:
    """Streams, size, rates and duration of a media file; a clear ``MediaError`` if it is not one."""
    with _open(path) as container:
        return _info(container, path)


def _crop_resize(frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    """Centre crop to the target aspect, then resize: (H, W, 3) uint8."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    height, width = size
    src_h, src_w = frame.height, frame.width
    if src_w * height > width * src_h:  # too wide: crop columns
        crop_w, crop_h = round(src_h * width / height), src_h
    else:
        crop_w, crop_h = src_w, round(src_w * height / width)
    rgb = frame.to_ndarray(format="rgb24")
    top, left = (src_h - crop_h) // 2, (src_w - crop_w) // 2
    cropped = np.ascontiguousarray(rgb[top:top + crop_h, left:left + crop_w])
    if (crop_h, crop_w) == (height, width):
        return cropped
    resized = av.VideoFrame.from_ndarray(cropped, format="rgb24").reformat(
        width=width, height=height, interpolation="AREA")
    return resized.to_ndarray(format="rgb24")


def _stream_start(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _single_threaded(stream) -> None:
    """Decode without FFmpeg's thread pools: faster for short clips (1.5x on Bouncing Tones, where starting
    the pool costs more than it saves), and DataLoader workers give the parallelism. It also leaves no pool
    for a forked process to inherit half-dead (see ``avdit.data.loader``).
    """
    stream.thread_type = "NONE"
    stream.codec_context.thread_count = 1


class _VideoSink:
    """Picks, for each target time, the decoded frame on screen then (frames arrive in time order).

    Frames are converted to arrays only when a target takes them, so decoding through frames before the span
    (a read without a seek) costs no conversions.
    """

    def __init__(self, path, stream, origin: float, targets: np.ndarray, size, period: float):
        self.path, self.stream, self.origin, self.targets, self.size = path, stream, origin, targets, size
        self.period = period  # how long the last frame stays on screen
        self.frames: list[np.ndarray | None] = [None] * len(targets)
        self.current, self.current_time, self.j = None, -math.inf, 0
        self.first_time: float | None = None  # time of the first decoded frame
        self._converted: tuple[av.VideoFrame, np.ndarray] | None = None

    @property
    def done(self) -> bool:
        return self.j >= len(self.targets)

    def _array(self, frame: av.VideoFrame) -> np.ndarray:
        if self._converted is None or self._converted[0] is not frame:
            self._converted = (frame, _crop_resize(frame, self.size))
        return self._converted[1]

    def feed(self, frame: av.VideoFrame) -> None:
        if frame.pts is None or self.done:
            return
        time = float(frame.pts * self.stream.time_base) - self.origin
        if self.first_time is None:
            self.first_time = time
        # every target shown before this frame arrives gets the previous frame
        while not self.done and self.targets[self.j] < time - 1e-6:
            if self.current is not None:
                self.frames[self.j] = self._array(self.current)
            elif time - self.targets[self.j] < max(self.period, LATE_START):  # the stream starts late: its first frame
                self.frames[self.j] = self._array(frame)
            self.j += 1
        if not self.done:
            self.current, self.current_time = frame, time

    def finish(self, start: float, fps: int) -> np.ndarray:
        while not self.done and self.current is not None and self.targets[self.j] < self.current_time + self.period + 1e-6:
            self.frames[self.j] = self._array(self.current)
            self.j += 1
        missing = [k for k, f in enumerate(self.frames) if f is None]
        if missing:
            have = self.targets[missing[0]] - start
            raise MediaError(self.path, f"video too short or truncated: {have:.3f} s decoded after {start:.3f} s, "
                                        f"{len(self.targets) / fps:.3f} s needed")
        return np.stack(self.frames)


class _AudioSink:
    """Resamples to the target rate and places the samples from the first frame's timestamp on."""

    def __init__(self, path, stream, origin: float, start: float, num_samples: int, sample_rate: int):
        self.path, self.stream, self.origin, self.start = path, stream, origin, start
        self.sample_rate = sample_rate
        self.out = np.zeros(num_samples, dtype=np.float32)
        self.filled = 0  # samples written so far (from index 0)
        self.cursor: int | None = None  # index in ``out`` of the next resampled sample
        self.first_cursor: int | None = None  # where the first frame placed went
        self.resampler = av.AudioResampler(format="fltp", rate=sample_rate)

    @property
    def done(self) -> bool:
        return self.cursor is not None and self.cursor >= self.out.shape[0]

    def feed(self, frame: av.AudioFrame) -> None:
        if self.done or (frame.pts is None and self.cursor is None):
            return
        if self.cursor is None:  # anchor the resampled stream on the first frame's timestamp
            first = float(frame.pts * self.stream.time_base) - self.origin - self.start
            if first + frame.samples / frame.sample_rate < -AUDIO_LEAD:
                return  # ends long before the span: what a seek would have skipped
            self.cursor = self.first_cursor = round(first * self.sample_rate)
        for chunk in self.resampler.resample(frame):
            self._place(chunk)

    def _place(self, chunk: av.AudioFrame) -> None:
        samples = chunk.to_ndarray().mean(axis=0)  # (channels, n) -> mono (n,)
        lo, hi = max(self.cursor, 0), min(self.cursor + samples.shape[0], self.out.shape[0])
        if hi > lo:
            self.out[lo:hi] = samples[lo - self.cursor:hi - self.cursor]
            self.filled = max(self.filled, hi)
        self.cursor += samples.shape[0]

    def finish(self) -> np.ndarray:
        if self.cursor is not None and not self.done:
            for chunk in self.resampler.resample(None):
                self._place(chunk)
        num_samples = self.out.shape[0]
        if self.filled < num_samples - round(0.002 * self.sample_rate):  # 2 ms of encoder padding may be lost
            raise MediaError(self.path, f"audio too short or truncated: {self.filled / self.sample_rate:.3f} s "
                                        f"decoded after {self.start:.3f} s, {num_samples / self.sample_rate:.3f} s needed")
        return self.out


def _ends_before(packet: av.Packet, time: float) -> bool:
    if packet.pts is None or not packet.duration or packet.time_base is None:
        return False
    return float((packet.pts + packet.duration) * packet.time_base) < time


class _SeekFailed(Exception):
    """A seek that failed or landed somewhere unusable: read again from the start of the file."""


def _file_key(path) -> tuple[str, int, float]:
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_size, stat.st_mtime


def read_clip(path, fps: int, sample_rate: int, size: tuple[int, int] | None = None, start: float = 0.0,
              duration: float | Fraction | None = None, video: bool = True, audio: bool = True) -> Clip:
    """Video and/or audio of one span of a file, at the target rates and size, in one pass over the file.

    Without ``duration`` the span runs to the end of the file. The read seeks to just before the span; where
    the seek fails or lands where nothing usable decodes (Matroska without cues, MPEG program streams), the
    file is decoded from its start instead, dropping what comes before the span, with the same result.
    """
    if not (video or audio):
        raise ValueError("read_clip: ask for video, audio or both")
    key = _file_key(path) if os.path.isfile(path) else None
    if key is not None and key not in _NO_SEEK:
        try:
            return _read(path, fps, sample_rate, size, start, duration, video, audio, seek=True)
        except _SeekFailed:
            pass
        clip = _read(path, fps, sample_rate, size, start, duration, video, audio, seek=False)
        _NO_SEEK.add(key)  # the file reads from its start but not after a seek: do not seek in it again
        return clip
    return _read(path, fps, sample_rate, size, start, duration, video, audio, seek=False)


def _read(path, fps, sample_rate, size, start, duration, video, audio, seek: bool) -> Clip:
    with _open(path) as container:
        info = _info(container, path)
        if video and not info.has_video:
            raise MediaError(path, "no video stream")
        if audio and not info.has_audio:
            raise MediaError(path, "no audio stream")
        span = info.duration - start if duration is None else float(duration)
        if span <= 0 or start < 0:
            raise MediaError(path, f"zero length: nothing from {start:.3f} s (file lasts {info.duration:.3f} s)")
        video_stream = container.streams.video[0] if info.has_video else None
        audio_stream = container.streams.audio[0] if info.has_audio else None
        for stream in (video_stream, audio_stream):
            if stream is not None:
                _single_threaded(stream)
        origin = _stream_start(video_stream or audio_stream)
        sinks = {}
        if video:
            num_frames = round(span * fps) if duration is not None else math.floor(span * fps + 1e-6)
            targets = start + np.arange(num_frames) / fps  # (T,) seconds
            sinks[video_stream] = _VideoSink(path, video_stream, origin, targets, size, 1.0 / (info.fps or fps))
        if audio:
            num_samples = round(span * sample_rate) if duration is not None else math.floor(span * sample_rate + 1e-6)
            sinks[audio_stream] = _AudioSink(path, audio_stream, origin, start, num_samples, sample_rate)
        anchor = video_stream or audio_stream
        seek_to = origin + start - (AUDIO_LEAD if audio else 0.0)  # audio frames start a little before the span
        seeked = seek and seek_to > 0
        if seeked:
            try:
                container.seek(int(seek_to / anchor.time_base), stream=anchor, backward=True, any_frame=False)
            except av.error.FFmpegError:
                raise _SeekFailed from None
        try:
            for packet in container.demux(*sinks):
                sink = sinks[packet.stream]
                if sink.done:
                    if all(s.done for s in sinks.values()):
                        break
                    continue
                if not seeked and packet.stream is audio_stream and _ends_before(packet, origin + start - AUDIO_LEAD - 0.1):
                    continue  # long before the span: not worth decoding (a seek would have skipped it)
                for frame in packet.decode():
                    sink.feed(frame)
        except av.error.FFmpegError as err:
            if seeked:
                raise _SeekFailed from None
            raise MediaError(path, f"corrupt or truncated media ({err.strerror or type(err).__name__})") from None
        if seeked:
            video_sink = sinks[video_stream] if video else None
            audio_sink = sinks[audio_stream] if audio else None
            if video_sink is not None and (video_sink.first_time is None or video_sink.first_time > targets[0] + 1e-6):
                raise _SeekFailed  # landed after the span's first frame
            if audio_sink is not None and (audio_sink.cursor is None or audio_sink.first_cursor > 0):
                raise _SeekFailed  # landed after the span's first sample
        try:
            return Clip(
                video=sinks[video_stream].finish(start, fps) if video else None,
                audio=sinks[audio_stream].finish() if audio else None,
                fps=fps,
                sample_rate=sample_rate,
            )
        except MediaError:
            if seeked:
                raise _SeekFailed from None
            raise


def read_video(path, fps: int, size: tuple[int, int] | None = None, start: float = 0.0,
               num_frames: int | None = None) -> np.ndarray:
    """(num_frames, H, W, 3) uint8: the frame on screen at start + j / fps for each j (by timestamp)."""
    duration = None if num_frames is None else Fraction(num_frames, fps)
    return read_clip(path, fps, 1, size, start, duration, video=True, audio=False).video


def read_audio(path, sample_rate: int, start: float = 0.0, num_samples: int | None = None) -> np.ndarray:
    """(num_samples,) float32 mono at ``sample_rate``, each decoded frame placed at its timestamp."""
    duration = None if num_samples is None else Fraction(num_samples, sample_rate)
    return read_clip(path, 1, sample_rate, None, start, duration, video=False, audio=True).audio
