"""Writing mp4 (H.264 video + AAC audio) and wav, atomically: a crash never leaves a half-written file."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from avdit.atomic import atomic_path
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
            video_stream = container.add_stream("libx264", rate=fps)
            video_stream.width, video_stream.height = video.shape[2], video.shape[1]
            video_stream.pix_fmt = "yuv420p"
            video_stream.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
            video_stream.codec_context.thread_count = 1  # no thread pools: see media.read._single_threaded
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=sample_rate)
            audio_stream.layout = "mono"
        if video_stream is not None:
            for j, image in enumerate(video):
                # Converted here, not inside encode(): with PyAV's implicit conversion the same frames gave 7
                # different encodings in 30 writes in one process; converted here, one encoding in 600 writes of
                # three clips (a rarer variation, up to ~25/255 decoded, was still seen under pytest: cause unknown).
                frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
                frame.pts = j
                container.mux(video_stream.encode(frame))
            container.mux(video_stream.encode(None))
        if audio_stream is not None:
            for i in range(0, audio.shape[0], AAC_FRAME):
                frame = av.AudioFrame.from_ndarray(audio[None, i:i + AAC_FRAME], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, i
                container.mux(audio_stream.encode(frame))
            container.mux(audio_stream.encode(None))


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono wav."""
    audio = _check_audio(path, audio)
    _check_target(path)
    with atomic_path(path, ".wav") as tmp, av.open(tmp, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate)
        stream.layout = "mono"
        for i in range(0, audio.shape[0], 4096):
            frame = av.AudioFrame.from_ndarray(audio[None, i:i + 4096], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
