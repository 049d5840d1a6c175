import os

import numpy as np
import pytest

from avdit.data.bouncing_tones import make_clip
from avdit.media import MediaError, probe, read_audio, read_clip, read_video, write_mp4, write_wav
from tests.media_files import clicks, counter_video, frame_index, write_file

CLICKS = (0.375, 1.125)


def click_offsets_ms(audio, sample_rate, times=CLICKS, window=0.05):
    """Where the loudest sample near each expected click lies, relative to it, in ms."""
    offsets = []
    for t in times:
        lo = round((t - window) * sample_rate)
        peak = lo + int(np.argmax(np.abs(audio[lo:lo + round(2 * window * sample_rate)])))
        offsets.append((peak / sample_rate - t) * 1000)
    return np.array(offsets)


def test_mp4_round_trip_keeps_sync_and_exact_lengths(tmp_path):
    """A click at a known frame's time comes back within 1 ms of it, with exactly 17 frames and 34000 samples."""
    audio = np.zeros(34000, np.float32)
    frames = [1, 3, 9, 16]
    for j in frames:
        audio[j * 2000] = 0.9  # frame j is shown at j / 8 s = sample 2000 j
    video = counter_video(17, 64, 64)
    write_mp4(tmp_path / "clip.mp4", video, audio, fps=8, sample_rate=16000)
    clip = read_clip(tmp_path / "clip.mp4", fps=8, sample_rate=16000, size=(64, 64), duration=17 / 8)
    assert clip.video.shape == (17, 64, 64, 3) and clip.video.dtype == np.uint8
    assert clip.audio.shape == (34000,) and clip.audio.dtype == np.float32
    assert frame_index(clip.video).tolist() == list(range(17))
    assert np.abs(click_offsets_ms(clip.audio, 16000, [j / 8 for j in frames], window=0.03)).max() <= 1.0


def test_bouncing_tones_clip_survives_the_round_trip(tmp_path):
    clip = make_clip(0, 0)
    write_mp4(tmp_path / "bt.mp4", clip.video, clip.audio, 8, 16000)
    back = read_clip(tmp_path / "bt.mp4", 8, 16000, (64, 64), duration=17 / 8)
    assert np.abs(back.video.astype(int) - clip.video).mean() < 3
    snr = 10 * np.log10((clip.audio**2).sum() / ((back.audio - clip.audio) ** 2).sum())
    assert snr > 15


def test_reading_a_span_keeps_its_offset(tmp_path):
    write_file(tmp_path / "a.mp4")
    clip = read_clip(tmp_path / "a.mp4", 8, 16000, start=1.0, duration=1.0)
    assert frame_index(clip.video).tolist() == list(range(8, 16))
    assert abs(click_offsets_ms(clip.audio, 16000, [0.125])[0]) <= 1.0  # the click at 1.125 s


@pytest.mark.parametrize(
    "name, kwargs, frame_tolerance, sync_ms",
    [
        ("mpeg4_mp3.avi", dict(container="avi", video_codec="mpeg4", audio_codec="mp3", sample_rate=44100,
                               channels=2), 1, 30),  # MP3 in AVI carries no encoder-delay field: ~25 ms late
        ("vp9_opus.webm", dict(video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48000, channels=2,
                               audio_format="flt"), 0, 1),
        ("h264_30fps.mp4", dict(fps=30, frames=64), 0, 1),
        ("mjpeg_flac_25fps.mkv", dict(fps=25, frames=54, video_codec="mjpeg", pix_fmt="yuvj420p",
                                      audio_codec="flac", audio_format="s16"), 0, 1),
        ("pcm_44k_stereo.mov", dict(audio_codec="pcm_s16le", audio_format="s16", sample_rate=44100, channels=2),
         0, 1),
    ],
)
def test_other_containers_and_codecs(tmp_path, name, kwargs, frame_tolerance, sync_ms):
    path = tmp_path / name
    write_file(path, **kwargs)
    clip = read_clip(path, fps=8, sample_rate=16000, size=(64, 64), duration=2.0)
    assert clip.video.shape == (16, 64, 64, 3) and clip.audio.shape == (32000,)
    source_fps = kwargs.get("fps", 8)
    expected = np.floor(np.arange(16) / 8 * source_fps + 1e-9)  # the frame on screen at j / 8 s
    assert np.abs(frame_index(clip.video) - expected).max() <= frame_tolerance
    assert np.abs(click_offsets_ms(clip.audio, 16000)).max() <= sync_ms


def test_variable_frame_rate_is_resampled_by_time(tmp_path):
    times = [0, .1, .15, .4, .5, .55, .6, .9, 1.0, 1.2, 1.3, 1.45, 1.5, 1.7, 1.9, 2.0, 2.05]
    write_file(tmp_path / "vfr.mkv", frame_times=times, audio_codec=None)
    video = read_video(tmp_path / "vfr.mkv", fps=8, num_frames=16)
    expected = [max(k for k, s in enumerate(times) if s <= j / 8 + 1e-9) for j in range(16)]
    assert frame_index(video).tolist() == expected


def test_non_square_frames_are_centre_cropped_then_resized(tmp_path):
    write_file(tmp_path / "wide.mp4", size=(48, 96), audio_codec=None)
    native = read_video(tmp_path / "wide.mp4", fps=8, num_frames=17)
    assert native.shape == (17, 48, 96, 3) and frame_index(native).tolist() == list(range(17))
    square = read_video(tmp_path / "wide.mp4", fps=8, size=(32, 32), num_frames=17)
    assert square.shape == (17, 32, 32, 3)
    # the centre 48 of 96 columns hold stripes 2..5 (bits 2..5 of the counter, 12 px each), now 8 px each
    got = square[:, 16, [4, 12, 20, 28], 0] > 128
    want = (np.arange(17)[:, None] >> np.arange(2, 6)[None, :]) & 1 == 1
    assert np.array_equal(got, want)


def test_audio_only_files_read_as_audio(tmp_path):
    write_file(tmp_path / "a.flac", container="flac", video_codec=None, audio_codec="flac", audio_format="s16")
    write_file(tmp_path / "b.ogg", container="ogg", video_codec=None, audio_codec="libopus", sample_rate=48000,
               audio_format="flt")
    write_wav(tmp_path / "c.wav", clicks(34000, 16000, list(CLICKS))[0], 16000)
    for name in ("a.flac", "b.ogg", "c.wav"):
        info = probe(tmp_path / name)
        assert info.has_audio and not info.has_video
        audio = read_audio(tmp_path / name, 16000, num_samples=32000)
        assert np.abs(click_offsets_ms(audio, 16000)).max() <= 1.0, name
        with pytest.raises(MediaError, match="no video stream"):
            read_video(tmp_path / name, 8)


@pytest.mark.parametrize("problem", ["missing", "empty", "random", "truncated", "folder", "no_audio", "short"])
def test_bad_files_get_a_clear_error_naming_the_file(tmp_path, problem):
    path = tmp_path / "bad.mp4"
    if problem == "empty":
        path.write_bytes(b"")
        message = "empty"
    elif problem == "random":
        path.write_bytes(np.random.default_rng(0).bytes(20000))
        message = "not a readable media file"
    elif problem == "truncated":
        write_file(tmp_path / "good.mp4")
        data = (tmp_path / "good.mp4").read_bytes()
        path.write_bytes(data[: len(data) // 2])
        message = "truncated|not a readable media file|corrupt"
    elif problem == "folder":
        path.mkdir()
        message = "is a folder"
    elif problem == "no_audio":
        write_file(path, audio_codec=None)
        message = "no audio stream"
    elif problem == "short":
        write_file(path)
        message = "too short"
    else:
        message = "file not found"
    duration = 4.0 if problem == "short" else 2.0
    with pytest.raises(MediaError, match=message) as err:
        read_clip(path, 8, 16000, (64, 64), duration=duration)
    assert str(path) in str(err.value)


def test_writing_refuses_bad_arrays_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(MediaError, match="uint8"):
        write_mp4(path, np.zeros((4, 64, 64, 3), np.float32), None, 8, 16000)
    with pytest.raises(MediaError, match="even frame size"):
        write_mp4(path, np.zeros((4, 63, 64, 3), np.uint8), None, 8, 16000)
    with pytest.raises(MediaError, match="mono"):
        write_mp4(path, None, np.zeros((2, 100), np.float32), 8, 16000)
    assert os.listdir(tmp_path) == []


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "out.mp4"
    clip = make_clip(0, 0)
    write_mp4(path, clip.video, clip.audio, 8, 16000)
    before = path.read_bytes()

    class Boom(RuntimeError):
        pass

    import av

    real = av.VideoFrame.from_ndarray
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise Boom("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing)
    with pytest.raises(Boom):
        write_mp4(path, clip.video, clip.audio, 8, 16000)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["out.mp4"]


def test_absurd_sizes_are_refused(tmp_path, monkeypatch):
    import avdit.media.read as read_module

    write_file(tmp_path / "a.mp4")
    monkeypatch.setattr(read_module, "MAX_PIXELS", 32 * 32)
    with pytest.raises(MediaError, match="absurd frame size 64x64"):
        probe(tmp_path / "a.mp4")
    monkeypatch.setattr(read_module, "MAX_SECONDS", 1.0)
    monkeypatch.setattr(read_module, "MAX_PIXELS", 8192 * 8192)
    with pytest.raises(MediaError, match="absurd duration"):
        read_clip(tmp_path / "a.mp4", 8, 16000, duration=1.0)


def test_written_files_get_the_usual_permissions(tmp_path):
    clip = make_clip(0, 0)
    write_mp4(tmp_path / "a.mp4", clip.video, clip.audio, 8, 16000)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.mp4").stat().st_mode & 0o777 == 0o666 & ~mask
