"""The whole journey on a folder of real files at a geometry that is not Bouncing Tones, through the commands a
user types: prepare -> both codecs into one folder -> encode -> train -> generate (a2v from a wav, v2a from a
video at an offset, av_continue past one window) -> evaluate. The folder holds Debian's real videos when their
packages are installed (`.ci/run` installs them) and always the awkward files of ``tests/real_files.py``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avdit.cli import main
from avdit.media import probe
from tests.real_files import REAL_WAV, installed, real_videos
TINY_CODEC = ["--steps", "2", "--batch-size", "2", "--decoder-steps", "0", "--latent-channels", "4",
              "--sample-every", "1000"]


@pytest.fixture(scope="module")
def journey(tmp_path_factory, awkward_files):
    """A folder of videos prepared at the Landscape geometry (10 fps, 21 frames, 64x64), one codec folder
    trained from it by two `train-codec` runs, its latents, and a model trained on them for two steps."""
    root = tmp_path_factory.mktemp("journey")
    src = root / "videos"
    src.mkdir()
    for path in [*real_videos(), *awkward_files.values()]:
        shutil.copy(path, src / path.name)
    prepared, codecs, latents, run = root / "prepared", root / "codecs", root / "latents", root / "run"
    assert main(["prepare", str(src), str(prepared), "--geometry", "landscape", "--hop", "2.1",
                 "--test-fraction", "0.3"]) == 0
    assert main(["train-codec", "video", "--data", str(prepared), "--out", str(codecs), *TINY_CODEC]) == 0
    assert main(["train-codec", "audio", "--data", str(prepared), "--out", str(codecs), *TINY_CODEC]) == 0
    assert main(["encode", str(prepared), "--codecs", str(codecs), "--out", str(latents)]) == 0
    assert main(["train", "--preset", "bt-tiny", "--data", str(latents), "--out", str(run), "--steps", "2",
                 "--batch-size", "2", "--precision", "fp32", "--log-every", "1"]) == 0
    return {"root": root, "src": src, "prepared": prepared, "codecs": codecs, "latents": latents, "run": run}


def test_codecs_and_checkpoint_carry_the_datas_geometry(journey):
    for kind in ("video", "audio"):
        meta = json.loads((journey["codecs"] / f"{kind}.json").read_text())
        assert (meta["fps"], meta["frames"], meta["size"]) == (10, 21, [64, 64])
    index = json.loads((journey["latents"] / "index.json").read_text())
    assert index["layout"]["frames"] == 21 and index["video_shape"][1] == 6  # 1 + 20 / 4 latent frames
    info = json.loads((journey["run"] / "model.json").read_text())
    assert Path(info["codecs"]) == journey["codecs"].resolve()  # the codecs the latents were made with
    assert info["model"]["layout"]["fps"] == 10 and info["model"]["audio_patch"] == 4  # fits 0.1 s + 0.4 s segments


def _clip_of(folder: Path) -> tuple[int, int, int, float]:
    info = probe(folder / "sample_000.mp4")
    return info.width, info.height, round(info.fps), info.duration


def test_generate_every_kind_of_task_at_the_datas_geometry(journey):
    run, out = journey["run"], journey["root"] / "out"
    video = sorted(journey["src"].iterdir())[0]
    wav = REAL_WAV if installed(REAL_WAV) else str(video)
    assert main(["generate", "--task", "a2v", "--input", wav, "--checkpoint", str(run), "--steps", "2",
                 "--out", str(out / "a2v")]) == 0
    width, height, fps, seconds = _clip_of(out / "a2v")
    assert (width, height, fps) == (64, 64, 10) and abs(seconds - 2.1) < 0.15
    assert main(["generate", "--task", "v2a", "--input", str(journey["src"] / "vfr.mp4"), "--offset", "1.0",
                 "--checkpoint", str(run), "--steps", "2", "--out", str(out / "v2a")]) == 0
    assert _clip_of(out / "v2a")[:3] == (64, 64, 10)
    assert main(["generate", "--task", "av_continue", "--input", str(journey["src"] / "nocues.mkv"),
                 "--duration", "3.7", "--checkpoint", str(run), "--steps", "2", "--out", str(out / "continue")]) == 0
    width, height, fps, seconds = _clip_of(out / "continue")
    assert (width, height, fps) == (64, 64, 10) and abs(seconds - 3.7) < 0.15  # two windows rolled


def test_evaluate_on_the_prepared_folder_with_the_checkpoints_codecs(journey):
    out = journey["root"] / "eval"
    assert main(["evaluate", "--checkpoint", str(journey["run"]), "--data", str(journey["prepared"]), "--num", "2",
                 "--steps", "2", "--tasks", "a2v,av_continue", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert set(rows) == {"reconstruction", "a2v", "av_continue"}
    assert all(-1 <= row["AV-align-robust"] <= 1 and row["AV-align"] >= 0 for row in rows.values())  # IoU - chance
    assert not any(key.startswith("BT-") for row in rows.values() for key in row)  # BT nets read 17x64x64 only
    assert main(["evaluate", "--checkpoint", str(journey["run"]), "--codecs", str(journey["codecs"]), "--data",
                 str(journey["prepared"]), "--num", "2", "--steps", "1", "--tasks", "v2a", "--no-av-align",
                 "--out", str(out / "with_codecs")]) == 0


def test_a_decoder_tuned_on_the_models_latents_serves_it_at_the_datas_geometry(journey, capsys):
    """`avdit tune-decoder` on the user's model and data: a codec folder whose latents are the model's (the digest
    check of --codecs passes) and that generates at the data's geometry; other data is refused by its geometry."""
    run, tuned, out = journey["run"], journey["root"] / "tuned_codecs", journey["root"] / "out_tuned"
    assert main(["tune-decoder", "--checkpoint", str(run), "--out", str(tuned), "--clips", "4", "--steps", "2",
                 "--batch-size", "2"]) == 0  # its clips: those its training latents were encoded from
    record = json.loads((tuned / "video.json").read_text())
    assert record["frames"] == 21 and record["decoder_tuned"][-1]["data"] == str(journey["prepared"])
    assert main(["generate", "--task", "av_continue", "--input", str(journey["src"] / "nocues.mkv"), "--duration",
                 "3.7", "--checkpoint", str(run), "--codecs", str(tuned), "--steps", "2", "--out", str(out)]) == 0
    assert _clip_of(out)[:3] == (64, 64, 10)
    capsys.readouterr()
    assert main(["tune-decoder", "--checkpoint", str(run), "--data", "bouncing-tones", "--out", str(tuned / "other"),
                 "--clips", "4"]) == 2
    assert "17 frames at 8 fps" in capsys.readouterr().err  # Bouncing Tones' clips, not the model's 21 frames


def test_fine_tuning_starts_from_a_checkpoint_and_refuses_another_geometry(journey, capsys):
    run = journey["root"] / "finetune"
    assert main(["train", "--preset", "bt-tiny", "--data", str(journey["latents"]), "--init", str(journey["run"]),
                 "--out", str(run), "--steps", "1", "--batch-size", "2", "--precision", "fp32"]) == 0
    assert main(["train", "--preset", "bt-small", "--data", str(journey["latents"]), "--init", "avdit/assets/model",
                 "--out", str(journey["root"] / "refused"), "--steps", "1", "--batch-size", "2"]) == 3
    assert "layout" in capsys.readouterr().err


def test_encode_and_generate_refuse_mismatches_with_a_reason(journey, capsys):
    assert main(["encode", str(journey["prepared"]), "--out", str(journey["root"] / "x")]) == 2
    assert "give --codecs" in capsys.readouterr().err
    assert main(["encode", str(journey["prepared"]), "--codecs", "avdit/assets/codecs",
                 "--out", str(journey["root"] / "y")]) == 2
    assert "21 frames at 10 fps" in capsys.readouterr().err
    assert main(["demo", "--checkpoint", str(journey["run"]), "--out", str(journey["root"] / "demo")]) == 2
    assert "Bouncing Tones" in capsys.readouterr().err


def test_the_journey_at_128x128_gives_clips_at_that_size(tmp_path, awkward_files):
    """The paper's Monologues geometry (128x128, 8 fps, 17 frames) through every command, in the fewest steps."""
    src, prepared, codecs = tmp_path / "videos", tmp_path / "prepared", tmp_path / "codecs"
    src.mkdir()
    for path in [*real_videos()[:3], awkward_files["nocues.mkv"], awkward_files["program.mpeg"]]:
        shutil.copy(path, src / path.name)
    assert main(["prepare", str(src), str(prepared), "--geometry", "monologues", "--test-fraction", "0"]) == 0
    one_step = ["--steps", "1", "--batch-size", "2", "--decoder-steps", "0", "--latent-channels", "4"]
    for kind in ("video", "audio"):
        assert main(["train-codec", kind, "--data", str(prepared), "--out", str(codecs), *one_step]) == 0
    assert main(["encode", str(prepared), "--codecs", str(codecs), "--out", str(tmp_path / "latents")]) == 0
    assert main(["train", "--preset", "bt-tiny", "--data", str(tmp_path / "latents"), "--out", str(tmp_path / "run"),
                 "--steps", "1", "--batch-size", "2", "--precision", "fp32"]) == 0
    assert main(["generate", "--task", "v2a", "--input", str(src / "nocues.mkv"), "--checkpoint",
                 str(tmp_path / "run"), "--steps", "1", "--out", str(tmp_path / "out")]) == 0
    width, height, fps, seconds = _clip_of(tmp_path / "out")
    assert (width, height, fps) == (128, 128, 8) and abs(seconds - 2.125) < 0.15
