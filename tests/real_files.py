"""Awkward files like the ones found in real folders, made once per session: a frame counter and clicks in
Matroska without cues, an MPEG program stream, VFR mp4, 3gp, ogv, flv and avi. Also where Debian's packages
keep real videos with sound that nobody on this project made."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from tests.media_files import write_file

DURATION = 4.5  # two clips of 2.125 s, with a margin for codecs that lose a few ms at the end
CLICKS = (0.375, 1.125, 2.375, 3.625)
VFR_TIMES = [round(0.125 * j + (0.05 if j % 3 == 1 else 0.0), 3) for j in range(36)]


@dataclass(frozen=True)
class Awkward:
    name: str
    fps: float  # source frame rate (0 for the VFR file)
    size: tuple[int, int]  # (H, W) as written
    sync_ms: float  # how far a click may lie from its time after this audio codec
    frame_times: tuple[float, ...] | None = None
    frame_tolerance: int = 0

    def frame_at(self, time: float) -> int:
        """The counter of the source frame on screen at ``time``."""
        if self.frame_times is not None:
            return max(k for k, t in enumerate(self.frame_times) if t <= time + 1e-9)
        return int(time * self.fps + 1e-9)


AWKWARD = [
    Awkward("nocues.mkv", 8, (64, 64), 1),
    Awkward("program.mpeg", 25, (64, 64), 2),
    Awkward("vfr.mp4", 0, (64, 64), 1, tuple(VFR_TIMES)),
    Awkward("h263_aac.3gp", 8, (96, 128), 1),
    Awkward("vp8_opus.ogv", 8, (64, 64), 1),
    Awkward("flv1_mp3.flv", 8, (64, 64), 30),
    Awkward("mpeg4_mp3.avi", 8, (64, 64), 30, frame_tolerance=1),  # AVI: no encoder delay, pts guessed
]
BY_NAME = {a.name: a for a in AWKWARD}


class _Pipe:
    """A write-only file object: muxers see an unseekable output, as when ffmpeg writes to a pipe."""

    def __init__(self, file):
        self.file = file

    def write(self, data) -> int:
        return self.file.write(data)


def write_mkv_without_cues(path: Path, source: Path) -> None:
    """Remux to Matroska through a pipe (so no cues are written), with no video block marked as a keyframe
    (as some recorders write streams without IDR frames): FFmpeg cannot seek in it."""
    with open(path, "wb") as file, av.open(str(source)) as src, av.open(_Pipe(file), "w", format="matroska") as out:
        streams = {s: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.size == 0:
                continue
            if packet.stream.type == "video":
                packet.is_keyframe = False
            packet.stream = streams[packet.stream]
            out.mux(packet)


def make_awkward(folder: Path) -> dict[str, Path]:
    """Write every file of ``AWKWARD`` into ``folder``; returns name -> path."""
    common = dict(duration=DURATION, click_times=CLICKS)
    write_file(folder / "source.mkv", frames=36, **common)
    write_mkv_without_cues(folder / "nocues.mkv", folder / "source.mkv")
    (folder / "source.mkv").unlink()
    write_file(folder / "program.mpeg", container="mpeg", video_codec="mpeg1video", fps=25, frames=113,
               audio_codec="mp2", sample_rate=44100, **common)
    write_file(folder / "vfr.mp4", frame_times=VFR_TIMES, frames=36, **common)
    write_file(folder / "h263_aac.3gp", container="3gp", video_codec="h263", size=(96, 128), frames=36,
               **common)
    write_file(folder / "vp8_opus.ogv", container="ogg", video_codec="libvpx", frames=36, audio_codec="libopus",
               sample_rate=48000, audio_format="flt", **common)
    write_file(folder / "flv1_mp3.flv", video_codec="flv", frames=36, audio_codec="mp3", sample_rate=44100,
               **common)
    write_file(folder / "mpeg4_mp3.avi", video_codec="mpeg4", frames=36, audio_codec="mp3", sample_rate=44100,
               **common)
    return {a.name: folder / a.name for a in AWKWARD}


@pytest.fixture(scope="session")
def awkward_files(tmp_path_factory) -> dict[str, Path]:
    return make_awkward(tmp_path_factory.mktemp("awkward"))


@pytest.fixture
def awkward_folder(awkward_files, tmp_path) -> Path:
    """A folder of the awkward files, some renamed so only their content says what they are, plus files that
    are not media and hidden ones."""
    src = tmp_path / "videos"
    (src / "sub").mkdir(parents=True)
    for name, path in awkward_files.items():
        shutil.copy(path, src / name)
    shutil.move(src / "h263_aac.3gp", src / "sub" / "phone_clip")  # no extension
    shutil.move(src / "vp8_opus.ogv", src / "sub" / "talk.dat")  # a misleading one
    (src / "notes.txt").write_text("not media\n")
    (src / "sub" / "cover.bin").write_bytes(bytes(range(256)) * 40)
    (src / ".hidden.mp4").write_bytes(b"whatever")
    (src / ".cache").mkdir()
    shutil.copy(awkward_files["vfr.mp4"], src / ".cache" / "copy.mp4")
    return src


# Real videos with sound shipped by Debian packages (install: see DEBIAN_PACKAGES); each 3.6-8.4 s.
MIMETYPE = "/usr/share/gocode/src/github.com/gabriel-vasile/mimetype/testdata"
FORENSICS = "/usr/share/forensics-samples/original-files"
DEBIAN_VIDEOS = {
    # golang-github-gabriel-vasile-mimetype-dev: TechSlides sample clips ("use for whatever you need")
    f"{MIMETYPE}/3gp.3gp": "golang-github-gabriel-vasile-mimetype-dev",  # h263 + AMR-NB
    f"{MIMETYPE}/flv.flv": "golang-github-gabriel-vasile-mimetype-dev",  # flv1 + mp3
    f"{MIMETYPE}/mkv.mkv": "golang-github-gabriel-vasile-mimetype-dev",  # mpeg4 + aac
    f"{MIMETYPE}/mov.mov": "golang-github-gabriel-vasile-mimetype-dev",  # h264 + aac
    f"{MIMETYPE}/mp4.mp4": "golang-github-gabriel-vasile-mimetype-dev",  # h264 + aac
    f"{MIMETYPE}/ogg.ogv": "golang-github-gabriel-vasile-mimetype-dev",  # theora + vorbis
    f"{MIMETYPE}/webm.webm": "golang-github-gabriel-vasile-mimetype-dev",  # vp8 + vorbis
    # forensics-samples-files (CC-BY-SA-4.0): one recording in three containers
    f"{FORENSICS}/movie2/movie-hello.avi": "forensics-samples-files",  # h264 + aac
    f"{FORENSICS}/movie2/movie-hello.mp4": "forensics-samples-files",  # h264 + aac, 720p
    f"{FORENSICS}/movie2/movie-hello.mpeg": "forensics-samples-files",  # MPEG-PS: mpeg2video + mp2
}
DEBIAN_PACKAGES = sorted(set(DEBIAN_VIDEOS.values()))
REAL_WAV = f"{FORENSICS}/audio1/debian.wav"  # forensics-samples-files, 5.4 s

# With this set, the suite runs as on a machine without the optional system packages (Debian's real files,
# Chromium) even where they are installed: `.ci/run` runs the tests that have a fallback this way too.
HIDE_OPTIONAL = "AVDIT_HIDE_OPTIONAL"


def optional_hidden() -> bool:
    return bool(os.environ.get(HIDE_OPTIONAL))


def installed(path: str | Path) -> bool:
    """A file of an optional system package is there, and not hidden by ``AVDIT_HIDE_OPTIONAL``."""
    return not optional_hidden() and Path(path).exists()


def require_real_files() -> bool:
    """CI installs the packages: a missing real file must fail there, not skip (unless they are hidden)."""
    return bool(os.environ.get("AVDIT_REQUIRE_REAL_FILES")) and not optional_hidden()


def real_videos() -> list[Path]:
    """Debian's real videos that are installed (all of them where ``require_real_files``)."""
    found = [Path(p) for p in DEBIAN_VIDEOS if installed(p)]
    if require_real_files():
        assert len(found) == len(DEBIAN_VIDEOS), "Debian's real videos are missing: see .ci/run"
    return found
