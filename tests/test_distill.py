"""``avdit distill``: teacher pairs, the student's batches and loss, and its sampling, end to end on a tiny teacher."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from avdit.codecs.shards import load_shards
from avdit.data import bouncing_tones as bt
from avdit.diffusion import SamplingConfig, diffusion_loss, generate_latents
from avdit.diffusion.samplers import ddim_levels as student_levels
from avdit.diffusion.samplers import step_levels
from avdit.diffusion.schedule import DEFAULT_SCHEDULE
from avdit.latents import AV
from avdit.layout import BOUNCING_TONES
from avdit.model import AVDiT
from avdit.pipeline import Pipeline, checkpoint_sampling_preset
from avdit.tasks import get_task
from avdit.train.config import TrainConfig
from avdit.train.distill import distill
from avdit.train.dmd import DMDSettings, dmd_finetune, dmd_target, real_clips
from avdit.train.pairs import TURN_TASKS, PairBatches, PairSettings, make_pairs, parse_tasks, turn_grid

LAYOUT = BOUNCING_TONES


@pytest.fixture(scope="module")
def teacher(checkpoint):
    """The shared tiny checkpoint (bt-tiny, tiny codecs) as the teacher, and the latents it trained on."""
    return checkpoint / "run", checkpoint / "run" / "latents"


def pair_settings(teacher, **changes) -> PairSettings:
    run, latents = teacher
    return PairSettings(**{"teacher": str(run), "data": str(latents), "pairs": 8, "chunk": 4,
                           "tasks": "a2v=0.5,av_continue=0.5", "teacher_sampling": "distilled", **changes})


def test_student_levels_are_those_its_samplers_visit():
    assert student_levels("1,2,4,8").tolist() == [1000, 875, 750, 625, 500, 375, 250, 125]
    four = set(step_levels(4, "uniform")[:-1].tolist())
    assert set(student_levels("4").tolist()) == four == {1000, 750, 500, 250}
    for bad in ("", "0", "2,x", "1001"):
        with pytest.raises(ValueError, match="student_steps"):
            student_levels(bad)


def test_task_shares_are_normalised_and_a_bad_mixture_is_named():
    names, shares = parse_tasks("joint=3,cells=1")
    assert names == ["joint", "cells"] and shares.tolist() == [0.75, 0.25]
    for bad, what in (("jont=1", "unknown task 'jont'"), ("joint=x", "not a number"), ("joint=0", "sum to 0")):
        with pytest.raises(ValueError, match=what):
            parse_tasks(bad)


def test_turn_grids_give_one_modality_whole_and_the_other_as_a_continuation_or_in_fill_does():
    """``turns``: the grid of a student's run in turns on a task that gives cells of both modalities (the other
    modality's latest sample given whole); every such grid is drawn, and none of them gives every cell."""
    assert parse_tasks("joint=1,turns=1")[0] == ["joint", "turns"]
    n = LAYOUT.num_segments
    expected = {(task, m) for task in TURN_TASKS for m in range(2)}
    seen = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        given = turn_grid(n, g)  # (M, N)
        whole = [m for m in range(2) if bool(given[m].all())]
        assert len(whole) == 1, given
        other = 1 - whole[0]
        tasks = [task for task in TURN_TASKS if torch.equal(given[other], get_task(task, n).given[other])]
        assert tasks and not bool(given[other].all()), given
        seen.update((task, whole[0]) for task in tasks)
    assert seen == expected


def test_pairs_of_the_turn_grids_hold_the_clips_given_cells_and_the_teachers_sample(teacher, tmp_path):
    index = make_pairs(pair_settings(teacher, tasks="turns=1"), tmp_path / "pairs", device="cpu", progress=False)
    assert index["task_names"] == ["turns"]
    data, _ = load_shards(teacher[1])
    grids = []
    for k, shard in enumerate(index["shards"]):
        pairs = load_file(tmp_path / "pairs" / shard["file"])
        given = pairs["given"].bool()  # (4, M, N): one grid a shard
        assert (given == given[0]).all() and given[0].all(1).sum() == 1  # one modality given whole
        grids.append(given[0])
        clips = (4 * k + torch.arange(4)) % len(data.video)
        for s, d, keep in zip(AV(pairs["video"], pairs["audio"]), AV(data.video[clips], data.audio[clips]),
                              LAYOUT.cells_to_latents(given)):
            keep = keep.expand_as(s)
            assert torch.equal(s[keep], d[keep]) and (s[~keep] != d[~keep]).all()
    assert not torch.equal(grids[0], grids[1])  # each shard draws its grid


class Oracle(torch.nn.Module):
    """An eps network that knows the pair: at every level it predicts the noise that puts x_t on the line from
    z to x*, as a perfectly distilled student would."""

    def __init__(self, target: AV):
        super().__init__()
        self.target = target

    def forward(self, x: AV, t: torch.Tensor, self_cond=None) -> AV:
        levels = LAYOUT.cells_to_latents(t)
        a = lambda level: DEFAULT_SCHEDULE.alpha_bar(level, torch.float64)  # noqa: E731
        return x.map(lambda xi, x0, lv: torch.where(lv == 0, torch.zeros_like(xi),
                                                    ((xi - a(lv).sqrt() * x0) / (1 - a(lv)).clamp_min(1e-12).sqrt())
                                                    .to(xi.dtype)), self.target, levels)


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
@pytest.mark.parametrize("task", ["joint", "a2v", "av_inpaint"])
def test_a_student_that_predicts_the_pair_samples_it_in_its_steps_and_scores_zero_loss(teacher, task, steps):
    """The coupling the student learns and the sampler it is used with agree: a network whose prediction at every
    student level is the pair's x* (given the line from z) samples exactly x* from z in 1, 2, 4 or 8 DDIM steps
    with every generated cell together (the line the pairs lie on), and its distillation loss is zero on batches made as ``PairBatches`` makes them (generated cells
    at one student level, given cells at 0, the pair's noise as the noise)."""
    g = torch.Generator().manual_seed(0)
    shape = AVDiT.from_pretrained(teacher[0])
    target = AV(torch.randn(3, *shape.video_shape, generator=g, dtype=torch.float64),
                torch.randn(3, *shape.audio_shape, generator=g, dtype=torch.float64))
    noise = target.map(lambda p: torch.randn(p.shape, generator=g, dtype=torch.float64))
    given = get_task(task, LAYOUT.num_segments).given
    sampling = SamplingConfig.preset("distilled").replace(steps=steps, order="together")
    out = generate_latents(Oracle(target), target, given, LAYOUT, sampling, noise=noise, prediction="eps")
    for o, x in zip(out, target):
        torch.testing.assert_close(o, x, atol=1e-6, rtol=1e-6)
    level = student_levels(str(steps))[torch.randint(0, steps, (3,), generator=g)]
    t = torch.where(given, 0, level.view(-1, 1, 1))  # (3, M, N), as PairBatches draws it
    loss = diffusion_loss(Oracle(target), target, t, LAYOUT, noise=noise, prediction="eps")
    assert max(float(part.max()) for part in loss) < 1e-12


def test_pairs_hold_the_given_latents_the_noise_and_the_teachers_samples_and_resume(teacher, tmp_path, capsys):
    settings = pair_settings(teacher)
    index = make_pairs(settings, tmp_path / "pairs", device="cpu", progress=True)
    assert index["complete"] and [s["clips"] for s in index["shards"]] == [4, 4]
    data, _ = load_shards(teacher[1])
    model = AVDiT.from_pretrained(teacher[0])
    for k, shard in enumerate(index["shards"]):
        pairs = load_file(tmp_path / "pairs" / shard["file"])
        given = pairs["given"].bool()  # (4, M, N): one grid a shard, a task of the mixture
        assert (given == given[0]).all() and pairs["task"].unique().numel() == 1
        task = index["task_names"][int(pairs["task"][0])]
        assert torch.equal(given[0], get_task(task, LAYOUT.num_segments).given)
        clips = (4 * k + torch.arange(4)) % len(data.video)  # the pairs wrap around the data
        kept = LAYOUT.cells_to_latents(given)
        sample, noise = AV(pairs["video"], pairs["audio"]), AV(pairs["noise_video"], pairs["noise_audio"])
        for s, d, keep in zip(sample, AV(data.video[clips], data.audio[clips]), kept):
            assert torch.equal(s[keep.expand_as(s)], d[keep.expand_as(d)])  # given cells: the clips' own
            generated = ~keep.expand_as(s)
            assert not generated.any() or (s[generated] != d[generated]).all()  # the others: the teacher's
        # with guidance off (the distilled preset) the teacher's sample is a function of the noise: made again
        again = generate_latents(model, AV(data.video[clips], data.audio[clips]), given[0], LAYOUT,
                                 SamplingConfig.preset("distilled"), noise=noise,
                                 prediction=model.config.prediction)
        for a, b in zip(again, sample):
            torch.testing.assert_close(a, b)
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "pairs").glob("shard_*")}
    capsys.readouterr()
    make_pairs(settings, tmp_path / "pairs", device="cpu", progress=True)
    assert "resuming the teacher pairs" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "pairs").glob("shard_*")} == written
    with pytest.raises(ValueError, match="made otherwise"):
        make_pairs(pair_settings(teacher, tasks="joint=1"), tmp_path / "pairs", device="cpu", progress=False)


def test_the_students_batches_put_generated_cells_on_the_line_at_student_levels(teacher, tmp_path):
    index = make_pairs(pair_settings(teacher), tmp_path / "pairs", device="cpu", progress=False)
    from avdit.codecs.shards import open_shards

    pairs, _ = open_shards(tmp_path / "pairs")
    config = TrainConfig(preset="bt-tiny", data=str(tmp_path / "pairs"), student_steps="4", batch_size=16)
    batches = PairBatches(config, pairs, index)
    assert batches.strategies == tuple(index["task_names"])
    batch = batches.draw(3)
    again = batches.draw(3)  # a step's batch is a function of (seed, step): resumes draw the same
    assert torch.equal(batch.t, again.t) and torch.equal(batch.x0.video, again.x0.video)
    stored = [load_file(tmp_path / "pairs" / s["file"]) for s in index["shards"]]
    given = torch.cat([s["given"] for s in stored]).bool()
    noise_video = torch.cat([s["noise_video"] for s in stored])
    generated_levels = batch.t[batch.t > 0].unique().tolist()
    assert set(generated_levels) <= {1000, 750, 500, 250}
    for row in range(16):  # each row is a stored pair: its grid, its noise, one level for its generated cells
        match = [i for i in range(len(noise_video)) if torch.equal(noise_video[i], batch.noise.video[row])]
        assert len(match) == 1
        assert torch.equal(batch.t[row] == 0, given[match[0]])
        assert batch.t[row][~given[match[0]]].unique().numel() == 1


def test_distill_makes_pairs_trains_a_student_that_samples_distilled_and_resumes(teacher, tmp_path, capsys):
    run = tmp_path / "student"
    last = distill(pair_settings(teacher), run, device="cpu", progress=False, steps=3, batch_size=4,
                   precision="fp32", checkpoint_every=2, log_every=1)
    assert last["step"] == 3 and {key for key in last if key.startswith("loss/")} <= {"loss/a2v", "loss/av_continue"}
    assert any(key.startswith("loss/") for key in last)  # the loss per task of the mixture
    config = json.loads((run / "config.json").read_text())
    assert config["student_steps"] == "1,2,4,8" and config["init"] == str(teacher[0])
    assert checkpoint_sampling_preset(run) == "distilled" and checkpoint_sampling_preset(teacher[0]) == "default"
    pipe = Pipeline.from_pretrained(run, device="cpu")
    assert pipe.default_sampling == SamplingConfig.preset("distilled")
    calls = []
    model_forward = pipe.model.forward
    pipe.model.forward = lambda *a, **k: calls.append(1) or model_forward(*a, **k)
    result = pipe("joint", seed=0)  # the checkpoint's own preset: 4 runs of 2 steps, video and audio in turns
    assert result.video.shape[1] == LAYOUT.frames and len(calls) == 8
    calls.clear()
    pipe("a2v", audio=bt.make_clip(0, 0, "test").audio, seed=0)  # one modality generated: one run of 2 steps
    assert len(calls) == 2
    teacher_weights = AVDiT.from_pretrained(teacher[0]).state_dict()
    student_weights = AVDiT.from_pretrained(run).state_dict()
    assert any(not torch.equal(teacher_weights[k], student_weights[k]) for k in teacher_weights)
    capsys.readouterr()
    distill(pair_settings(teacher), run, device="cpu", progress=True, steps=4, batch_size=4, precision="fp32",
            checkpoint_every=2, log_every=1)
    said = capsys.readouterr().out
    assert "resuming the teacher pairs" in said and "resuming" in said and "from step 3 of 4" in said


@pytest.mark.slow  # subprocesses (13 s together): kept out of the 5-minute default suite
def test_the_command_line_distils_and_generate_samples_with_the_students_preset(teacher, tmp_path):
    run, latents = teacher
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "avdit.cli", "distill", "--teacher", str(run), "--data", str(latents),
               "--out", str(tmp_path / "s"), "--pairs", "4", "--chunk", "4", "--tasks", "v2a", "--teacher-sampling",
               "distilled", "--steps", "2", "--batch-size", "2", "--precision", "fp32", "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the student is in" in done.stdout
    generate = [sys.executable, "-m", "avdit.cli", "generate", "--task", "joint", "--checkpoint", str(tmp_path / "s"),
                "--out", str(tmp_path / "out"), "--device", "cpu"]
    done = subprocess.run(generate, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sampling: distilled preset, DDIM, 2 steps x 4 runs, guidance 0" in done.stderr
    assert (tmp_path / "out" / "sample_000.mp4").is_file()
    bad = subprocess.run(command[:-2] + ["--tasks", "jump=1"], capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode != 0 and "unknown task 'jump'" in bad.stderr


@pytest.mark.slow  # subprocesses (13 s together): kept out of the 5-minute default suite
def test_two_processes_share_the_pairs_and_train_the_student_as_one(teacher, tmp_path):
    """Under torchrun (gloo, 2 ranks) each rank makes its shards of the pairs and the student trains data-parallel:
    the same pairs and the same student as one process."""
    run, latents = teacher
    common = ["--teacher", str(run), "--data", str(latents), "--pairs", "8", "--chunk", "4", "--tasks",
              "a2v=0.5,av_continue=0.5", "--teacher-sampling", "distilled", "--steps", "2", "--batch-size", "4",
              "--precision", "fp32", "--device", "cpu"]
    distill(pair_settings(teacher), tmp_path / "one", device="cpu", progress=False, steps=2, batch_size=4,
            precision="fp32")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
               "-m", "avdit.cli", "distill", *common, "--out", str(tmp_path / "two")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    for shard in ("shard_00000.safetensors", "shard_00001.safetensors"):
        one, two = (load_file(tmp_path / r / "pairs" / shard) for r in ("one", "two"))
        for name in one:
            assert torch.equal(one[name], two[name]), name
    one, two = (AVDiT.from_pretrained(tmp_path / r).state_dict() for r in ("one", "two"))
    for key in one:
        torch.testing.assert_close(one[key], two[key], atol=1e-5, rtol=1e-5, msg=key)


def test_more_pairs_extend_the_folder_and_keep_the_shards_made(teacher, tmp_path):
    make_pairs(pair_settings(teacher), tmp_path / "pairs", device="cpu", progress=False)
    made = {p.name: p.read_bytes() for p in (tmp_path / "pairs").glob("shard_*")}
    index = make_pairs(pair_settings(teacher, pairs=12), tmp_path / "pairs", device="cpu", progress=False)
    assert index["pairs"] == 12 and [s["clips"] for s in index["shards"]] == [4, 4, 4]
    assert all((tmp_path / "pairs" / name).read_bytes() == data for name, data in made.items())
    make_pairs(pair_settings(teacher, pairs=14), tmp_path / "pairs", device="cpu", progress=False)  # a partial last
    with pytest.raises(ValueError, match="holds 2 pairs where 4 are planned"):
        make_pairs(pair_settings(teacher, pairs=16), tmp_path / "pairs", device="cpu", progress=False)


def test_every_alternating_run_starts_from_the_given_noise_so_the_sample_is_a_function_of_it(teacher):
    """The teacher's default order (runs alternating between video and audio) with guidance off: given the noise,
    two generators give the same sample (every run starts from it); without it they do not."""
    model = AVDiT.from_pretrained(teacher[0])
    g = torch.Generator().manual_seed(3)
    clean = AV(torch.randn(2, *model.video_shape, generator=g), torch.randn(2, *model.audio_shape, generator=g))
    noise = clean.map(lambda p: torch.randn(p.shape, generator=g))
    sampling = SamplingConfig.preset("default").replace(guidance=0.0, steps=3)
    assert len(sampling.runs) == 5
    given = get_task("av_continue", LAYOUT.num_segments).given

    def sample(seed, with_noise):
        return generate_latents(model, clean, given, LAYOUT, sampling, generator=torch.Generator().manual_seed(seed),
                                noise=noise if with_noise else None, prediction=model.config.prediction)

    for a, b in zip(sample(0, True), sample(1, True)):
        assert torch.equal(a, b)
    assert not torch.equal(sample(0, False).video, sample(1, False).video)


def test_settings_that_cannot_train_are_refused_before_any_pair_is_made(teacher, tmp_path):
    with pytest.raises(ValueError, match="does not train the levels of 2 DDIM steps"):
        distill(pair_settings(teacher), tmp_path / "a", device="cpu", progress=False, student_steps="1,3")
    with pytest.raises(ValueError, match="student_steps"):
        distill(pair_settings(teacher), tmp_path / "b", device="cpu", progress=False, student_steps="x")
    assert not (tmp_path / "a" / "pairs").exists() and not (tmp_path / "b" / "pairs").exists()


def test_fewer_pairs_than_made_are_refused(teacher, tmp_path):
    make_pairs(pair_settings(teacher), tmp_path / "pairs", device="cpu", progress=False)
    with pytest.raises(ValueError, match="holds 8 pairs; pairs=4 would train on fewer"):
        make_pairs(pair_settings(teacher, pairs=4), tmp_path / "pairs", device="cpu", progress=False)


def test_dmd_moves_the_sample_against_the_score_difference_scaled_per_example():
    """``dmd_target``, against the formula (Yin et al. 2024, Eq. 8) recomputed by hand: where the fake score is the
    real one nothing moves; elsewhere each example moves by (fake - real) / mean |sample - real| over its scored
    elements."""
    g = torch.Generator().manual_seed(0)
    sample, real, fake = (AV(torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, generator=g)) for _ in range(3))
    masks = AV(torch.ones(2, 3, 4), (torch.arange(5) < 2).float().expand(2, 5))  # audio: 2 of 5 elements scored
    unmoved = dmd_target(sample, real, real, masks)
    assert all(torch.equal(a, b) for a, b in zip(unmoved, sample))
    moved = dmd_target(sample, real, fake, masks)
    for b in range(2):
        gaps = torch.cat([(sample.video[b] - real.video[b]).abs().flatten(),
                          (sample.audio[b, :2] - real.audio[b, :2]).abs()])
        scale = gaps.mean()
        for m in range(2):
            expected = sample[m][b] - (fake[m][b] - real[m][b]) / scale
            torch.testing.assert_close(moved[m][b], expected)


def test_distill_with_dmd_fine_tunes_the_student_into_run_dmd_and_resumes(teacher, tmp_path, capsys):
    run = tmp_path / "student"
    settings = {"steps": 1, "batch_size": 2, "fake_warmup": 1, "save_every": 1, "precision": "fp32"}
    distill(pair_settings(teacher), run, device="cpu", progress=False, steps=2, batch_size=4, precision="fp32",
            dmd=DMDSettings(**settings))
    regression = AVDiT.from_pretrained(run).state_dict()
    warmed = AVDiT.from_pretrained(run / "dmd").state_dict()
    assert all(torch.equal(regression[k], warmed[k]) for k in regression)  # the warm-up trains the fake alone
    capsys.readouterr()
    last = dmd_finetune(run, DMDSettings(**{**settings, "steps": 3, "save_every": 2}), device="cpu", progress=False)
    assert "dmd: resuming from step 1 of 3" in capsys.readouterr().out
    assert last["step"] == 3 and last["dmd"] > 0 and last["regression"] > 0
    lines = [json.loads(line) for line in (run / "dmd" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3] and lines[0]["dmd"] == 0  # the warm-up's step: no DMD
    tuned = AVDiT.from_pretrained(run / "dmd").state_dict()
    assert any(not torch.equal(regression[k], tuned[k]) for k in regression)
    assert json.loads((run / "dmd" / "done.json").read_text()) == {"steps": 3}
    with pytest.raises(ValueError, match="other settings \\(lr: 3e-05 there, 0.001 now\\)"):
        dmd_finetune(run, DMDSettings(**{**settings, "steps": 4, "lr": 1e-3}), device="cpu", progress=False)
    pipe = Pipeline.from_pretrained(run / "dmd", device="cpu")
    assert pipe.default_sampling == SamplingConfig.preset("distilled")
    assert pipe("a2v", audio=bt.make_clip(0, 0, "test").audio, seed=0).video.shape[1] == LAYOUT.frames


def test_dmd_settings_and_folders_that_cannot_work_are_refused(teacher, tmp_path, capsys):
    from avdit.cli import main

    with pytest.raises(ValueError, match="steps=0 must be >= 1"):
        DMDSettings(steps=0)
    with pytest.raises(ValueError, match="precision='fp16'"):
        DMDSettings(precision="fp16")
    with pytest.raises(FileNotFoundError, match="no student of `avdit distill`"):
        dmd_finetune(tmp_path, DMDSettings(steps=1), device="cpu")
    with pytest.raises(FileNotFoundError, match=f"were made from, {tmp_path / 'gone'}, and finds none there"):
        real_clips({"data": str(tmp_path / "gone")}, tmp_path / "pairs")
    run, latents = teacher
    assert main(["distill", "--teacher", str(run), "--data", str(latents), "--out", str(tmp_path / "s"),
                 "--dmd-steps", "2", "--fake-updates", "0"]) == 2
    assert "fake_updates=0 must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before any pair is made
    assert main(["distill", "--teacher", str(run), "--data", str(latents), "--out", str(tmp_path / "s"),
                 "--dmd-steps", "2", "--dmd-guidance", "2", "--dmd-together", "1.5"]) == 2
    assert "scored_together=1.5 must be in [0, 1]" in capsys.readouterr().err  # the flags reach the DMD settings
    assert main(["distill", "--teacher", str(run), "--data", str(latents), "--out", str(tmp_path / "f"),
                 "--dmd-steps", "2", "--fsdp"]) == 3
    assert "does not shard them" in capsys.readouterr().err and not (tmp_path / "f" / "pairs").exists()


@pytest.mark.slow  # subprocesses (about 15 s): kept out of the 5-minute default suite
def test_two_processes_run_the_dmd_stage_data_parallel(teacher, tmp_path):
    """Under torchrun (gloo, 2 ranks) the DMD stage trains both networks with DDP: one example per rank, one
    checkpoint, and every rank's student the same after each step (DDP's averaged gradients)."""
    run, latents = teacher
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
               "-m", "avdit.cli", "distill", "--teacher", str(run), "--data", str(latents), "--pairs", "8",
               "--chunk", "4", "--tasks", "a2v=0.5,av_continue=0.5", "--teacher-sampling", "distilled", "--steps", "2",
               "--batch-size", "4", "--precision", "fp32", "--device", "cpu", "--out", str(tmp_path / "two"),
               "--dmd-steps", "2", "--dmd-batch-size", "2", "--fake-warmup", "0", "--dmd-gan", "0.5"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the DMD student is in" in done.stdout
    lines = [json.loads(line) for line in (tmp_path / "two" / "dmd" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2] and all(line["dmd"] > 0 for line in lines)
    assert all(line["generator"] > 0 and line["discriminator"] > 0 for line in lines)  # DMD2's GAN term under DDP
    regression = AVDiT.from_pretrained(tmp_path / "two").state_dict()
    tuned = AVDiT.from_pretrained(tmp_path / "two" / "dmd").state_dict()
    assert any(not torch.equal(regression[k], tuned[k]) for k in regression)
    odd = command[:-10] + ["--out", str(tmp_path / "odd"), "--dmd-steps", "2", "--dmd-batch-size", "3"]
    bad = subprocess.run(odd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert bad.returncode != 0 and "does not split over 2 ranks" in bad.stderr
    assert not (tmp_path / "odd" / "pairs").exists()  # refused before any pair is made


def test_the_discriminator_head_reads_the_tokens_of_the_scored_cells_only():
    """DMD2's head on an AVDiT: the scored cells' tokens are those the network puts in them (as many as it counts
    per cell), the logit is their mean, and tokens of other cells do not move it."""
    from avdit.model import get_preset
    from avdit.train.discriminator import DiscriminatorHead, scored_tokens

    net = AVDiT(get_preset("bt-tiny"))
    n = LAYOUT.num_segments
    scored = torch.zeros(2, 2, n, dtype=torch.bool)
    scored[0, 0, 2:] = True  # example 0: video segments 2.. (av_continue's video)
    scored[1, 1] = True  # example 1: all audio (v2a's generated modality)
    mask = scored_tokens(net, scored)  # (B, L)
    assert mask.sum(1).tolist() == [int(net.cell_tokens[2:n].sum()), int(net.cell_tokens[n:].sum())]
    assert set(net.token_cell[mask[0]].tolist()) == set(range(2, n))
    assert set(net.token_cell[mask[1]].tolist()) == set(range(n, 2 * n))
    head = DiscriminatorHead(64)
    tokens = torch.randn(2, len(net.token_cell), 64)
    logits = head(tokens, mask)
    per_token = head.mlp(head.norm(tokens)).squeeze(-1)
    torch.testing.assert_close(logits, torch.stack([per_token[b][mask[b]].mean() for b in range(2)]))
    outside = torch.where(mask[..., None], tokens, torch.randn_like(tokens))
    torch.testing.assert_close(head(outside, mask), logits)


def test_the_gan_term_weighs_the_examples_whose_scored_modality_it_names():
    from avdit.train.dmd import gan_weights, weighted_mean

    scored = torch.zeros(3, 2, LAYOUT.num_segments, dtype=torch.bool)
    scored[0, 0, 1:] = True  # video scored
    scored[1, 1, :2] = True  # audio scored
    assert gan_weights(scored, "video").tolist() == [1, 0, 0]  # example 2 scores nothing
    assert gan_weights(scored, "audio").tolist() == [0, 1, 0]
    assert gan_weights(scored, "video,audio").tolist() == [1, 1, 0]
    assert float(weighted_mean(torch.tensor([2.0, 4.0, 9.0]), gan_weights(scored, "video,audio"))) == 3.0
    assert float(weighted_mean(torch.tensor([2.0, 4.0, 9.0]), torch.zeros(3))) == 0.0
    with pytest.raises(ValueError, match="gan_modalities='pictures'"):
        DMDSettings(gan_modalities="pictures")
    with pytest.raises(ValueError, match="gan_max_level=20 must be in"):
        DMDSettings(gan_max_level=20)


def test_scored_together_scores_every_generated_cell_of_that_share_and_leaves_the_draws_alone_at_zero():
    """``scored_grid``: one modality's generated cells per example; with ``together`` p, every generated cell for a
    share p of examples (given cells never); at 0 the random stream is as before, so earlier runs resume the same."""
    from avdit.train.dmd import scored_grid

    n = LAYOUT.num_segments
    given = torch.zeros(4000, 2, n, dtype=torch.bool)
    given[::2, :, 0] = True  # half the examples: a continuation's first segment given (both modalities)
    one = scored_grid(given, torch.Generator().manual_seed(0))
    assert (one.any(2).sum(1) == 1).all() and not (one & given).any()
    assert torch.equal(scored_grid(given, torch.Generator().manual_seed(0), 0.0), one)
    both = scored_grid(given, torch.Generator().manual_seed(0), 0.25)
    whole = both.any(2).all(1)  # (B,) both modalities scored
    assert torch.equal(both[whole], ~given[whole]) and not (both & given).any()
    assert abs(float(whole.float().mean()) - 0.25) < 0.03
    assert torch.equal(both[~whole], one[~whole])  # the others: the same modality drawn as without
    with pytest.raises(ValueError, match="scored_together=1.5 must be in"):
        DMDSettings(scored_together=1.5)


def test_the_gan_terms_levels_stay_below_its_top():
    """``renoise`` with a top: every scored cell at a level in [20, top), the rest clean and unchanged."""
    from avdit.train.dmd import renoise

    g = torch.Generator().manual_seed(0)
    x0 = AV(torch.randn(64, 16, 5, 8, 8), torch.randn(64, 16, 85))
    scored = torch.zeros(64, 2, LAYOUT.num_segments, dtype=torch.bool)
    scored[:, 0, 2:] = True
    x, t, _ = renoise(x0, scored, LAYOUT, g, top=300)
    assert t[scored].min() >= 20 and t[scored].max() < 300 and t[~scored].eq(0).all()
    assert t[scored].max() > 250  # drawn over the range, not at one level
    torch.testing.assert_close(x.audio, x0.audio)


def test_a_frozen_network_passes_gradients_to_its_input_and_takes_none():
    """The student's GAN loss goes through the fake network and its head without training them."""
    from avdit.train.dmd import frozen

    net = torch.nn.Linear(3, 1)
    x = torch.randn(4, 3, requires_grad=True)
    with frozen(net):
        net(x).sum().backward()
    assert net.weight.grad is None and x.grad is not None and net.weight.requires_grad
    torch.testing.assert_close(x.grad, net.weight.detach().expand(4, 3))


def test_dmd_with_the_gan_term_trains_its_head_publishes_the_students_average_and_resumes(teacher, tmp_path, capsys):
    """``gan`` > 0: the discriminator learns beside the fake network and the student takes its generator loss (both
    logged); ``ema_decay`` > 0: the checkpoint is the average the state keeps, not the student; a rerun resumes
    both; a stage made without them is refused with them."""
    run = tmp_path / "student"
    settings = {"steps": 2, "batch_size": 2, "fake_warmup": 1, "save_every": 1, "precision": "fp32", "gan": 0.5,
                "ema_decay": 0.9}
    distill(pair_settings(teacher), run, device="cpu", progress=False, steps=2, batch_size=4, precision="fp32",
            dmd=DMDSettings(**settings))
    lines = [json.loads(line) for line in (run / "dmd" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["generator"] == 0 and lines[0]["discriminator"] > 0  # the warm-up: the discriminator alone
    assert lines[1]["generator"] > 0 and lines[1]["discriminator"] > 0
    state = torch.load(run / "dmd" / "state.pt", weights_only=True)
    from avdit.train.discriminator import DiscriminatorHead

    fresh = DiscriminatorHead(64).state_dict()
    assert set(state["head"]) == set(fresh) and "head_opt" in state
    published = AVDiT.from_pretrained(run / "dmd").state_dict()
    assert all(torch.equal(published[k], state["ema"][k]) for k in published)
    assert any(not torch.equal(published[k], state["student"][k]) for k in published)
    capsys.readouterr()
    last = dmd_finetune(run, DMDSettings(**{**settings, "steps": 3}), device="cpu", progress=False)
    assert "resuming from step 2 of 3" in capsys.readouterr().out and last["generator"] > 0
    resumed = torch.load(run / "dmd" / "state.pt", weights_only=True)
    assert any(not torch.equal(resumed["head"][k], state["head"][k]) for k in state["head"])
    plain = tmp_path / "plain"
    distill(pair_settings(teacher), plain, device="cpu", progress=False, steps=2, batch_size=4, precision="fp32",
            dmd=DMDSettings(**{**settings, "gan": 0.0, "ema_decay": 0.0}))
    with pytest.raises(ValueError, match="gan: 0.0 there, 0.5 now"):
        dmd_finetune(plain, DMDSettings(**{**settings, "steps": 3}), device="cpu", progress=False)
    with pytest.raises(ValueError, match="ema_decay=1.0 must be in"):
        DMDSettings(ema_decay=1.0)
