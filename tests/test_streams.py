"""Streams: windows rolled without end, the latent distribution held, noisy history, the mp4 written as it is made."""

import dataclasses
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from avdit.cli import main
from avdit.data import bouncing_tones as bt
from avdit.diffusion import SamplingConfig, generate_latents
from avdit.diffusion.sound_choice import REDRAW_FACTOR, REDRAW_FLOOR, redraw_threshold, unlike
from avdit.diffusion.spread import match_quantiles, quantiles
from avdit.eval.long_clips import stream_windows, time_held
from avdit.latents import AV
from avdit.layout import BOUNCING_TONES
from avdit import pipeline as pipe_module
from avdit.media import Mp4Stream, read_clip, write_mp4
from avdit.pipeline import Pipeline
from avdit.tasks import get_task
from tests.conftest import TOY_LAYOUT


def test_match_quantiles_gives_the_marked_cells_the_reference_values_in_their_own_order():
    """Histogram matching: per example and channel, the marked elements take the reference's sorted values by rank
    (so its mean and spread too), keep their order, and nothing outside the cells moves."""
    g = torch.Generator().manual_seed(0)
    x = AV(torch.randn(2, 3, 5, 2, 2, generator=g) * 3 + 1, torch.randn(2, 4, 85, generator=g) * 0.5)
    source = AV(torch.rand(2, 3, 5, 2, 2, generator=g) * 2 - 7, torch.randn(2, 4, 85, generator=g).exp())
    given = get_task("av_continue", 5).given
    cells = BOUNCING_TONES.cells_to_latents((~given).expand(2, -1, -1))
    reference = source.map(quantiles, cells)
    out = x.map(match_quantiles, cells, reference)
    for o, xi, src, c in zip(out, x, source, cells):
        c = c.expand_as(xi)
        assert torch.equal(o[~c], xi[~c])  # the given cells are untouched
        for b in range(xi.shape[0]):
            for ch in range(xi.shape[1]):
                made, before, wanted = o[b, ch][c[b, ch]], xi[b, ch][c[b, ch]], src[b, ch][c[b, ch]]
                assert torch.equal(made.sort().values, wanted.sort().values)  # the reference's values, all of them
                assert torch.equal(made.argsort(), before.argsort())  # in the order the elements had
                assert torch.isclose(made.std(unbiased=False), wanted.std(unbiased=False))
    with pytest.raises(ValueError, match="same cells"):
        match_quantiles(x.video, cells.video, reference.video[..., 1:])


class Recorder(torch.nn.Module):
    """An eps network that records the levels and the inputs it is given, and predicts zero noise."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x: AV, t: torch.Tensor, self_cond=None) -> AV:
        self.calls.append((x.map(torch.clone), t.clone()))
        return x.map(torch.zeros_like)


def test_noisy_history_is_seen_at_its_level_and_comes_back_clean():
    """Diffusion Forcing's noisy history: the carried cells reach the network at ``history_level`` (noised to it),
    every step, and come back exactly as given."""
    layout = TOY_LAYOUT
    g = torch.Generator().manual_seed(1)
    clean = AV(torch.randn(2, 2, 5, 1, 1, generator=g), torch.randn(2, 2, 17, generator=g))
    given = get_task("av_continue", 5).given
    history = given.clone()
    history[1] = False  # the audio's given cells are an input: clean
    net = Recorder()
    out = generate_latents(net, clean, given, layout, SamplingConfig(steps=3, sampler="ddim", history_level=200, guidance=0.0, order="together"), generator=g, prediction="eps", history=history)
    mask = layout.cells_to_latents(given.expand(2, -1, -1))
    for o, c, m in zip(out, clean, mask):
        m = m.expand_as(o)
        assert torch.equal(o[m], c[m])
    for x, t in net.calls:
        assert bool((t[:, 0, :2] == 200).all()) and bool((t[:, 1, :2] == 0).all())
        video_history = x.video[:, :, :2]  # latent frames 0-1: segments 0-1
        assert not torch.allclose(video_history, clean.video[:, :, :2])  # noised, not clean
        assert torch.equal(x.audio[:, :, :5], clean.audio[:, :, :5])  # audio segment 0 (5 latents): clean
    with pytest.raises(ValueError, match="history_level"):
        generate_latents(net, clean, given, layout, SamplingConfig(steps=2, history_level=1000, guidance=0.0, order="together"), prediction="eps", history=history)


def test_a_stream_is_the_long_clip_made_window_by_window(checkpoint):
    """``stream`` yields the first window, then what each window adds; together they are ``__call__``'s clip, and
    without a duration it goes on until the caller stops."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    whole = pipe(task="joint", duration=5.0, seed=3, sampling=SamplingConfig(steps=2))
    chunks = list(pipe.stream(task="joint", duration=5.0, seed=3, sampling=SamplingConfig(steps=2)))
    assert [c.video.shape[1] for c in chunks] == [17, 12, 11]  # 5 s = 40 frames
    assert [c.start for c in chunks] == [0.0, 17 / 8, 29 / 8]
    assert np.array_equal(np.concatenate([c.video for c in chunks], 1), whole.video)
    assert np.array_equal(np.concatenate([c.audio for c in chunks], 1), whole.audio)
    endless = pipe.stream(task="joint", seed=3, sampling=SamplingConfig(steps=1))
    assert sum(next(endless).video.shape[1] for _ in range(6)) == 17 + 5 * 12
    with pytest.raises(ValueError, match="give a duration"):
        next(pipe.stream(task="a2v", audio=np.zeros(34000, np.float32), sampling=SamplingConfig(steps=1)))


def test_without_the_held_spread_the_stream_is_what_it_was(checkpoint):
    """``anchor_spread`` changes only the windows after the first, and only their video: the first rolled window
    (frames 17-28) makes the same audio with it or without, and a different video."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    held = pipe(task="joint", duration=4.0, seed=2, sampling=SamplingConfig(steps=2))
    free = pipe(task="joint", duration=4.0, seed=2, sampling=SamplingConfig(steps=2, anchor_spread=False))
    assert np.array_equal(held.video[:, :17], free.video[:, :17])
    assert not np.array_equal(held.video[:, 17:29], free.video[:, 17:29])
    first_rolled = 29 * 2000  # samples up to the end of the first rolled window
    assert np.array_equal(held.audio[:, :first_rolled], free.audio[:, :first_rolled])


def test_rolled_windows_draw_their_video_from_one_noise_and_their_audio_fresh(checkpoint, monkeypatch):
    """``held_noise`` (the default): the first window samples from fresh draws as before; every rolled window's
    sampler runs start the video from one noise, drawn once per stream, and the audio from noise of its own. Without
    it no window is given noise, and the first window is the same either way."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    sample = pipe._sample
    made = {}
    for held in (True, False):
        noises = []
        monkeypatch.setattr(pipe, "_sample", lambda *a: noises.append(a[6]) or sample(*a))  # (.., history, anchor, noise)
        made[held] = pipe(task="joint", duration=5.5, seed=3, sampling=SamplingConfig(
            steps=1, held_noise=held, audio_candidates=1, keyframe_first=False))
        monkeypatch.undo()
        first, rolled = noises[0], noises[1:]
        assert first is None and len(rolled) == 3  # 17 frames, then 12 a window: 44 frames = 5.5 s
        if held:
            assert all(torch.equal(n.video, rolled[0].video) for n in rolled)
            assert not any(torch.equal(n.audio, m.audio) for i, n in enumerate(rolled) for m in rolled[i + 1:])
            assert rolled[0].video.shape[0] == 1 and rolled[0].video.std() > 0.5  # a draw per stream, not zeros
        else:
            assert all(n is None for n in rolled)
    assert np.array_equal(made[True].video[:, :17], made[False].video[:, :17])
    assert not np.array_equal(made[True].video[:, 17:], made[False].video[:, 17:])


def test_a_joint_stream_draws_its_first_window_again_from_its_own_segment_0(checkpoint, monkeypatch):
    """``keyframe_first`` (the default): past one window, joint's first window is drawn again given its own segment
    0 in both modalities (the anchor of every rolled window), keeping it exactly and making segments 1-4 anew; that
    draw is the window shown. One window alone, and a task that gives segment 0 (av_continue), are drawn once."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    sample = pipe._sample
    n = pipe.layout.num_segments

    def draws(**stream) -> tuple[list, list]:
        calls = []
        monkeypatch.setattr(pipe, "_sample", lambda *a: calls.append((a[0].given.clone(), a[1], sample(*a)))
                            or calls[-1][2])
        chunks = list(pipe.stream(sampling=SamplingConfig(steps=1, audio_candidates=1, **stream.pop("sampling", {})),
                                  seed=3, **stream))
        monkeypatch.undo()
        return calls, chunks

    calls, chunks = draws(task="joint", duration=3.5)
    (first_grid, _, first), (keyframe_grid, keyframe_clean, redrawn) = calls[:2]
    assert not first_grid.any() and keyframe_grid.tolist() == [[True] + [False] * (n - 1)] * 2
    assert keyframe_clean is first  # the second draw is given the first's latents: its segment 0 is what it keeps
    cells = pipe.layout.cells_to_latents(keyframe_grid[None].expand(1, -1, -1))  # (1, ...) the keyframe's elements
    for made, kept, mask in zip(redrawn, first, cells):
        assert torch.equal(made[mask.expand_as(made)], kept[mask.expand_as(kept)])
        assert not torch.equal(made[~mask.expand_as(made)], kept[~mask.expand_as(kept)])
    assert chunks[0].latents is redrawn and len(calls) == 3  # the window shown, then one rolled window
    off, _ = draws(task="joint", duration=3.5, sampling={"keyframe_first": False})
    assert len(off) == 2 and off[1][0][:, :2].all()  # the first window, then a rolled one
    assert torch.equal(off[0][2].video, first.video)
    assert len(draws(task="joint", duration=float(pipe.layout.duration))[0]) == 1  # one window: none rolls or is redrawn
    clip = bt.make_clip(0, 4, "test")
    continued, _ = draws(task="av_continue", video=clip.video, audio=clip.audio, duration=3.5)
    assert len(continued) == 2 and continued[1][0][:, :2].all()


def windows_given(pipe: Pipeline, monkeypatch, **stream) -> tuple[list, list]:
    """The stream's chunks, and the frames and samples each rolled window was given (what it encoded)."""
    given, encode = [], pipe.codecs.encode
    monkeypatch.setattr(pipe.codecs, "encode", lambda v, a, **k: given.append(
        tuple(None if x is None else x.clone() for x in (v, a))) or encode(v, a, **k))
    chunks = list(pipe.stream(**stream))
    monkeypatch.undo()
    return chunks, given


@pytest.mark.parametrize("task", ["joint", "av_continue"])
def test_every_rolled_window_is_given_the_first_windows_segment_0(checkpoint, monkeypatch, task):
    """With ``anchor_segment`` (the default) segment 0 of every rolled window (its first frame and 0.125 s) is the
    first window's own, and segment 1 the last 0.5 s made; without it, both are the last 0.625 s made."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    clip = bt.make_clip(0, 4, "test")
    inputs = {"video": clip.video, "audio": clip.audio} if task == "av_continue" else {}
    fast = SamplingConfig(steps=1)
    for anchored in (True, False):
        chunks, given = windows_given(pipe, monkeypatch, task=task, duration=7.0, sampling=fast.replace(
            anchor_segment=anchored), **inputs)
        rolled = given[-4:]  # 17 frames, then 12 a window: 56 frames = 7 s
        video = torch.from_numpy(np.concatenate([c.video for c in chunks], 1))  # (1, 56, 64, 64, 3)
        audio = torch.from_numpy(np.concatenate([c.audio for c in chunks], 1))
        for k, (v, a) in enumerate(rolled):
            made = 17 + 12 * k  # frames made before this window; it starts 5 frames earlier
            start = 0 if anchored else made - 5
            assert torch.equal(v[:, 0], video[:, start]) and torch.equal(a[:, :2000], audio[:, start * 2000:][:, :2000])
            assert torch.equal(v[:, 1:5], video[:, made - 4:made])  # segment 1: the last 0.5 s made
            assert torch.equal(a[:, 2000:10000], audio[:, (made - 4) * 2000:made * 2000])


def test_anchor_guidance_looks_at_segment_0_of_rolled_windows_only(checkpoint, monkeypatch):
    """Anchor guidance changes only the rolled windows (the first has no anchor), and a stream without the anchor
    segment has no anchor to guide towards: it is the stream made without anchor guidance."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    fast = SamplingConfig(steps=1, audio_candidates=1, keyframe_first=False)  # the windows as drawn: no redraw
    seen = []
    sample = pipe._sample
    monkeypatch.setattr(pipe, "_sample", lambda *a: seen.append(a[4:6]) or sample(*a))  # (history, anchor)
    guided = pipe(task="joint", duration=4.0, seed=2, sampling=fast.replace(anchor_guidance=3.0))
    assert len(seen) == 3 and seen[0] == (None, None)  # the first window, then two rolled ones: 32 frames = 4 s
    for _, anchor in seen[1:]:
        assert anchor[:, 0].all() and not anchor[:, 1:].any()  # segment 0 of both modalities
    monkeypatch.undo()
    plain = pipe(task="joint", duration=4.0, seed=2, sampling=fast.replace(anchor_guidance=0.0))
    assert np.array_equal(guided.video[:, :17], plain.video[:, :17])
    first = bt.NUM_SAMPLES  # the first window's samples
    assert np.array_equal(guided.audio[:, :first], plain.audio[:, :first])
    # the rolled windows move (read on the audio, floats: this toy's guidance moves its video by under a pixel level)
    assert not np.array_equal(guided.audio[:, first:], plain.audio[:, first:])
    free = [pipe(task="joint", duration=4.0, seed=2, sampling=fast.replace(anchor_segment=False, anchor_guidance=w))
            for w in (0.0, 3.0)]
    assert np.array_equal(free[0].video, free[1].video) and np.array_equal(free[0].audio, free[1].audio)


def test_a_neighbouring_note_sounds_unlike_the_reference_and_its_own_note_does_not():
    """Plucks of the reference's note, louder or softer and at other moments, score well below the redraw floor; a
    neighbouring note (three semitones up, as Bouncing Tones' classes lie) and noise score above it."""
    rate = 16000
    time = np.arange(24000) / rate

    def pluck(hz: float, at: float, loud: float = 1.0) -> np.ndarray:
        return loud * np.sin(2 * np.pi * hz * time) * np.exp(-8 * np.clip(time - at, 0, None)) * (time >= at)

    reference = torch.from_numpy(pluck(523.3, 0.2) + pluck(523.3, 1.1))[None].float().expand(3, -1)  # (3, S)
    draws = [pluck(523.3, 0.7, loud=0.3) + pluck(523.3, 1.3, loud=0.5), pluck(622.3, 0.5),
             np.random.default_rng(0).normal(0, 0.1, time.shape)]
    score = unlike(torch.from_numpy(np.stack(draws)).float(), reference, rate)
    assert score[0] < REDRAW_FLOOR / 3 and (score[1:] > REDRAW_FLOOR * 3).all()


def test_the_redraw_threshold_is_a_multiple_of_each_streams_median_with_a_floor():
    past = [torch.tensor([0.001, 0.02]), torch.tensor([0.002, 0.05]), torch.tensor([0.9, 0.03])]
    assert redraw_threshold([]) == REDRAW_FLOOR
    assert torch.allclose(redraw_threshold(past), torch.tensor([REDRAW_FLOOR, REDRAW_FACTOR * 0.03]))


def test_rolled_windows_draw_their_audio_again_where_it_sounds_unlike_the_first_windows(checkpoint, monkeypatch):
    """With ``audio_candidates`` k, a rolled window's audio is drawn again given its video (every video cell given,
    the same audio cells made), up to k draws in all, in just the examples whose audio sounds unlike the first
    window's (``unlike`` above ``redraw_threshold``); each keeps its draw that scores lowest, and the window keeps
    the video it drew first. Where nothing sounds unlike, the stream is the one made with one draw; with
    ``audio_redraw="always"`` every window makes k draws; a2v makes no more draws (its audio is the input's)."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    sample, calls, scored = pipe._sample, [], []
    monkeypatch.setattr(pipe, "_sample", lambda *a: calls.append((a[0], a[1], sample(*a))) or calls[-1][2])
    # example 0's first draw sounds unlike in both windows, above the floor, then above 4x its first window's 0.2
    fake = iter([torch.tensor([0.5, 0.0]), torch.tensor([0.2]), torch.tensor([0.7]),  # keeps its second draw
                 torch.tensor([0.95, 0.01]), torch.tensor([0.9]), torch.tensor([0.85])])  # keeps its third
    monkeypatch.setattr(pipe_module, "unlike", lambda *a: scored.append(a) or next(fake))
    fast = SamplingConfig(steps=1, audio_candidates=3, anchor_spread=False, keyframe_first=False)  # as drawn
    chosen = pipe(task="joint", num=2, duration=4.0, seed=5, sampling=fast)  # 17 frames, then two rolled windows
    assert len(calls) == 1 + 2 * 3 and len(scored) == 2 * 3
    first_audio = torch.from_numpy(chosen.audio[:, :bt.NUM_SAMPLES])
    assert torch.equal(scored[0][1], first_audio) and torch.equal(scored[1][1], first_audio[:1])
    for w in range(2):
        (task, _, window), *redraws = calls[1 + 3 * w:4 + 3 * w]
        for redraw_task, given, draw in redraws:
            assert redraw_task.given[0].all() and torch.equal(redraw_task.given[1], task.given[1])
            assert given.batch_size == 1 and torch.equal(draw.video, window.video[:1])  # example 0 alone
    window, third = calls[4][2], calls[6][2]
    assert torch.equal(chosen.latents.audio[0], third.audio[0])  # the draw that scored lowest
    assert torch.equal(chosen.latents.audio[1], window.audio[1])  # below the floor: nothing drawn again
    assert torch.equal(chosen.latents.video, window.video)
    monkeypatch.undo()
    one = pipe(task="joint", num=2, duration=4.0, seed=5, sampling=fast.replace(audio_candidates=1))
    assert np.array_equal(one.video[:, :29], chosen.video[:, :29])  # the first window and the first rolled video
    assert np.array_equal(one.audio[:, :bt.NUM_SAMPLES], chosen.audio[:, :bt.NUM_SAMPLES])
    monkeypatch.setattr(pipe_module, "unlike", lambda sound, *a: torch.zeros(sound.shape[0]))
    alike = pipe(task="joint", num=2, duration=4.0, seed=5, sampling=fast)
    assert np.array_equal(alike.video, one.video) and np.array_equal(alike.audio, one.audio)
    drawn = []  # audio_redraw="always": every example drawn k times in every rolled window, alike or not
    monkeypatch.setattr(pipe, "_sample", lambda *a: drawn.append(a[1].batch_size) or sample(*a))
    pipe(task="joint", num=2, duration=4.0, seed=5, sampling=fast.replace(audio_redraw="always"))
    assert drawn == [2] * (1 + 2 * 3)
    clip = bt.make_clip(0, 4, "test", frames=65)
    count = []
    monkeypatch.setattr(pipe, "_sample", lambda *a: count.append(1) or sample(*a))
    pipe(task="a2v", audio=clip.audio, duration=7.0, sampling=fast)
    assert len(count) == 5  # the first window and four rolled ones (56 frames), one draw each


def test_a2v_windows_anchor_the_video_they_make_and_slide_along_the_audio(checkpoint, monkeypatch):
    """For a2v, segment 0 of every rolled window's video is the first window's frame 0 (``anchor_segment``), segment 1
    the last 0.5 s made; its audio is the input's own from the window's start. Without the anchor, the video's
    segments 0-1 are both the last 0.625 s made."""
    pipe = Pipeline.from_pretrained(checkpoint / "run")
    clip = bt.make_clip(0, 4, "test", frames=65)  # 8 s of one bounce: no window has to start early to end with it
    for anchored in (True, False):
        chunks, given = windows_given(pipe, monkeypatch, task="a2v", audio=clip.audio, duration=7.0,
                                      sampling=SamplingConfig(steps=1, anchor_segment=anchored))
        video = torch.from_numpy(np.concatenate([c.video for c in chunks], 1))  # (1, 56, 64, 64, 3)
        for k, (v, a) in enumerate(given[-4:]):
            made = 17 + 12 * k
            assert torch.equal(v[:, 0], video[:, 0 if anchored else made - 5])
            assert torch.equal(v[:, 1:5], video[:, made - 4:made])
            assert torch.equal(a[0], torch.from_numpy(clip.audio[(made - 5) * 2000:(made - 5) * 2000 + 34000]))


def test_mp4_stream_keeps_sync_and_plays_when_cut_off(tmp_path):
    """Written a chunk at a time, read back: frames where they were, audio on time (the AAC priming dropped);
    a file cut off mid-way still reads up to its last whole fragment."""
    clip = bt.make_clip(0, 3, "test", frames=48)  # 6 s
    path = tmp_path / "stream.mp4"
    with Mp4Stream(path, 64, 64, 8, 16000) as writer:
        for k in range(0, 48, 12):
            writer.write(clip.video[k:k + 12], clip.audio[k * 2000:(k + 12) * 2000])
    back = read_clip(path, 8, 16000, (64, 64), duration=5.5)
    reference = tmp_path / "whole.mp4"
    write_mp4(reference, clip.video, clip.audio, 8, 16000)
    whole = read_clip(reference, 8, 16000, (64, 64), duration=5.5)
    lag = np.correlate(back.audio[2000:86000], clip.audio[:88000], "valid").argmax() - 2000
    assert lag == 0  # on time to the sample
    errors = [np.abs(back.video[1:43].astype(int) - clip.video[1 + d:43 + d].astype(int)).mean() for d in (-1, 0, 1)]
    assert np.argmin(errors) == 1 and errors[1] < 2 * np.abs(whole.video.astype(int) - clip.video[:44]).mean() + 1
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with av.open(str(cut)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 16 <= frames < 48


def test_generate_writes_a_stream_as_it_goes_and_an_interrupted_one_plays(checkpoint, monkeypatch, tmp_path,
                                                                          capsys):
    run = str(checkpoint / "run")
    assert main(["generate", "--task", "joint", "--checkpoint", run, "--steps", "1", "--duration", "6",
                 "--out", str(tmp_path / "long")]) == 0
    clip = read_clip(tmp_path / "long" / "sample_000.mp4", 8, 16000, (64, 64))
    assert clip.video.shape[0] == 48 and abs(clip.audio.shape[0] - 96000) < 1100
    assert (tmp_path / "long" / "contact_sheet.png").exists()
    assert "real time" in capsys.readouterr().err

    original = Pipeline.stream

    def interrupted(self, *args, **kwargs):  # Ctrl-C while the fourth window is made
        for k, chunk in enumerate(original(self, *args, **kwargs)):
            if k == 3:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(Pipeline, "stream", interrupted)
    assert main(["generate", "--task", "joint", "--checkpoint", run, "--steps", "1", "--duration", "inf",
                 "--out", str(tmp_path / "endless")]) == 130
    assert "interrupted" in capsys.readouterr().err
    clip = read_clip(tmp_path / "endless" / "sample_000.mp4", 8, 16000, (64, 64))
    assert clip.video.shape[0] == 17 + 2 * 12  # the windows made before Ctrl-C, all of them


def test_generate_pipes_a_stream_to_stdout(checkpoint, tmp_path):
    out = subprocess.run([sys.executable, "-m", "avdit.cli", "generate", "--task", "joint", "--checkpoint",
                          str(checkpoint / "run"), "--steps", "1", "--duration", "4", "--out", "-"],
                         capture_output=True, check=True, timeout=120)
    assert out.stdout[4:8] == b"ftyp"
    (tmp_path / "piped.mp4").write_bytes(out.stdout)
    assert read_clip(tmp_path / "piped.mp4", 8, 16000, (64, 64)).video.shape[0] == 32


def test_bad_durations_are_refused(checkpoint, capsys):
    for bad in ("0", "-3", "soon"):
        with pytest.raises(SystemExit):
            main(["generate", "--task", "joint", "--duration", bad, "--out", "x"])
        assert "--duration" in capsys.readouterr().err


def test_time_held_finds_the_first_window_that_loses_the_subject_or_the_ball():
    clip = bt.make_clip(0, 2, "test", frames=81)  # 10 s
    windows = stream_windows(clip.video, clip.audio, sync_every=2)
    assert time_held(windows) == {"subject_lost_s": None, "ball_lost_s": None, "discs_off_s": None,
                                 "lost_s": None}
    assert all(w["colour"] == w["pitch"] == clip.params.k for w in windows)
    assert not np.isnan(windows[0]["sync_error_ms"]) and np.isnan(windows[1]["sync_error_ms"])
    faded = clip.video.copy()
    faded[48:] = (16 + (faded[48:].astype(int) - 16) * 0.8).astype(np.uint8)  # 20 % dimmer from 6 s
    held = time_held(stream_windows(faded, clip.audio))
    assert held["subject_lost_s"] is None and held["ball_lost_s"] == held["lost_s"] == 6.0  # the window from 6 s
    other = bt.make_clip(0, [i for i in range(40) if bt.make_clip(0, i, "test").params.k != clip.params.k][0],
                         "test", frames=81)
    swapped = np.concatenate([clip.video[:40], other.video[40:]])
    assert time_held(stream_windows(swapped, clip.audio))["subject_lost_s"] is not None


def test_a_second_disc_loses_the_ball_even_where_the_first_window_already_shows_it():
    """A twin disc beside the first in every frame keeps the first window's size, colour and pitch in every window;
    only the disc count sees it. A twin flashing in one frame loses the ball at the window holding that frame."""
    clip = bt.make_clip(0, 2, "test", frames=81)  # 10 s
    twin = dataclasses.replace(clip.params, x=clip.params.x + 25 if clip.params.x < 32 else clip.params.x - 25)
    doubled = np.maximum(clip.video, bt.render_video(twin, frames=81))
    windows = stream_windows(doubled, clip.audio)
    assert all(abs(w["size_px2"] / windows[0]["size_px2"] - 1) < 0.1 for w in windows)  # the size band holds
    assert all(w["colour"] == w["pitch"] == clip.params.k for w in windows) and windows[0]["one_disc"] == 0.0
    assert time_held(windows) == {"subject_lost_s": None, "ball_lost_s": 0.0, "discs_off_s": 0.0, "lost_s": 0.0}
    flash = clip.video.copy()
    flash[50] = doubled[50]
    held = time_held(stream_windows(flash, clip.audio))
    assert held["subject_lost_s"] is None and held["ball_lost_s"] == held["discs_off_s"] == 6.0  # frames 48-64
