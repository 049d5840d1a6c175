"""Writing mp4 (H.264 video + AAC audio) and wav, atomically: a crash never leaves a half-written file."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from avdit.utils.atomic import atomic_path
from avdit.media.errors import MediaError

AAC_FRAME = 1024


def _check_target(path) -> None:
    if Path(path).is_dir():
        raise MediaError(path, "is a folder; give a file name to write")


def _check_video(path, video: np.ndarray) -> None:
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise MediaError(path, f"video must be uint8 (T, H, W, 3), got {video.dtype} {video.shape}")
    if video.shape[1] % 2 or video.shape[2] % 2:
        raise MediaError(path, f"H.264 needs an even frame size, got {video.shape[2]}x{video.shape[1]}")


def _check_audio(path, audio: np.ndarray) -> np.ndarray:
    if audio.ndim != 1:
        raise MediaError(path, f"audio must be mono (S,), got shape {audio.shape}")
    return np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)


def _add_h264(container, fps: int, width: int, height: int, options: dict) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {**options, "threads": "1"}
    stream.codec_context.thread_count = 1  # no thread pools: see media.read._single_threaded
    return stream


def _add_aac(container, sample_rate: int) -> av.AudioStream:
    stream = container.add_stream("aac", rate=sample_rate)
    stream.layout = "mono"
    return stream


def _video_frame(image: np.ndarray, pts: int) -> av.VideoFrame:
    """(H, W, 3) uint8 RGB as a yuv420p frame stamped ``pts``. Converted here, not inside encode(): with PyAV's
    implicit conversion the same frames gave 7 different encodings in 30 writes in one process; converted here, one
    encoding in 600 writes of three clips (a rarer variation, up to ~25/255 decoded, was still seen under pytest:
    cause unknown)."""
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    return frame


def _audio_frame(samples: np.ndarray, sample_rate: int, pts: int) -> av.AudioFrame:
    """(s,) float32 mono samples as a frame stamped ``pts`` (in samples)."""
    frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
    frame.sample_rate, frame.pts = sample_rate, pts
    return frame


def write_mp4(path: str | os.PathLike, video: np.ndarray | None, audio: np.ndarray | None, fps: int,
              sample_rate: int, crf: int = 18) -> None:
    """Write H.264 (yuv420p, constant ``crf``) and AAC mono into one mp4; either may be None, not both.

    Frame j is stamped at j / fps and audio sample i at i / sample_rate, so a read back keeps them in sync.
    """
    if video is None and audio is None:
        raise MediaError(path, "nothing to write: no video and no audio")
    _check_target(path)
    if video is not None:
        _check_video(path, video)
    if audio is not None:
        audio = _check_audio(path, audio)
    with atomic_path(path, ".mp4") as tmp, av.open(tmp, "w", format="mp4") as container:
        video_stream = audio_stream = None
        if video is not None:
            video_stream = _add_h264(container, fps, video.shape[2], video.shape[1],
                                     {"crf": str(crf), "preset": "medium"})
        if audio is not None:
            audio_stream = _add_aac(container, sample_rate)
        if video_stream is not None:
            for j, image in enumerate(video):
                container.mux(video_stream.encode(_video_frame(image, j)))
            container.mux(video_stream.encode(None))
        if audio_stream is not None:
            for i in range(0, audio.shape[0], AAC_FRAME):
                container.mux(audio_stream.encode(_audio_frame(audio[i:i + AAC_FRAME], sample_rate, i)))
            container.mux(audio_stream.encode(None))


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono wav."""
    audio = _check_audio(path, audio)
    _check_target(path)
    with atomic_path(path, ".wav") as tmp, av.open(tmp, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate)
        stream.layout = "mono"
        for i in range(0, audio.shape[0], 4096):
            container.mux(stream.encode(_audio_frame(audio[i:i + 4096], sample_rate, i)))
        container.mux(stream.encode(None))


class Mp4Stream:
    """An mp4 written as it is made (H.264 + AAC mono, fragmented): memory holds one chunk, and a file cut off at
    any point plays up to its last fragment (half a second); ``close`` (or the ``with`` block) finishes it.

    ``target`` is a path or a binary file object (``sys.stdout.buffer``: a pipe to ffplay or ffmpeg). ``write``
    takes frames (t, H, W, 3) uint8 and samples (s,) float; frame j is stamped j / fps and sample i i / sample_rate
    over the whole stream, as ``write_mp4`` stamps them. A fragmented mp4 has no edit list to hide the AAC
    encoder's priming (its first frame), which would make the audio late by 1024 samples: the stream's first 1024
    samples are dropped instead, so the priming plays in their place and every later sample is on time.
    """

    def __init__(self, target, width: int, height: int, fps: int, sample_rate: int, crf: int = 18):
        name = target if isinstance(target, (str, os.PathLike)) else "<stream>"
        if isinstance(target, (str, os.PathLike)):
            _check_target(target)
        if width % 2 or height % 2:
            raise MediaError(name, f"H.264 needs an even frame size, got {width}x{height}")
        self.name, self.sample_rate, self.size = name, sample_rate, (height, width)
        # a fragment at every keyframe, a keyframe every half second; no moov at the end to wait for
        self.container = av.open(target, "w", format="mp4", options={
            "movflags": "frag_keyframe+empty_moov+default_base_moof", "use_editlist": "1"})
        self.video = _add_h264(self.container, fps, width, height, {"crf": str(crf), "preset": "veryfast",
                                                                     "tune": "zerolatency", "g": str(max(1, fps // 2))})
        self.audio = _add_aac(self.container, sample_rate)
        self.frames = self.samples = 0
        self.pending = np.zeros(0, dtype=np.float32)  # samples short of a whole AAC frame
        self.priming = AAC_FRAME  # samples still to drop (see the class doc)
        self.closed = False

    def write(self, video: np.ndarray, audio: np.ndarray) -> None:
        _check_video(self.name, video)
        if video.shape[1:3] != self.size:
            raise MediaError(self.name, f"frames of {video.shape[2]}x{video.shape[1]} in a stream of "
                                        f"{self.size[1]}x{self.size[0]}")
        for image in video:
            self.container.mux(self.video.encode(_video_frame(image, self.frames)))
            self.frames += 1
        audio = _check_audio(self.name, audio)
        dropped = min(self.priming, audio.shape[0])
        self.priming -= dropped
        self.pending = np.concatenate([self.pending, audio[dropped:]])
        whole = self.pending.shape[0] // AAC_FRAME * AAC_FRAME
        self._write_audio(self.pending[:whole])
        self.pending = self.pending[whole:]

    def _write_audio(self, audio: np.ndarray) -> None:
        for i in range(0, audio.shape[0], AAC_FRAME):
            frame = _audio_frame(audio[i:i + AAC_FRAME], self.sample_rate, self.samples)
            self.samples += frame.samples  # as fed: the priming is not counted
            self.container.mux(self.audio.encode(frame))

    def close(self) -> None:
        """Flush both encoders and finish the file (safe to call twice)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._write_audio(self.pending)
            self.container.mux(self.video.encode(None))
            self.container.mux(self.audio.encode(None))
        finally:
            self.container.close()

    def __enter__(self) -> "Mp4Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
