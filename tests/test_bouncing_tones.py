import colorsys
import json

import numpy as np
import pytest
import torch
from avdit.data.loader import make_loader

from avdit.data import bouncing_tones as bt
from avdit.data.bt_files import write_bouncing_tones
from avdit.data.datasets import BouncingTonesDataset
from avdit.eval.bt_analysis import audio_onsets, clip_colour_class, fit_trajectory, pitch_class
from avdit.media import read_clip

CLIPS = [bt.make_clip(3, i) for i in range(24)]


def test_parameters_follow_the_spec_ranges():
    params = [bt.sample_params(bt.clip_rng(0, i)) for i in range(2000)]
    k = np.array([p.k for p in params])
    assert set(k) == set(range(8)) and abs(np.bincount(k).min() - 250) < 60
    for name, lo, hi in [("radius", 5, 9), ("x", 14, 50), ("period", 0.5, 1.0), ("phase", 0, 1), ("height", 18, 34)]:
        values = np.array([getattr(p, name) for p in params])
        assert lo <= values.min() and values.max() <= hi and values.max() - values.min() > 0.95 * (hi - lo), name


def test_arrays_have_the_spec_shapes_and_are_deterministic():
    clip = bt.make_clip(7, 5)
    assert clip.video.shape == (17, 64, 64, 3) and clip.video.dtype == np.uint8
    assert clip.audio.shape == (34000,) and clip.audio.dtype == np.float32
    again = bt.make_clip(7, 5)
    assert np.array_equal(clip.video, again.video) and np.array_equal(clip.audio, again.audio)
    assert not np.array_equal(clip.audio, bt.make_clip(7, 5, "test").audio)
    assert not np.array_equal(clip.audio, bt.make_clip(8, 5).audio)


def test_impacts_are_where_the_disc_touches_the_floor():
    for clip in CLIPS:
        p = clip.params
        for t in p.impacts:
            assert 0 <= t < 2.125 and abs(round(t / p.period + p.phase) - (t / p.period + p.phase)) < 1e-9
            assert abs(p.centre_y(t) - (58 - p.radius)) < 1e-9  # lowest point: the disc rests on the floor
        # no impact is missed: the gaps are one period, and none fits before the first or after the last
        assert np.allclose(np.diff(p.impacts), p.period)
        assert p.impacts[0] - p.period < 0 and p.impacts[-1] + p.period >= 2.125


def test_video_pixels_follow_the_spec():
    clip = CLIPS[0]
    p = clip.params
    assert tuple(clip.video[0, 0, 0]) == bt.BACKGROUND
    expected = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(p.k / 8, 1, 1))
    for j in range(17):
        row = int(p.centre_y(j / 8))
        assert tuple(clip.video[j, row, int(p.x)]) == expected  # the disc's centre pixel is fully covered


def test_audio_follows_the_spec():
    clip = CLIPS[1]
    p = clip.params
    t = np.arange(34000) / 16000
    clean = np.zeros(34000)
    for ti in p.impacts:
        u = t - ti
        clean += np.where(u >= 0, 0.6 * np.exp(-u / 0.1) * (np.sin(2 * np.pi * p.f0 * u) + 0.3 * np.sin(4 * np.pi * p.f0 * u)), 0)
    residual = clip.audio - np.clip(clean, -1, 1)
    assert abs(residual.std() - 0.003) < 0.0003 and abs(residual.mean()) < 0.0002
    assert p.f0 == pytest.approx(220 * 2 ** (3 * p.k / 12))


def test_long_clips_render_every_pluck_as_the_spec_does():
    """A clip of minutes renders each pluck over a span after its impact, not the whole clip: the same audio as the
    spec's sum over every sample (the first 2.125 s bit for bit)."""
    params = bt.make_clip(0, 3, "test").params
    num = 20 * bt.SAMPLE_RATE
    t = np.arange(num) / bt.SAMPLE_RATE
    clean = np.zeros(num)
    for ti in params.impacts_within(20.0):
        u = t - ti
        clean += np.where(u >= 0, 0.6 * np.exp(-u / 0.1) * (np.sin(2 * np.pi * params.f0 * u)
                                                          + 0.3 * np.sin(4 * np.pi * params.f0 * u)), 0)
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, bt.NOISE_SD, num)
    spec = np.clip(clean + noise, -1, 1).astype(np.float32)
    rendered = bt.render_audio(params, np.random.default_rng(1), num)
    assert len(params.impacts_within(20.0)) > 20
    assert np.abs(rendered.astype(np.float64) - spec).max() < 1e-9
    short = bt.render_audio(params, np.random.default_rng(1), bt.NUM_SAMPLES)
    assert np.array_equal(short, spec[:bt.NUM_SAMPLES])


def _check_analysers(video, audio, params, onset_ms, impact_ms):
    assert clip_colour_class(video) == params.k
    assert pitch_class(audio) == params.k
    onsets = audio_onsets(audio)
    assert len(onsets) == len(params.impacts)
    assert np.abs(onsets - params.impacts).max() * 1000 < onset_ms
    fitted = fit_trajectory(video)
    assert len(fitted.impacts()) == len(params.impacts)
    assert np.abs(np.array(fitted.impacts()) - params.impacts).max() * 1000 < impact_ms
    assert abs(fitted.period - params.period) < 0.01


def test_invariants_hold_on_arrays():
    for clip in CLIPS:
        _check_analysers(clip.video, clip.audio, clip.params, onset_ms=1.0, impact_ms=2.0)


def test_invariants_survive_an_mp4_round_trip(tmp_path):
    write_bouncing_tones(tmp_path, n=8, seed=3, progress=False)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata["n"] == 8 and len(metadata["clips"]) == 8
    for entry, clip in zip(metadata["clips"], CLIPS):
        assert entry["k"] == clip.params.k and entry["impacts"] == clip.params.impacts
        back = read_clip(tmp_path / entry["file"], 8, 16000, (64, 64), duration=17 / 8)
        _check_analysers(back.video, back.audio, clip.params, onset_ms=2.0, impact_ms=5.0)


def test_writing_resumes_and_grows_but_never_mixes(tmp_path):
    write_bouncing_tones(tmp_path, n=2, seed=0, progress=False)
    first = (tmp_path / "clip_000000.mp4").read_bytes()
    write_bouncing_tones(tmp_path, n=3, seed=0, progress=False)
    assert (tmp_path / "clip_000000.mp4").read_bytes() == first
    assert json.loads((tmp_path / "metadata.json").read_text())["n"] == 3
    with pytest.raises(FileExistsError, match="seed=0"):
        write_bouncing_tones(tmp_path, n=3, seed=1, progress=False)


def test_in_memory_dataset_works_with_dataloader_workers():
    dataset = BouncingTonesDataset(6, seed=3)
    loader = make_loader(dataset, batch_size=3, num_workers=2)
    batches = list(loader)
    assert batches[0]["video"].shape == (3, 17, 64, 64, 3) and batches[0]["audio"].shape == (3, 34000)
    assert torch.equal(batches[1]["video"][0], torch.from_numpy(CLIPS[3].video))
    assert batches[0]["k"].tolist() == [c.params.k for c in CLIPS[:3]]
    with pytest.raises(IndexError):
        dataset[6]


def test_cli_writes_a_dataset(tmp_path, capsys):
    from avdit.cli import main

    assert main(["data", "bouncing-tones", str(tmp_path / "bt"), "--n", "2", "--seed", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "bt").iterdir()) == ["clip_000000.mp4", "clip_000001.mp4",
                                                                  "metadata.json"]
    assert main(["data", "bouncing-tones", str(tmp_path / "bt"), "--n", "2", "--seed", "4"]) == 2
    assert "seed=3" in capsys.readouterr().err
