"""Media files the tests make themselves: a click track and a frame counter in many containers and codecs."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np


def counter_video(frames: int, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8 where frame j shows j in binary as 8 vertical black/white stripes (bit 0 leftmost)."""
    bits = (np.arange(frames)[:, None] >> np.arange(8)[None, :]) & 1  # (T, 8)
    stripes = np.repeat(bits, width // 8, axis=1) * 255  # (T, W)
    return np.broadcast_to(stripes[:, None, :, None], (frames, height, width, 3)).astype(np.uint8).copy()


def frame_index(video: np.ndarray) -> np.ndarray:
    """Read back the counter of each frame of a ``counter_video`` after lossy coding and resizing: (T,) int."""
    frames, height, width, _ = video.shape
    stripe = width / 8
    centres = ((np.arange(8) + 0.5) * stripe).astype(int)
    bits = video[:, height // 2, centres, :].mean(axis=-1) > 128  # (T, 8)
    return (bits * (1 << np.arange(8))).sum(axis=1)


def clicks(num_samples: int, sample_rate: int, times: list[float], channels: int = 1) -> np.ndarray:
    """(channels, S) float32 with a one-sample click of 0.9 at each time."""
    audio = np.zeros((channels, num_samples), np.float32)
    for t in times:
        audio[:, round(t * sample_rate)] = 0.9
    return audio


def write_file(path, *, container: str | None = None, video_codec: str | None = "libx264", fps: float = 8,
               frame_times: list[float] | None = None, size: tuple[int, int] = (64, 64), frames: int = 17,
               audio_codec: str | None = "aac", sample_rate: int = 16000, channels: int = 1,
               click_times: tuple[float, ...] = (0.375, 1.125), duration: float = 2.125,
               pix_fmt: str = "yuv420p", audio_format: str = "fltp") -> dict:
    """Write a test file; ``frame_times`` (seconds) makes a variable-frame-rate stream."""
    height, width = size
    video = counter_video(frames, height, width)
    num_samples = round(duration * sample_rate)
    audio = clicks(num_samples, sample_rate, list(click_times), channels)
    with av.open(str(path), "w", format=container) as out:
        vs = as_ = None
        if video_codec:
            if frame_times is None:
                vs = out.add_stream(video_codec, rate=Fraction(fps).limit_denominator(1001))
            else:
                vs = out.add_stream(video_codec, rate=1000)
                vs.codec_context.time_base = Fraction(1, 1000)
            vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        if audio_codec:
            as_ = out.add_stream(audio_codec, rate=sample_rate)
            as_.layout = "mono" if channels == 1 else "stereo"
        if vs is not None:
            for j in range(frames):
                frame = av.VideoFrame.from_ndarray(video[j], format="rgb24")
                frame.pts = j if frame_times is None else round(frame_times[j] * 1000)
                if frame_times is not None:
                    frame.time_base = Fraction(1, 1000)
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        if as_ is not None:
            step = as_.codec_context.frame_size or 1024
            data = (audio * 32767).astype(np.int16) if audio_format.startswith("s16") else audio
            for i in range(0, num_samples, step):
                chunk = data[:, i:i + step]
                if not audio_format.endswith("p"):  # packed formats interleave the channels in one plane
                    chunk = chunk.T.reshape(1, -1)
                chunk = np.ascontiguousarray(chunk)
                frame = av.AudioFrame.from_ndarray(chunk, format=audio_format, layout=as_.layout.name)
                frame.sample_rate, frame.pts = sample_rate, i
                out.mux(as_.encode(frame))
            out.mux(as_.encode(None))
    return {"video": video, "audio": audio}
