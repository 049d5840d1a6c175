import json

import numpy as np
import pytest
import torch
from avdit.data.loader import make_loader

from avdit.cli import main
from avdit.data import bouncing_tones as bt
from avdit.data import datasets as datasets_module
from avdit.data import prepare as prepare_module
from avdit.data.datasets import ClipDataset
from avdit.data.prepare import PrepareSettings, clip_starts, prepare_folder, split_of
from avdit.media import write_mp4
from tests.media_files import write_file


def long_video(path, clips: int, seed: int = 0):
    """Several Bouncing Tones clips back to back (2.125 s each)."""
    parts = [bt.make_clip(seed, i) for i in range(clips)]
    video = np.concatenate([p.video for p in parts])
    audio = np.concatenate([p.audio for p in parts])
    write_mp4(path, video, audio, 8, 16000)
    return parts


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "videos"
    (src / "nested" / "deeper").mkdir(parents=True)
    long_video(src / "a.mp4", 3)
    long_video(src / "nested" / "b.mp4", 2, seed=1)
    write_file(src / "nested" / "deeper" / "c.webm", video_codec="libvpx-vp9", audio_codec="libopus",
               sample_rate=48000, audio_format="flt", duration=2.5, frames=20)
    write_file(src / "silent.mp4", audio_codec=None)
    (src / "junk.mp4").write_bytes(b"\x00not a video" * 1000)
    write_file(src / "short.mp4", frames=8, duration=1.0, click_times=(0.5,))
    (src / "notes.txt").write_text("not media")
    return src


def test_prepare_indexes_usable_files_and_reports_the_rest(folder, tmp_path):
    index = prepare_folder(folder, tmp_path / "out", PrepareSettings(test_fraction=0.0), progress=False)
    assert set(index["files"]) == {"a.mp4", "nested/b.mp4", "nested/deeper/c.webm"}
    assert index["files"]["a.mp4"]["starts"] == [0.0, 2.125, 4.25]
    assert len(index["files"]["nested/deeper/c.webm"]["starts"]) == 1
    assert index["skipped"]["silent.mp4"] == "no audio stream"
    assert "not a readable media file" in index["skipped"]["junk.mp4"]
    assert "too short" in index["skipped"]["short.mp4"]
    assert "not a readable media file" in index["skipped"]["notes.txt"]  # every file is probed, and reported
    assert json.loads((tmp_path / "out" / "index.json").read_text()) == index


def test_clip_dataset_decodes_the_indexed_spans(folder, tmp_path):
    prepare_folder(folder, tmp_path / "out", PrepareSettings(test_fraction=0.0), progress=False)
    dataset = ClipDataset(tmp_path / "out", "train")
    assert len(dataset) == 3 + 2 + 1
    item = dataset[1]  # a.mp4 from 2.125 s: the second Bouncing Tones clip
    assert item["file"] == "a.mp4" and item["start"] == 2.125
    assert item["video"].shape == (17, 64, 64, 3) and item["audio"].shape == (34000,)
    original = bt.make_clip(0, 1)
    assert (item["video"].float() - torch.from_numpy(original.video).float()).abs().mean() < 3
    loader = make_loader(dataset, batch_size=2, num_workers=2)
    assert sum(batch["video"].shape[0] for batch in loader) == 6


def test_a_one_modality_dataset_reads_that_one_as_the_full_read_gives_it(folder, tmp_path, monkeypatch):
    """An audio codec's training reads the audio alone: the same samples as a read of both, no frame decoded."""
    prepare_folder(folder, tmp_path / "out", PrepareSettings(test_fraction=0.0), progress=False)
    both = ClipDataset(tmp_path / "out", "train", cache_mb=0)[1]
    decoded = []  # whether each read decoded frames
    real_read = datasets_module.read_clip
    monkeypatch.setattr(datasets_module, "read_clip",
                        lambda *a, **k: (clip := real_read(*a, **k), decoded.append(clip.video is not None))[0])
    audio = ClipDataset(tmp_path / "out", "train", cache_mb=0, modality="audio")[1]
    video = ClipDataset(tmp_path / "out", "train", cache_mb=0, modality="video")[1]
    assert decoded == [False, True]
    assert set(audio) == {"audio", "file", "start"} and set(video) == {"video", "file", "start"}
    assert torch.equal(audio["audio"], both["audio"]) and torch.equal(video["video"], both["video"])
    with pytest.raises(ValueError, match="modality must be 'video', 'audio' or None"):
        ClipDataset(tmp_path / "out", "train", modality="sound")


def test_rerun_probes_only_new_or_changed_files(folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    prepare_folder(folder, out, progress=False)
    probed = []
    real_probe = prepare_module.probe
    monkeypatch.setattr(prepare_module, "probe", lambda path: probed.append(path.name) or real_probe(path))
    long_video(folder / "new.mp4", 1, seed=2)
    index = prepare_folder(folder, out, progress=False)
    # the new file, and the ones that were skipped (they may have been fixed)
    assert "new.mp4" in probed and "a.mp4" not in probed and "b.mp4" not in probed
    assert "new.mp4" in index["files"]
    with pytest.raises(ValueError, match="other settings"):
        prepare_folder(folder, out, PrepareSettings(fps=10, duration=2.1, hop=2.1), progress=False)


def test_clip_dataset_survives_a_file_damaged_after_prepare(folder, tmp_path, caplog):
    """A clip that no longer reads is logged once, counted, and the next readable clip comes instead."""
    prepare_folder(folder, tmp_path / "out", PrepareSettings(test_fraction=0.0), progress=False)
    dataset = ClipDataset(tmp_path / "out", "train", cache_mb=0)  # every item read from its file
    assert [name for name, _ in dataset.clips[3:5]] == ["nested/b.mp4"] * 2
    data = (folder / "nested" / "b.mp4").read_bytes()
    (folder / "nested" / "b.mp4").write_bytes(data[: len(data) // 3])
    with caplog.at_level("WARNING"):
        item = dataset[3]
        again = dataset[4]
    assert (item["file"], item["start"]) == (again["file"], again["start"]) == ("nested/deeper/c.webm", 0.0)
    assert set(dataset.bad_clips) == {("nested/b.mp4", 0.0), ("nested/b.mp4", 2.125)}
    assert caplog.text.count("skipping clip nested/b.mp4") == 2 and "b.mp4 at 0.0 s" in caplog.text
    for name in ("a.mp4", "nested/deeper/c.webm"):
        (folder / name).write_bytes(b"gone")
    with pytest.raises(RuntimeError, match="no clip of .*videos.* can be read"):
        dataset[0]


def test_split_is_deterministic_and_per_file():
    names = [f"video_{i}.mp4" for i in range(2000)]
    splits = [split_of(n, 0.1) for n in names]
    assert splits == [split_of(n, 0.1) for n in names]
    assert 0.07 < splits.count("test") / 2000 < 0.13
    assert clip_starts(10.0, PrepareSettings(duration=2.125, hop=1.0)) == [0, 1, 2, 3, 4, 5, 6, 7]


def test_a_few_files_still_hold_one_out_and_a_file_hashing_into_test_takes_over(tmp_path, capsys):
    """Hashing alone holds out no file of a small folder about one time in three (10 files at 0.1); then the file
    nearest the test split is held out, so evaluate has clips. One that hashes into the test split replaces it."""
    names = [f"clip_{i}.mp4" for i in range(40)]
    train_only = [n for n in names if split_of(n, 0.1) == "train"][:3]
    into_test = next(n for n in names if split_of(n, 0.1) == "test")
    src = tmp_path / "videos"
    src.mkdir()
    for name in train_only:
        write_file(src / name, frames=20, duration=2.5)
    index = prepare_folder(src, tmp_path / "out", PrepareSettings(), progress=False)
    held = [n for n, e in index["files"].items() if e["split"] == "test"]

    def fraction_holding_out(name: str) -> float:  # the smallest test fraction that holds the file out, by bisection
        low, high = 0.0, 1.0
        for _ in range(50):
            low, high = (low, (low + high) / 2) if split_of(name, (low + high) / 2) == "test" else ((low + high) / 2, high)
        return high

    assert held == [min(train_only, key=fraction_holding_out)]
    assert main(["prepare", str(src), str(tmp_path / "out"), "--geometry", "bouncing-tones"]) == 0
    assert "2 train clips, 1 test clips" in capsys.readouterr().out  # a rerun keeps it
    write_file(src / into_test, frames=20, duration=2.5)
    index = prepare_folder(src, tmp_path / "out", PrepareSettings(), progress=False)
    assert [n for n, e in index["files"].items() if e["split"] == "test"] == [into_test]
    alone = tmp_path / "alone"
    alone.mkdir()
    write_file(alone / train_only[0], frames=20, duration=2.5)
    assert main(["prepare", str(alone), str(tmp_path / "out_alone"), "--geometry", "bouncing-tones"]) == 0
    out = capsys.readouterr().out
    assert "1 train clips, 0 test clips" in out and "no test clips" in out


def test_cli_prepare_prints_a_summary_and_fails_cleanly(folder, tmp_path, capsys):
    assert main(["prepare", str(folder), str(tmp_path / "out"), "--geometry", "bouncing-tones", "--test-fraction", "0"]) == 0
    out = capsys.readouterr().out
    assert "3 files indexed: 6 train clips, 0 test clips" in out and "junk.mp4" in out
    assert main(["prepare", str(folder), str(tmp_path / "o2"), "--geometry", "landscape", "--size", "63", "64"]) == 2
    assert "even" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "missing"), str(tmp_path / "o3"), "--geometry", "landscape"]) == 2
    assert main(["prepare", str(folder), str(tmp_path / "o4"), "--fps", "10", "--size", "64", "64"]) == 2
    assert "--duration missing" in capsys.readouterr().err
    assert main(["prepare", str(folder), str(tmp_path / "o5"), "--geometry", "landscape", "--duration", "2.0"]) == 2
    assert "2.1 s (21 frames)" in capsys.readouterr().err  # a duration the task grid cannot take names those it can


def test_presets_give_the_papers_geometries_and_are_recorded(folder, tmp_path):
    settings = PrepareSettings.from_geometry("landscape", test_fraction=0.0)
    assert (settings.fps, settings.size, settings.frames) == (10, (64, 64), 21)
    index = prepare_folder(folder, tmp_path / "out", settings, progress=False)
    assert index["geometry"]["frames"] == 21 and index["geometry"]["fps"] == 10
    assert PrepareSettings.from_geometry("monologues").geometry().height == 128


def test_clip_dataset_decodes_each_clip_once_within_its_cache(folder, tmp_path, monkeypatch):
    prepare_folder(folder, tmp_path / "out", PrepareSettings(test_fraction=0.0), progress=False)
    reads = []
    real_read = datasets_module.read_clip
    monkeypatch.setattr(datasets_module, "read_clip", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    cached = ClipDataset(tmp_path / "out", "train")
    first = [cached[i] for i in range(len(cached))]
    again = [cached[i] for i in range(len(cached))]
    assert len(reads) == len(cached)  # the second pass came from memory, and gave the same clips
    assert all(torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], b["audio"]) for a, b in zip(first, again))
    one_pass = ClipDataset(tmp_path / "out", "train", cache_mb=0)
    reads.clear()
    [one_pass[0] for _ in range(3)]
    assert len(reads) == 3 and one_pass.cache_bytes == 0
