import numpy as np
import pytest
import torch

from avdit.cli import main
from avdit.codecs.interface import CodecError
from avdit.data import bouncing_tones as bt
from avdit.diffusion import SamplingConfig
from avdit.diffusion.samplers import pyramid_level_matrix
from avdit.eval.bt_analysis import audio_onsets
from avdit.media import probe, read_clip, write_mp4, write_wav
from avdit.pipeline import Pipeline
from avdit.tasks import TaskError, get_task
from tests.conftest import tiny_codecs


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("input") / "clip.mp4"
    clip = bt.make_clip(0, 0, "test")
    write_mp4(path, np.concatenate([clip.video, bt.make_clip(0, 1, "test").video]),
              np.concatenate([clip.audio, bt.make_clip(0, 1, "test").audio]), 8, 16000)
    return path


def test_every_task_keeps_its_given_latents(checkpoint, clip_file):
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    for name, lag in (("joint", 0), ("a2v", 0), ("v2a", 0), ("av_continue", 0), ("av_inpaint", 0),
                      ("video:0-1,audio:0", 0), ("av_continue", 2)):
        result = pipe(task=name, video=clip_file, audio=clip_file, num=2, seed=1, sampling=SamplingConfig(steps=3, pyramid_lag=lag))
        assert result.video.shape == (2, 17, 64, 64, 3) and result.video.dtype == np.uint8
        assert result.audio.shape == (2, 34000)
        task = get_task(name, 5)
        if task.given.any():
            clean = pipe.codecs.encode(*pipe._given_inputs(task, clip_file, clip_file, 0.0))
            mask = pipe.layout.cells_to_latents(task.given[None])
            for out, ref, m in zip(result.latents, clean, mask):
                m = m.expand_as(out)
                assert torch.equal(out[m], ref.expand_as(out)[m])


def test_seeds_repeat_and_arrays_work_like_files(checkpoint, clip_file):
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    a = pipe(task="v2a", video=clip_file, seed=5, sampling=SamplingConfig(steps=3))
    b = pipe(task="v2a", video=clip_file, seed=5, sampling=SamplingConfig(steps=3))
    assert np.array_equal(a.audio, b.audio)
    clip = read_clip(clip_file, 8, 16000, (64, 64), duration=17 / 8)
    c = pipe(task="v2a", video=clip.video, seed=5, sampling=SamplingConfig(steps=3))
    assert np.array_equal(a.audio, c.audio)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on one by benchmarks/gpu_check.sh)")
def test_sampling_on_a_gpu_follows_the_cpu(checkpoint, clip_file):
    """The same seed gives the same noise on either device, so guided a2v latents agree up to float rounding."""
    cpu = Pipeline.from_pretrained(checkpoint / "run", device="cpu")(task="a2v", audio=clip_file, seed=2, sampling=SamplingConfig(steps=3))
    gpu = Pipeline.from_pretrained(checkpoint / "run", device="cuda")(task="a2v", audio=clip_file, seed=2, sampling=SamplingConfig(steps=3))
    for a, b in zip(cpu.latents, gpu.latents):
        assert b.device.type == "cpu"
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_long_clips_roll_on_and_keep_the_input_for_a2v(checkpoint, clip_file, tmp_path):
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    result = pipe(task="joint", duration=3.625, sampling=SamplingConfig(steps=2))
    assert result.video.shape[1] == 29 and result.audio.shape[1] == 58000
    wav = tmp_path / "long.wav"
    write_wav(wav, read_clip(clip_file, 8, 16000, video=False).audio, 16000)
    a2v = pipe(task="a2v", audio=wav, duration=3.625, sampling=SamplingConfig(steps=2))
    assert a2v.video.shape == (1, 29, 64, 64, 3)


def test_a_modality_given_whole_comes_back_as_given_and_is_neither_decoded_nor_its_missing_one_encoded(checkpoint):
    """a2v's audio and v2a's video, in one window and along a rolled input, are the input as it was read (not its
    codec reconstruction), and the modality a task gives no cell of is never encoded."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    clips = [bt.make_clip(0, i, "test", frames=29) for i in range(2)]  # 3.625 s: one window rolled once
    video, audio = np.stack([c.video for c in clips]), np.stack([c.audio for c in clips])
    calls = []
    for codec in (pipe.codecs.video, pipe.codecs.audio):
        for name in ("encode", "decode"):
            method = getattr(codec, name)
            setattr(codec, name, lambda *x, _m=method, _n=f"{codec.kind} {name}", **k: calls.append(_n) or _m(*x, **k))
    for duration in (17 / 8, 3.625):
        calls.clear()
        a2v = pipe(task="a2v", audio=audio, num=2, duration=duration, sampling=SamplingConfig(steps=2))
        assert np.array_equal(a2v.audio, np.clip(audio[:, :a2v.audio.shape[1]], -1, 1))
        assert calls[:2] == ["audio encode", "video decode"] and "audio decode" not in calls  # then rolled windows
        calls.clear()
        v2a = pipe(task="v2a", video=video, num=2, duration=duration, sampling=SamplingConfig(steps=2))
        assert np.array_equal(v2a.video, video[:, :v2a.video.shape[1]])
        assert calls[:2] == ["video encode", "audio decode"] and "video decode" not in calls
        assert v2a.video.shape[1] == round(duration * 8) and v2a.audio.shape == (2, round(duration * 16000))
    calls.clear()
    pipe(task="joint", num=2, sampling=SamplingConfig(steps=2))
    assert sorted(calls) == ["audio decode", "video decode"]  # nothing to encode


def test_a_one_window_clip_continues_its_own_output_for_8_seconds(checkpoint, tmp_path):
    """av_continue gives part of each window: past the first it continues what it made, not the input (which
    lasts one window); a2v's whole audio slides along its input, so a short input is refused with the longest
    duration it allows."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    clip = bt.make_clip(0, 3, "test")
    short = tmp_path / "one_window.mp4"
    write_mp4(short, clip.video, clip.audio, 8, 16000)
    result = pipe(task="av_continue", video=short, audio=short, duration=8.0, sampling=SamplingConfig(steps=2))
    assert result.video.shape == (1, 64, 64, 64, 3) and result.audio.shape == (1, 128000)
    first = pipe(task="av_continue", video=short, audio=short, sampling=SamplingConfig(steps=2))
    assert np.array_equal(result.video[:, :17], first.video)  # the first window is the one-window result
    with pytest.raises(ValueError, match=r"lasts 2.1\d s.*at most duration=2.12"):
        pipe(task="a2v", audio=short, duration=4.0, sampling=SamplingConfig(steps=2))


def test_a_given_modality_slides_along_an_input_exactly_as_long_as_the_duration():
    """8 s of a2v from 8 s of audio (an array): windows every 1.5 s would need 8.125 s, so the last one starts
    earlier to end with the input; the given audio comes back where it was, all along (through the bundled codecs)."""
    pipe = Pipeline.from_pretrained(None)
    long = bt.make_clip(0, 5, "test", frames=64)  # 8 s
    result = pipe(task="a2v", audio=long.audio, duration=8.0, sampling=SamplingConfig(steps=2))
    assert result.video.shape == (1, 64, 64, 64, 3) and result.audio.shape == (1, 128000)
    given, back = audio_onsets(long.audio), audio_onsets(result.audio[0])  # plucks at the impacts, over 8 s
    assert len(given) >= 8 and len(back) == len(given)
    assert np.abs(back - given).max() < 0.03  # each where it was (a window off would move the late ones by 125 ms)
    with pytest.raises(ValueError, match=r"lasts 8.00 s.*at most duration=8.00"):
        pipe(task="a2v", audio=long.audio, duration=9.0, sampling=SamplingConfig(steps=2))


def test_pyramid_schedule_makes_later_segments_noisier():
    matrix = pyramid_level_matrix(get_task("av_continue", 5).given, steps=4, lag=2)
    assert matrix.shape == (9, 2, 5)
    assert bool((matrix[:, :, :2] == 0).all())
    assert bool((matrix[:, :, 2:].diff(dim=-1) >= 0).all())  # later segments never less noisy
    assert bool((matrix[1:] <= matrix[:-1]).all()) and bool((matrix[-1] == 0).all())


def test_bad_requests_are_clear_errors(checkpoint, clip_file, tmp_path):
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    with pytest.raises(TaskError, match="gives audio segments: pass audio"):
        pipe(task="a2v")
    with pytest.raises(TaskError, match="unknown task"):
        pipe(task="a2b")
    with pytest.raises(TaskError, match="nothing left to generate"):
        pipe(task="video:all,audio:all")
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        pipe(task="joint", sampling=SamplingConfig(steps=0))
    short = tmp_path / "short.mp4"
    clip = bt.make_clip(0, 0)
    write_mp4(short, clip.video[:9], clip.audio[:18000], 8, 16000)
    with pytest.raises(Exception, match="too short"):
        pipe(task="v2a", video=short, sampling=SamplingConfig(steps=2))
    with pytest.raises(FileNotFoundError, match="model.json not found"):
        Pipeline.from_pretrained(tmp_path)
    tiny_codecs(3).save(tmp_path / "other")
    with pytest.raises(CodecError, match="trained with other codecs"):
        Pipeline.from_pretrained(checkpoint / "run", codecs=tmp_path / "other")


def test_cli_generate_writes_mp4s_and_a_contact_sheet(checkpoint, clip_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["generate", "--task", "av_continue", "--input", str(clip_file), "--checkpoint",
                 str(checkpoint / "run"), "--num", "2", "--steps", "2", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.png", "sample_000.mp4", "sample_001.mp4"]
    info = probe(out / "sample_000.mp4")
    assert info.has_video and info.has_audio
    from PIL import Image

    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.shape[1] == 17 * 64 and sheet.shape[0] == 2 * (4 + 64 + 4 + 48 + 6)
    # the given segments (0-1: frames 0-4) are marked green above the frames, the rest orange
    assert tuple(sheet[0, 10]) == (80, 200, 120) and tuple(sheet[0, 17 * 64 - 10]) == (230, 120, 60)
    assert main(["generate", "--task", "a2v", "--checkpoint", str(checkpoint / "run"), "--out", str(out)]) == 2
    assert "pass audio" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["generate", "--checkpoint", str(checkpoint / "run"), "--out", str(tmp_path / "file")]) == 2
    assert main(["generate", "--checkpoint", str(checkpoint / "run"), "--device", "gpu", "--out", str(out)]) == 2
    assert "'gpu' is not a device; give cpu or cuda" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["generate", "--checkpoint", str(checkpoint / "run"), "--device", "cuda", "--out", str(out)]) == 2
        assert "torch sees no CUDA GPU here" in capsys.readouterr().err


def test_demo_writes_a_page_with_every_task(checkpoint, tmp_path):
    from avdit.apps.demo import DEMO_TASKS, run_demo

    page = run_demo(tmp_path / "demo", clips=2, sampling=SamplingConfig(steps=2), checkpoint=checkpoint / "run")
    text = page.read_text()
    for name in DEMO_TASKS:
        assert f"<h2>{name}</h2>" in text and (tmp_path / "demo" / f"{name}_1.mp4").exists()
        assert (tmp_path / "demo" / f"{name}.png").exists()
    assert "ground truth" in text and "<td>100%</td>" in text  # ground-truth clips agree on identity


def test_a_batch_of_inputs_must_match_num(checkpoint, clip_file):
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    clip = read_clip(clip_file, 8, 16000, (64, 64), duration=17 / 8)
    videos = np.stack([clip.video, clip.video])
    assert pipe(task="v2a", video=videos, num=2, sampling=SamplingConfig(steps=2)).audio.shape == (2, 34000)
    with pytest.raises(ValueError, match="2 inputs were given for num=3"):
        pipe(task="v2a", video=videos, num=3, sampling=SamplingConfig(steps=2))
    audios = np.stack([clip.audio, clip.audio])  # the modality not given follows the given one's batch
    assert pipe(task="a2v", audio=audios, num=2, sampling=SamplingConfig(steps=2)).video.shape == (2, 17, 64, 64, 3)
    with pytest.raises(ValueError, match="2 inputs were given for num=1"):
        pipe(task="a2v", audio=audios, sampling=SamplingConfig(steps=2))
    with pytest.raises(ValueError, match="2 videos and 3 audio tracks were given"):
        pipe(task="av_continue", video=videos, audio=np.stack([clip.audio] * 3), num=2, sampling=SamplingConfig(steps=2))


def test_export_makes_a_half_size_checkpoint_that_generates_the_same(checkpoint, clip_file, tmp_path, capsys):
    assert main(["export", str(checkpoint / "run"), str(tmp_path / "small")]) == 0
    full, small = checkpoint / "run" / "model.safetensors", tmp_path / "small" / "model.safetensors"
    assert small.stat().st_size < 0.6 * full.stat().st_size
    a = Pipeline.from_pretrained(checkpoint / "run")(task="a2v", audio=clip_file, seed=1, sampling=SamplingConfig(steps=3))
    b = Pipeline.from_pretrained(tmp_path / "small")(task="a2v", audio=clip_file, seed=1, sampling=SamplingConfig(steps=3))
    assert np.abs(a.latents.video - b.latents.video).max() < 0.05  # fp16 weights: close, not equal
    assert main(["export", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2


def test_the_bundled_model_loads_with_the_bundled_codecs_and_generates():
    pipe = Pipeline.from_pretrained()  # digest-checked against the bundled codecs
    assert pipe.info["step"] > 0 and pipe.info["train"]["noise_levels"].startswith("monl=")  # MoNL with task shares
    assert pipe.info["train"]["init"]  # fine-tuned from the stage before (docs/studies.md)
    clip = bt.make_clip(0, 0, "test")
    result = pipe(task="av_continue", video=clip.video, audio=clip.audio, sampling=SamplingConfig(steps=2))
    assert result.video.shape == (1, 17, 64, 64, 3) and result.audio.shape == (1, 34000)
