"""Files like real folders hold: seeking that fails, MPEG program streams, formats found only by content."""

import errno
from pathlib import Path

import av
import numpy as np
import pytest

import avdit.media.read as read_module
from avdit.data.datasets import ClipDataset
from avdit.data.prepare import PrepareSettings, _readable_starts, prepare_folder
from avdit.media import MediaError, probe, read_clip
from tests.media_files import frame_index
from tests.real_files import AWKWARD, BY_NAME, CLICKS, DEBIAN_PACKAGES, DEBIAN_VIDEOS, installed, require_real_files

STARTS = (0.0, 1.0, 2.125)


def click_offsets_ms(audio: np.ndarray, start: float, sample_rate: int = 16000, window: float = 0.05) -> list:
    """Offset in ms of the loudest sample near each click inside the read span (which starts at ``start``)."""
    span = audio.shape[0] / sample_rate
    offsets = []
    for t in CLICKS:
        rel = t - start
        if window < rel < span - window:
            lo = round((rel - window) * sample_rate)
            peak = lo + int(np.argmax(np.abs(audio[lo:lo + round(2 * window * sample_rate)])))
            offsets.append((peak / sample_rate - rel) * 1000)
    return offsets


@pytest.fixture(autouse=True)
def fresh_seek_memory():
    read_module._NO_SEEK.clear()
    yield
    read_module._NO_SEEK.clear()


def test_mkv_without_cues_cannot_seek_but_reads_at_any_start(awkward_files):
    """FFmpeg's seek fails with EPERM as in the report; the read decodes from the start instead, in sync."""
    path = awkward_files["nocues.mkv"]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        with pytest.raises(av.error.FFmpegError) as err:
            container.seek(int(0.5 / stream.time_base), stream=stream, backward=True)
        assert err.value.errno == errno.EPERM
    clip = read_clip(path, 8, 16000, start=1.0, duration=2.0)
    assert frame_index(clip.video).tolist() == list(range(8, 24))
    assert np.abs(click_offsets_ms(clip.audio, 1.0)).max() <= 1.0 and len(click_offsets_ms(clip.audio, 1.0)) == 2
    assert len(read_module._NO_SEEK) == 1  # later reads of this file go straight to the decode from the start


@pytest.mark.parametrize("name", [a.name for a in AWKWARD])
def test_awkward_files_read_in_sync_at_every_start(awkward_files, name):
    """Frame counters and click positions at three starts, and the seek read equals a read from the start."""
    spec, path = BY_NAME[name], awkward_files[name]
    for start in STARTS:
        clip = read_clip(path, 8, 16000, None, start=start, duration=2.0)
        assert clip.video.shape == (16, *spec.size, 3) and clip.audio.shape == (32000,)
        expected = [spec.frame_at(start + j / 8) for j in range(16)]
        assert np.abs(frame_index(clip.video) - expected).max() <= spec.frame_tolerance, (name, start)
        offsets = click_offsets_ms(clip.audio, start)
        assert len(offsets) >= 2 and np.abs(offsets).max() <= spec.sync_ms, (name, start, offsets)
        from_start = read_module._read(path, 8, 16000, None, start, 2.0, True, True, seek=False)
        assert np.array_equal(from_start.video, clip.video), (name, start)
        assert np.abs(from_start.audio - clip.audio).max() < 1e-3, (name, start)


def test_mpeg_program_stream_falls_back_where_the_seek_lands_badly(awkward_files):
    """In MPEG-PS a seek to 2.125 s lands where the decoders fail; the read still gives the right frames."""
    path = awkward_files["program.mpeg"]
    clip = read_clip(path, 8, 16000, (64, 64), start=2.125, duration=2.125)
    assert frame_index(clip.video).tolist() == [int((2.125 + j / 8) * 25 + 1e-9) for j in range(17)]
    assert np.abs(click_offsets_ms(clip.audio, 2.125)).max() <= 2.0
    assert len(read_module._NO_SEEK) == 1


def test_a_file_broken_after_the_seek_point_names_the_file(awkward_files, tmp_path):
    data = awkward_files["nocues.mkv"].read_bytes()
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError, match="truncated|corrupt") as err:
        read_clip(path, 8, 16000, start=2.125, duration=2.0)
    assert str(path) in str(err.value)
    assert not read_module._NO_SEEK  # a file that reads from nowhere is not remembered as unseekable


def test_prepare_finds_media_by_content_and_every_indexed_clip_reads(awkward_folder, tmp_path, caplog):
    index = prepare_folder(awkward_folder, tmp_path / "out", PrepareSettings(test_fraction=0.0), progress=False)
    expected = {"nocues.mkv", "program.mpeg", "vfr.mp4", "sub/phone_clip", "sub/talk.dat", "flv1_mp3.flv",
                "mpeg4_mp3.avi"}
    assert set(index["files"]) == expected
    assert all(entry["starts"] == [0.0, 2.125] for entry in index["files"].values())
    assert set(index["skipped"]) == {"notes.txt", "sub/cover.bin"}
    assert all("not a readable media file" in why or "no audio stream" in why for why in index["skipped"].values())
    dataset = ClipDataset(tmp_path / "out", "train")
    assert len(dataset) == 14
    for k in range(len(dataset)):
        item = dataset[k]
        assert (item["file"], item["start"]) == dataset.clips[k]
        assert item["video"].shape == (17, 64, 64, 3) and item["audio"].shape == (34000,)
    assert dataset.bad_clips == {} and "skipping" not in caplog.text


def test_prepare_drops_clips_a_lying_duration_promises(awkward_files, tmp_path):
    """An MPEG-PS file cut short: its duration is estimated from the bit rate, the last clip does not read."""
    src = tmp_path / "videos"
    src.mkdir()
    data = awkward_files["program.mpeg"].read_bytes()
    (src / "cut.mpeg").write_bytes(data[: len(data) * 3 // 5])
    info = probe(src / "cut.mpeg")
    index = prepare_folder(src, tmp_path / "out", PrepareSettings(test_fraction=0.0), progress=False)
    if "cut.mpeg" in index["files"]:
        starts = index["files"]["cut.mpeg"]["starts"]
        for start in starts:
            read_clip(src / "cut.mpeg", 8, 16000, (64, 64), start=start, duration=2.125)
    else:
        assert "cut.mpeg" in index["skipped"] and info.duration >= 2.125


def debian_video(path: str):
    return pytest.param(path, id=Path(path).name, marks=pytest.mark.skipif(
        not installed(path) and not require_real_files(),
        reason=f"real file of Debian package {DEBIAN_VIDEOS[path]} not installed or hidden "
               f"(apt-get install {' '.join(DEBIAN_PACKAGES)})"))


@pytest.mark.parametrize("path", [debian_video(p) for p in DEBIAN_VIDEOS])
def test_real_videos_from_debian_read_alike_by_seek_and_from_the_start(path):
    """Videos nobody here made: the first and last clips ``prepare`` indexes read, the sound is not silence,
    and a seek read matches a read from the start."""
    settings = PrepareSettings()
    info = probe(path)
    assert info.has_video and info.has_audio
    starts = _readable_starts(Path(path), info, settings)
    assert len(starts) >= 1
    for start in sorted({starts[0], starts[-1]}):
        clip = read_clip(path, 8, 16000, (64, 64), start=start, duration=settings.duration)
        assert clip.video.shape == (17, 64, 64, 3) and clip.audio.shape == (34000,)
        assert np.abs(clip.audio).max() > 0.01
        from_start = read_module._read(path, 8, 16000, (64, 64), start, settings.duration, True, True, seek=False)
        assert np.abs(from_start.video.astype(int) - clip.video).mean() < 1.0, start
        # decoder warm-up and the resampler's phase differ by a fraction of a sample: close, and in sync
        def misfit(lag):
            return np.sqrt(np.mean((np.roll(clip.audio, lag) - from_start.audio)[8:-8] ** 2))
        rms = np.sqrt(np.mean(clip.audio ** 2))
        assert misfit(0) < 0.3 * rms and misfit(0) < min(misfit(-1), misfit(1)), start
