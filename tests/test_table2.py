"""The Table-2 runner end to end on a tiny folder of real videos: prepare at the Landscape geometry, tiny random
codecs, a bt-tiny model trained for two steps, joint/a2v/v2a scored with FVD/KVD (I3D), FAD (VGGish) and AV-align
from random feature weights saved to files; then a rerun that redoes nothing and a refusal to mix settings."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import avdit.eval.features.i3d as i3d_module
from avdit.eval.features.audioclip import AudioCLIPAudio
from avdit.eval.features.i3d import InceptionI3d
from avdit.eval.features.vggish import VGGish
from avdit.layout import GEOMETRIES
from tests.conftest import randomize, tiny_codecs
from tests.golden.make_audioclip_reference import deterministic_state
from tests.real_files import real_videos

RUNNER = Path(__file__).parent.parent / "benchmarks" / "table2" / "run.py"
REAL = ("mp4.mp4", "mov.mov", "webm.webm")  # 5.6 s each, 560x320; at --test-fraction 0.3 mp4.mp4 is held out
AWKWARD = ("nocues.mkv", "h263_aac.3gp", "vp8_opus.ogv")  # made by tests/real_files.py; nocues.mkv is held out


def load_runner():
    spec = importlib.util.spec_from_file_location("table2_run", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SmallInputI3d(InceptionI3d):
    """The I3D network with its real weights' shapes, fed 32x32 frames instead of 224x224 so the test takes 0.1 s
    instead of 30 (the full-size forward is tested in test_features.py); a global pool replaces the 7x7 one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.avg_pool = nn.AdaptiveAvgPool3d((None, 1, 1))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, request):
    """Videos, tiny random codecs at the Landscape geometry, random I3D and VGGish weights saved to files."""
    root = tmp_path_factory.mktemp("table2")
    src = root / "videos"
    src.mkdir()
    found = {p.name: p for p in real_videos()}
    if all(name in found for name in REAL):
        files = [found[name] for name in REAL]
    else:  # Debian's packages are not installed here: the awkward files are real files of other containers
        awkward = request.getfixturevalue("awkward_files")
        files = [awkward[name] for name in AWKWARD]
    for path in files:
        shutil.copy(path, src / path.name)
    tiny_codecs(0, layout=GEOMETRIES["landscape"]).save(root / "codecs")
    torch.save(randomize(InceptionI3d(), std=0.02).state_dict(), root / "i3d.pt")
    save_file(randomize(VGGish(), std=0.02).state_dict(), root / "vggish.safetensors")
    audioclip = deterministic_state(AudioCLIPAudio().state_dict())
    torch.save({f"audio.{k}": v for k, v in audioclip.items()}, root / "AudioCLIP-Full-Training.pt")
    return root


@pytest.fixture
def small_i3d(monkeypatch):
    monkeypatch.setattr(i3d_module, "SIZE", 32)
    monkeypatch.setattr(i3d_module, "InceptionI3d", SmallInputI3d)


def argv_for(inputs: Path, tmp_path: Path, **changes) -> list[str]:
    flags = {"dataset": "landscape", "videos": inputs / "videos", "codecs": inputs / "codecs",
             "i3d": inputs / "i3d.pt", "vggish": inputs / "vggish.safetensors",
             "audioclip": inputs / "AudioCLIP-Full-Training.pt",
             "hop": 2.1, "test-fraction": 0.3, "preset": "bt-tiny", "model": "depth=1", "steps": 2, "batch-size": 2,
             "lr": 1e-3, "warmup": 1, "precision": "fp32", "num": 2, "eval-steps": 2, "eval-batch-size": 2,
             "out": tmp_path / "runs", "docs": tmp_path / "docs", **changes}
    return [item for key, value in flags.items() for item in (f"--{key}", str(value))]


def test_table2_runs_end_to_end_resumes_and_refuses_other_settings(inputs, tmp_path, small_i3d, capsys):
    runner = load_runner()
    argv = argv_for(inputs, tmp_path)
    assert runner.main(argv) == 0
    record = json.loads((tmp_path / "docs" / "table2.json").read_text())
    entry = record["datasets"]["landscape"]
    rows = entry["results"]["rows"]
    assert list(rows) == ["reconstruction", "joint", "a2v", "v2a"]
    assert {"FVD", "KVD", "FAD", "FAD-AudioCLIP", "AV-align", "AV-align-robust"} <= set(rows["joint"])
    assert {"FVD", "KVD", "AV-align"} <= set(rows["a2v"]) and "FAD" not in rows["a2v"]  # audio given: not scored
    assert {"FAD", "FAD-AudioCLIP"} <= set(rows["v2a"]) and "FVD" not in rows["v2a"]
    assert "FAD-AudioCLIP" not in rows["a2v"] and rows["v2a"]["FAD-AudioCLIP"] > 0
    assert entry["clips"]["test"] == 2 and entry["clips"]["train"] == 4  # three files, two 2.1-s clips each
    settings = entry["results"]["settings"]
    assert settings["data"] == str(tmp_path / "runs" / "landscape" / "prepared") and settings["av_align"]
    assert json.loads((tmp_path / "runs" / "landscape" / "run" / "config.json").read_text())["noise_levels"] == "monl"
    page = (tmp_path / "docs" / "table2.md").read_text()
    for text in ("| A2V | AVDiT (paper) | — | — | 86.79 | 4.30 | 0.57 | — |",  # the poster's Table 2
                 "| V2A | MM-Diffusion (AVDiT's Table 2) | 13.60 | — | — | — | 0.50 | — |",
                 "| Reconstruction | AVDiT (paper), its codecs | 0.76 | — | 16.41 | -0.25 | 0.60 | — |",
                 "| Joint | MM-Diffusion (its paper) | — |", "| A2V | ours | — | — | ",
                 f"| V2A | ours | {rows['v2a']['FAD-AudioCLIP']:.2f} | ",
                 "Not run yet: aist++", "16 frames (1.6 s at 10 fps)", "44100 Hz", "arXiv 2405.13762",
                 "arXiv 2212.09478", "the same network, audio span and ×1e4", "held-out clips themselves"):
        assert text in page, text
    assert f"Command: `python benchmarks/table2/run.py {' '.join(argv)}`" in page
    assert "| AIST++" not in page and "## AIST++\n\nNot run yet." in page

    stamp = (tmp_path / "runs" / "landscape" / "eval" / "results.json").stat().st_mtime_ns
    capsys.readouterr()
    assert runner.main(argv) == 0  # a rerun finds the dataset finished
    assert "landscape: finished before" in capsys.readouterr().out
    assert (tmp_path / "runs" / "landscape" / "eval" / "results.json").stat().st_mtime_ns == stamp

    # without the record (a lost docs folder), every expensive step is found done and skipped
    (tmp_path / "docs" / "table2.json").unlink()
    assert runner.main(argv) == 0
    out = capsys.readouterr().out
    for said in ("indexed before", "written before", "trained 2 steps before", "finished before"):
        assert said in out, said
    assert (tmp_path / "runs" / "landscape" / "eval" / "results.json").stat().st_mtime_ns == stamp

    with pytest.raises(SystemExit, match="steps: 2 there, 3 now"):  # results of other settings are not mixed in
        runner.main(argv_for(inputs, tmp_path, steps=3))


def test_training_under_torchrun_takes_every_setting_as_a_flag(tmp_path):
    runner = load_runner()
    args = runner.build_parser().parse_args(["--dataset", "aist++", "--videos", "v", "--i3d", "i", "--vggish", "g",
                                             "--nproc-per-node", "8", "--fsdp"])
    config = runner.train_config(args, tmp_path / "latents")
    command = runner.torchrun_command(config, tmp_path / "run", args.nproc_per_node)
    assert command[:7] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "8",
                           "-m"]
    joined = " ".join(command)
    for flag in ("train --data", "--preset paper", "--noise-levels monl", "--steps 350000", "--batch-size 256",
                 "--lr 0.0005", "--warmup 5000", "--prediction eps", "--loss-weighting eps",
                 "--self-condition-rate 0.9", "--fsdp"):
        assert flag in joined, flag
    assert "--model" not in command and "--compile" not in command
    from avdit.cli import build_parser  # the flags parse as `avdit train`'s into the same config
    from avdit.cli.common import given
    from avdit.train.config import TrainConfig

    parsed = build_parser().parse_args(command[command.index("avdit.cli") + 1:])
    assert TrainConfig(**given(parsed, TrainConfig.fields())) == config


def test_given_codecs_set_the_clips_sample_rate_and_frames(tmp_path):
    """Pretrained codecs read their own sample rate (EnCodec: 24 kHz): the clips are prepared at it (VGGish hears
    them resampled to its 16 kHz); codecs of another size are refused."""
    runner = load_runner()
    tiny_codecs(0, layout=dataclasses.replace(GEOMETRIES["landscape"], sample_rate=24000)).save(tmp_path / "c24")
    tiny_codecs(0, layout=GEOMETRIES["bouncing-tones"]).save(tmp_path / "bt")
    flags = ["--dataset", "landscape", "--videos", "v", "--i3d", "i", "--vggish", "g"]
    args = runner.build_parser().parse_args([*flags, "--codecs", str(tmp_path / "c24")])
    settings = runner.clip_settings(args)
    assert (settings.sample_rate, settings.frames, settings.fps, settings.size) == (24000, 21, 10, (64, 64))
    assert runner.eval_settings(args, tmp_path, tmp_path).vggish == "g"
    assert runner.clip_settings(runner.build_parser().parse_args(flags)).sample_rate == 16000
    with pytest.raises(SystemExit, match="64x64 at 10 fps"):
        runner.clip_settings(runner.build_parser().parse_args([*flags, "--codecs", str(tmp_path / "bt")]))


def test_an_unknown_dataset_is_refused():
    with pytest.raises(SystemExit):
        load_runner().main(["--dataset", "monologues", "--videos", "v", "--i3d", "i", "--vggish", "g"])


def test_our_rows_say_when_the_papers_fad_was_not_measured():
    """Without --audioclip a row that scored audio says so in the AudioCLIP column; a2v (audio given) shows —."""
    report = load_runner().report
    rows = {"v2a": {"FAD": 3.0}, "a2v": {"FVD": 2.0, "KVD": 0.1}, "joint": {"FAD": 1.0, "FAD-AudioCLIP": 4.25}}
    lines = report.dataset_table("aist++", {"rows": rows}, "given codecs").splitlines()
    assert "| V2A | ours | no --audioclip | 3.00 | — | — |" in lines
    assert "| A2V | ours | — | — | 2.00 | 0.10 |" in lines
    assert "| Joint | ours | 4.25 | 1.00 | — | — |" in lines


def test_todays_metrics_get_columns_only_when_measured():
    """FD-PANNs, AV-IB and DeSync (not in the paper) follow the paper's columns when a row holds them; the published
    rows show — there, and a run without those weights keeps the paper's columns alone."""
    report = load_runner().report
    rows = {"v2a": {"FAD": 3.0, "FD-PANNs": 12.5, "AV-IB": 0.25, "DeSync": 0.4},
            "a2v": {"FVD": 2.0, "KVD": 0.1, "AV-IB": 0.3125, "DeSync": 0.6}}
    lines = report.dataset_table("aist++", {"rows": rows, "ground_truth": {"AV-IB": 0.5, "DeSync": 0.2}},
                                 "given codecs").splitlines()
    assert lines[0].endswith("| KVD ↓ | FD-PANNs ↓ | AV-IB ↑ | DeSync s ↓ |")
    assert "| V2A | ours | no --audioclip | 3.00 | — | — | 12.50 | 0.250 | 0.400 |" in lines
    assert "| A2V | ours | — | — | 2.00 | 0.10 | — | 0.312 | 0.600 |" in lines
    assert "| V2A | AVDiT (paper) | 1.11 | — | — | — | — | — | — |" in lines
    assert "| held-out clips themselves | — | — | — | — | — | — | 0.500 | 0.200 |" in lines
    plain = report.dataset_table("aist++", {"rows": {"v2a": {"FAD": 3.0}}}, "given codecs").splitlines()
    assert plain[0].endswith("| KVD ↓ |")
