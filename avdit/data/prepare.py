"""``avdit prepare``: index a folder of videos as fixed-length clips with a deterministic train/test split.

Every file is probed, whatever its name; a file not taken is listed in the index's "skipped" with the reason.
Nothing is decoded beyond one clip per file in containers whose durations and seeking cannot be trusted; the
index lists (file, start) pairs and the settings, so a folder of thousands of files is never loaded whole and
a run over the index is reproducible. Rerunning on a grown folder probes only files that are new or changed
(by size and modification time), and the ones skipped before.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import av
from tqdm.auto import tqdm

from avdit.utils.atomic import write_json
from avdit.layout import ClipLayout, LayoutError, get_geometry, working_durations
from avdit.media import MediaError, MediaInfo, probe, read_clip

INDEX = "index.json"


@dataclass(frozen=True)
class PrepareSettings:
    fps: int = 8
    sample_rate: int = 16000
    size: tuple[int, int] = (64, 64)  # (H, W)
    duration: float = 2.125  # seconds per clip
    hop: float = 2.125  # seconds between clip starts
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.sample_rate <= 0:
            raise ValueError(f"fps={self.fps} and sample_rate={self.sample_rate} must be positive")
        if len(self.size) != 2 or min(self.size) <= 0 or any(s % 2 for s in self.size):
            raise ValueError(f"size={self.size}: give two positive even numbers (H, W)")
        if self.duration <= 0 or self.hop <= 0:
            raise ValueError(f"duration={self.duration} and hop={self.hop} must be positive")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction={self.test_fraction} must be in [0, 1)")
        if abs(self.duration * self.fps - round(self.duration * self.fps)) > 1e-6:
            raise ValueError(f"duration={self.duration} s is not a whole number of frames at {self.fps} fps; "
                             f"durations that work: {working_durations(self.fps, near=self.duration)}")
        self.geometry()

    @classmethod
    def from_geometry(cls, name: str, **changes) -> "PrepareSettings":
        """Settings at a named geometry (``avdit.layout.GEOMETRIES``: landscape, aist++, monologues, ...)."""
        layout = get_geometry(name)
        duration = layout.frames / layout.fps
        return cls(**{"fps": layout.fps, "sample_rate": layout.sample_rate, "size": (layout.height, layout.width),
                      "duration": duration, "hop": duration, **changes})

    @property
    def frames(self) -> int:
        return round(self.duration * self.fps)

    def geometry(self) -> ClipLayout:
        """The clip layout of these clips with avdit's own codec strides; a clear error if the task grid
        cannot be cut from them."""
        try:
            return ClipLayout(fps=self.fps, frames=self.frames, height=self.size[0], width=self.size[1],
                              sample_rate=self.sample_rate)
        except LayoutError as err:
            raise ValueError(f"clips of {self.duration} s at {self.fps} fps, {self.size[0]}x{self.size[1]}, "
                             f"{self.sample_rate} Hz cannot be cut into the task grid: {err}") from None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["size"] = list(self.size)
        return data


def _path_hash(relative_path: str) -> float:
    """Where a file's path hashes to in [0, 1)."""
    return int.from_bytes(hashlib.sha256(relative_path.encode()).digest()[:8], "big") / 2**64


def split_of(relative_path: str, test_fraction: float) -> str:
    """Deterministic split by a hash of the file's path: all clips of one file land in the same split."""
    return "test" if _path_hash(relative_path) < test_fraction else "train"


def assign_splits(files: dict[str, dict], test_fraction: float) -> None:
    """Set each file entry's split by ``split_of``. Where that holds out no file with clips (few files: 10 files at
    0.1 hold out none about one time in three) though ``test_fraction`` > 0 and two or more files have clips, the
    file whose path hashes lowest (the next one a larger fraction would hold out) becomes the test split, so
    ``avdit evaluate --data`` has held-out clips; a new file that hashes into the test split takes over from it."""
    for name, entry in files.items():
        entry["split"] = split_of(name, test_fraction)
    with_clips = [name for name, entry in files.items() if entry["starts"]]
    if test_fraction > 0 and len(with_clips) >= 2 and all(files[n]["split"] == "train" for n in with_clips):
        files[min(with_clips, key=_path_hash)]["split"] = "test"


def clip_starts(duration: float, settings: PrepareSettings) -> list[float]:
    count = math.floor((duration - settings.duration) / settings.hop + 1e-9) + 1
    return [round(i * settings.hop, 6) for i in range(max(0, count))]


def _scan(src: Path, exclude: Path | None = None) -> list[Path]:
    """Every regular file under ``src``, whatever its name: what it holds is found by probing. Hidden files and
    folders (a leading dot) and the ``exclude`` folder are left out."""
    found = []
    for folder, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or Path(folder, d).resolve() != exclude))
        found += [Path(folder, n) for n in names if not n.startswith(".") and Path(folder, n).is_file()]
    return sorted(found)


# Containers whose index gives exact timestamps and durations: a clip there reads if the file probes.
_INDEXED_FORMATS = ("mov,mp4",)


def _measured_duration(path: Path) -> float:
    """How long the file really lasts by its packets' timestamps (no decoding): the shorter of video and audio."""
    ends: dict[str, float] = {}
    with av.open(str(path)) as container:
        streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
        origin = streams[0].start_time * streams[0].time_base if streams[0].start_time is not None else 0
        for packet in container.demux(*streams):
            if packet.pts is not None and packet.time_base is not None:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base - origin)
                ends[packet.stream.type] = max(ends.get(packet.stream.type, 0.0), end)
    return min(ends.values()) if len(ends) == 2 else 0.0


def _readable_starts(path: Path, info: MediaInfo, settings: PrepareSettings) -> list[float]:
    """The clip starts of a probed file, checked by reading its last clip where the container's duration or
    seeking may not be trusted (MPEG streams, Matroska without cues, AVI, ...); the starts are recounted from
    the packets' timestamps when the last clip does not read."""
    duration = info.duration
    if duration <= 0:  # a streamed file (a recorder's webm, Matroska written to a pipe) states no duration
        try:
            duration = _measured_duration(path)
        except av.error.FFmpegError:
            duration = 0.0
    starts = clip_starts(duration, settings)
    if not starts:
        raise MediaError(path, f"too short: {duration:.2f} s < one clip of {settings.duration} s")
    if info.format.startswith(_INDEXED_FORMATS):
        return starts

    def last_reads(starts: list[float]) -> str | None:
        try:
            read_clip(path, settings.fps, settings.sample_rate, settings.size, start=starts[-1],
                      duration=settings.duration)
            return None
        except MediaError as err:
            return err.problem

    problem = last_reads(starts)
    if problem is None:
        return starts
    try:
        measured = _measured_duration(path)
    except av.error.FFmpegError:
        measured = 0.0
    starts = clip_starts(min(measured, duration), settings)
    if not starts:
        raise MediaError(path, f"unreadable or too short: the clip at {clip_starts(duration, settings)[-1]} s "
                               f"does not read ({problem})")
    problem = last_reads(starts)
    if problem is not None:
        raise MediaError(path, f"the clip at {starts[-1]} s does not read ({problem})")
    return starts


def prepare_folder(src: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                   progress: bool = True) -> dict:
    """Scan ``src`` recursively, index every usable file's clips into ``out/index.json``; returns the index."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise NotADirectoryError(f"{src}: not a folder (give the folder that holds your videos)")
    index_path = out / INDEX
    previous = json.loads(index_path.read_text()) if index_path.exists() else None
    if previous is not None and previous["settings"] != settings.to_dict():
        raise ValueError(f"{out} was prepared with other settings {previous['settings']}; "
                         "use a new output folder for new settings")
    known = previous["files"] if previous else {}
    files: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    paths = _scan(src, exclude=out.resolve())
    for path in tqdm(paths, desc="indexing", unit="file", disable=not progress):
        rel = path.relative_to(src).as_posix()
        stat = path.stat()
        entry = known.get(rel)
        if entry and entry["bytes"] == stat.st_size and entry["mtime"] == stat.st_mtime:
            files[rel] = entry
            continue
        try:
            info = probe(path)
            if not info.has_video:
                raise MediaError(path, "no video stream")
            if not info.has_audio:
                raise MediaError(path, "no audio stream")
            starts = _readable_starts(path, info, settings)
        except MediaError as err:
            skipped[rel] = err.problem
            continue
        files[rel] = {"bytes": stat.st_size, "mtime": stat.st_mtime, "duration": info.duration, "starts": starts}
    assign_splits(files, settings.test_fraction)
    index = {"source": str(src.resolve()), "settings": settings.to_dict(), "geometry": settings.geometry().to_dict(),
             "files": files, "skipped": skipped}
    write_json(index_path, index)
    return index


def summary(index: dict) -> str:
    counts = {"train": 0, "test": 0}
    for entry in index["files"].values():
        counts[entry["split"]] += len(entry["starts"])
    lines = [f"{len(index['files'])} files indexed: {counts['train']} train clips, {counts['test']} test clips"]
    if not counts["test"] and index["settings"].get("test_fraction", 0) > 0:
        lines.append("no test clips (one file with clips cannot be split): `avdit evaluate --data` needs held-out "
                     "clips; add files")
    if index["skipped"]:
        lines.append(f"{len(index['skipped'])} files skipped:")
        lines += [f"  {name}: {why}" for name, why in sorted(index["skipped"].items())]
    return "\n".join(lines)


def index_clips(index_dir: str | Path, split: str) -> tuple[PrepareSettings, Path, list[tuple[str, float]]]:
    """Settings, source folder and the (file, start) of every clip of a split, in a fixed order."""
    index_path = Path(index_dir) / INDEX
    if not index_path.exists():
        raise FileNotFoundError(f"{index_path} not found: run `avdit prepare SRC_DIR {index_dir}` first")
    index = json.loads(index_path.read_text())
    data = dict(index["settings"])
    data["size"] = tuple(data["size"])
    clips = [(name, start) for name, entry in sorted(index["files"].items()) if entry["split"] == split
             for start in entry["starts"]]
    return PrepareSettings(**data), Path(index["source"]), clips

