import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from avdit.diffusion import STRATEGIES, SamplingConfig
from avdit.model import AVDiT
from avdit.train import loop as loop_module
from avdit.train.config import TrainConfig
from avdit.train.loop import TrainingError, train
from avdit.train.state import load_state
from tests.conftest import tiny_codecs


@pytest.fixture(scope="module")
def codecs_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codecs")
    tiny_codecs(0).save(folder)
    return folder


@pytest.fixture(scope="module")
def shards(codecs_dir, tmp_path_factory):
    """Latents of 8 Bouncing Tones clips, made once through a first run."""
    run = tmp_path_factory.mktemp("first")
    train(tiny(codecs_dir, steps=1), run, progress=False)
    return run / "latents"


def tiny(codecs_dir, **overrides) -> TrainConfig:
    base = dict(preset="bt-tiny", codecs=str(codecs_dir), num_clips=8, steps=6, batch_size=4, lr=1e-3, warmup=2,
                log_every=1, checkpoint_every=3, precision="fp32", self_condition_rate=0.5)
    return TrainConfig(**{**base, **overrides})


cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason="needs a CUDA GPU (run on one by benchmarks/gpu_check.sh)")


def parameters(run_dir):
    return load_state(run_dir)["model"]


def assert_same(a: dict, b: dict, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0 if atol == 0 else 1e-5, msg=key)


def test_a_run_writes_config_state_snapshot_and_logs(codecs_dir, shards, tmp_path):
    last = train(tiny(codecs_dir, data=str(shards)), tmp_path, progress=False)
    assert last["step"] == 6 and last["loss"] > 0 and {"lr", "grad_norm"} <= set(last)
    logged = {k for k in last if k.startswith("loss/")}  # the strategies drawn in the last logged step
    assert logged and logged <= {f"loss/{s}" for s in STRATEGIES}
    assert load_state(tmp_path)["step"] == 6
    model, info = AVDiT.from_pretrained(tmp_path), AVDiT.load_info(tmp_path)
    assert info["step"] == 6 and info["train"]["noise_levels"] == "monl"
    assert model.config.self_condition and model.config.video_channels == 4
    assert (tmp_path / "config.json").exists()


@pytest.mark.parametrize("device, precision", [("cpu", "fp32"), pytest.param("cuda", "bf16", marks=cuda)])
def test_interrupted_and_resumed_equals_uninterrupted(codecs_dir, shards, tmp_path, monkeypatch, device, precision):
    config = tiny(codecs_dir, data=str(shards), precision=precision)
    train(config, tmp_path / "straight", progress=False, device=device)

    calls = {"n": 0}
    real = loop_module.update_ema

    def crash_after_four(*args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        real(*args)

    monkeypatch.setattr(loop_module, "update_ema", crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", progress=False, device=device)
    assert load_state(tmp_path / "resumed")["step"] == 3  # the last checkpoint
    monkeypatch.setattr(loop_module, "update_ema", real)
    train(config, tmp_path / "resumed", progress=False, device=device)
    assert_same(parameters(tmp_path / "straight"), parameters(tmp_path / "resumed"))
    assert_same(load_state(tmp_path / "straight")["ema"], load_state(tmp_path / "resumed")["ema"])


def test_a_resumed_run_logs_each_step_once_in_whole_lines(codecs_dir, shards, tmp_path, monkeypatch):
    """Killed after logging steps 4 and 5 past its checkpoint at 3, mid-way through a line: the resumed run's
    metrics.jsonl holds steps 1..6 in order, each once, every line JSON."""
    import json

    config = tiny(codecs_dir, data=str(shards))  # 6 steps, a checkpoint every 3, a line every step
    real = loop_module.update_ema
    calls = {"n": 0}

    def crash_at_six(*args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt("killed")
        real(*args)

    monkeypatch.setattr(loop_module, "update_ema", crash_at_six)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, progress=False)
    metrics = tmp_path / "metrics.jsonl"
    before = metrics.read_text().splitlines(keepends=True)
    assert [json.loads(line)["step"] for line in before] == [1, 2, 3, 4, 5] and load_state(tmp_path)["step"] == 3
    with open(metrics, "a") as log:
        log.write('{"step": 6, "loss": 0.')  # the append the kill cut short
    monkeypatch.setattr(loop_module, "update_ema", real)
    train(config, tmp_path, progress=False)
    after = metrics.read_text().splitlines(keepends=True)
    assert after[:3] == before[:3]  # the lines up to the checkpoint are kept as written
    assert all(line.endswith("\n") for line in after)
    steps = [json.loads(line)["step"] for line in after]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_trim_metrics_keeps_whole_lines_up_to_the_step_each_once(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\nnot json\n{"step": 2}\n{"step": 3}\n{"step": 4}\n{"step": 3, "lo')
    loop_module.trim_metrics(path, 3)
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n{"step": 3}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # written through a temporary, none left
    loop_module.trim_metrics(path, 0)  # a run killed before its first checkpoint starts its log again
    assert path.read_text() == ""


def test_accumulation_matches_one_big_batch(codecs_dir, shards, tmp_path):
    train(tiny(codecs_dir, data=str(shards), self_condition_rate=0.0), tmp_path / "one", progress=False)
    train(tiny(codecs_dir, data=str(shards), self_condition_rate=0.0, accumulation=2), tmp_path / "two",
          progress=False)
    assert_same(parameters(tmp_path / "one"), parameters(tmp_path / "two"), atol=1e-5)


@pytest.mark.slow  # about a minute of compilation, and inductor needs a C++ compiler on the machine
def test_a_compiled_run_follows_the_eager_run(codecs_dir, shards, tmp_path):
    """--compile (torch.compile of the model) computes the same training steps, up to float rounding."""
    config = tiny(codecs_dir, data=str(shards), steps=3)
    train(config, tmp_path / "eager", progress=False)
    train(TrainConfig(**{**config.to_dict(), "compile": True}), tmp_path / "compiled", progress=False)
    assert_same(parameters(tmp_path / "eager"), parameters(tmp_path / "compiled"), atol=1e-4)


def torchrun(codecs_dir, shards, out, steps, *extra, port=29517, nproc=2, device="cpu"):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_port", str(port),
               "-m", "avdit.cli", "train", "--preset", "bt-tiny", "--codecs", str(codecs_dir), "--data", str(shards),
               "--steps", str(steps), "--batch-size", "4", "--lr", "1e-3", "--warmup", "2", "--log-every", "1",
               "--checkpoint-every", "3", "--precision", "fp32", "--self-condition-rate", "0.5",
               "--num-clips", "8", "--out", str(out), "--device", device, *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow  # tests/test_multinode.py checks the same two-rank equality (through two agents): 7 s saved
def test_two_processes_with_gloo_equal_one_process(codecs_dir, shards, tmp_path):
    train(tiny(codecs_dir, data=str(shards), steps=3), tmp_path / "single", progress=False)
    torchrun(codecs_dir, shards, tmp_path / "ddp", 3)
    assert_same(parameters(tmp_path / "single"), parameters(tmp_path / "ddp"), atol=1e-5)


def test_fsdp_equals_one_process(codecs_dir, shards, tmp_path):
    """2 ranks with FSDP == 1 process, EMA included, and the FSDP run writes its periodic samples."""
    train(tiny(codecs_dir, data=str(shards), steps=6, sample_every=6), tmp_path / "single", progress=False)
    torchrun(codecs_dir, shards, tmp_path / "fsdp", 6, "--fsdp", "--sample-every", "6", port=29518)
    for key in ("model", "ema"):
        assert_same(load_state(tmp_path / "single")[key], load_state(tmp_path / "fsdp")[key], atol=1e-5)
    assert (tmp_path / "fsdp" / "samples").is_dir()


@pytest.mark.slow  # a second torchrun (about 8 s): kept out of the 5-minute default suite
def test_a_checkpoint_resumes_across_shardings(codecs_dir, shards, tmp_path):
    """A 1-process checkpoint resumes under FSDP and back, with the result of an unsharded run."""
    # 3 steps alone, 2 more under FSDP (optimizer state in, full state out), 1 more alone; against 3 + 2 + 1
    # steps alone (--steps shapes the cosine schedule, so both take the same three legs)
    for leg, steps in enumerate((3, 5, 6)):
        train(tiny(codecs_dir, data=str(shards), steps=steps), tmp_path / "alone", progress=False)
        if leg == 1:
            torchrun(codecs_dir, shards, tmp_path / "mixed", steps, "--fsdp", port=29519)
        else:
            train(tiny(codecs_dir, data=str(shards), steps=steps), tmp_path / "mixed", progress=False)
    alone, mixed = load_state(tmp_path / "alone"), load_state(tmp_path / "mixed")
    assert mixed["step"] == 6
    assert_same(alone["model"], mixed["model"], atol=1e-5)
    assert_same(alone["optimizer"]["state"][0], mixed["optimizer"]["state"][0], atol=1e-5)


@cuda
def test_a_cuda_run_equals_a_cpu_run(codecs_dir, shards, tmp_path):
    """fp32 on the GPU follows the CPU run (the same seeded stream: noise is drawn on the CPU); its periodic
    samples are written too."""
    config = tiny(codecs_dir, data=str(shards), sample_every=6)
    train(config, tmp_path / "cpu", progress=False, device="cpu")
    train(config, tmp_path / "gpu", progress=False, device="cuda")
    assert_same(parameters(tmp_path / "cpu"), parameters(tmp_path / "gpu"), atol=1e-4)
    assert len(list((tmp_path / "gpu" / "samples").glob("*.mp4"))) == 3


# the CPU case is slow (7 s): the two-rank tests go through the same wrapping; the GPU cases are what it is for
@pytest.mark.parametrize("device, mode", [pytest.param("cpu", "ddp", marks=pytest.mark.slow),
                                          pytest.param("cuda", "ddp", marks=cuda),
                                          pytest.param("cuda", "fsdp", marks=cuda)])
def test_torchrun_with_one_process_equals_a_plain_run(codecs_dir, shards, tmp_path, device, mode):
    """Under torchrun the model is wrapped (DDP, or FSDP with --fsdp) in a process group even for one process:
    gloo on the CPU, NCCL on one GPU (the GPU path a multi-GPU run takes, checked where only one GPU is)."""
    train(tiny(codecs_dir, data=str(shards), steps=3), tmp_path / "plain", progress=False, device=device)
    extra = ("--fsdp",) if mode == "fsdp" else ()
    torchrun(codecs_dir, shards, tmp_path / mode, 3, *extra, nproc=1, device=device, port=29520)
    assert_same(parameters(tmp_path / "plain"), parameters(tmp_path / mode), atol=1e-5)


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(codecs_dir, shards, tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, torch
        from avdit.train import state
        from avdit.train.config import TrainConfig
        from avdit.train.loop import train
        real_save, calls = torch.save, {{"n": 0}}
        def dying_save(obj, path):
            calls["n"] += 1
            if calls["n"] == 2:  # the second checkpoint: write half a file, then die
                with open(path, "wb") as f:
                    f.write(b"half a checkpoint")
                os.kill(os.getpid(), signal.SIGKILL)
            real_save(obj, path)
        torch.save = dying_save
        config = TrainConfig(preset="bt-tiny", codecs={str(codecs_dir)!r}, data={str(shards)!r}, steps=6, batch_size=4,
                             checkpoint_every=3, precision="fp32")
        train(config, {str(tmp_path)!r}, progress=False)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert load_state(tmp_path)["step"] == 3
    assert any(p.name.startswith(".state.pt") for p in tmp_path.iterdir())  # the half-written temporary
    config = TrainConfig(preset="bt-tiny", codecs=str(codecs_dir), data=str(shards), steps=6, batch_size=4,
                         checkpoint_every=3, precision="fp32")
    train(config, tmp_path, progress=False)  # resumes, and clears the stale temporary
    assert load_state(tmp_path)["step"] == 6
    assert not any(p.name.startswith(".state.pt") for p in tmp_path.iterdir())


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(codecs_dir, shards, tmp_path, monkeypatch):
    config = tiny(codecs_dir, data=str(shards))
    train(TrainConfig(**{**config.to_dict(), "steps": 3}), tmp_path, progress=False)
    good = parameters(tmp_path)
    monkeypatch.setattr(loop_module, "reduce_loss",
                        lambda per_element, t, *_: torch.full((t.shape[0],), float("nan"), requires_grad=True))
    with pytest.raises(TrainingError, match="the loss became nan at step 3.*kept"):
        train(config, tmp_path, progress=False)
    assert_same(parameters(tmp_path), good)


def test_a_run_folder_made_with_other_settings_is_refused(codecs_dir, shards, tmp_path):
    train(tiny(codecs_dir, data=str(shards), steps=1), tmp_path, progress=False)
    with pytest.raises(TrainingError, match="preset: 'bt-tiny' there, 'bt-small' now"):
        train(tiny(codecs_dir, data=str(shards), steps=2, preset="bt-small"), tmp_path, progress=False)


def test_a_run_whose_preset_changed_since_is_refused(codecs_dir, shards, tmp_path):
    import json

    train(tiny(codecs_dir, data=str(shards), steps=1), tmp_path, progress=False)
    snapshot = json.loads((tmp_path / "model.json").read_text())
    snapshot["model"]["heads"] = 4  # as if bt-tiny had 4 heads then: the same parameter shapes as 2 heads
    (tmp_path / "model.json").write_text(json.dumps(snapshot))
    with pytest.raises(TrainingError, match="another network \\(heads: 4 there, 2 now\\)"):
        train(tiny(codecs_dir, data=str(shards), steps=2), tmp_path, progress=False)
    assert load_state(tmp_path)["step"] == 1  # nothing was trained into it


def test_a_run_folder_whose_config_lacks_a_setting_is_refused_naming_it(codecs_dir, shards, tmp_path):
    import json

    settings = dict(data=str(shards), loss_weighting="eps", prediction="eps")
    train(tiny(codecs_dir, **settings, steps=1), tmp_path, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["loss_weighting"]  # a config.json written by another version, or edited by hand
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrainingError, match="loss_weighting: None there, 'eps' now"):
        train(tiny(codecs_dir, **settings, steps=2), tmp_path, progress=False)


def test_a_v_prediction_run_keeps_its_parameterisation_in_the_snapshot_and_on_resume(codecs_dir, shards, tmp_path):
    from avdit.pipeline import Pipeline

    train(tiny(codecs_dir, data=str(shards), steps=2), tmp_path, progress=False)  # the defaults: v, v
    pipe = Pipeline.from_pretrained(tmp_path)
    assert pipe.model.config.prediction == "v"
    assert np.isfinite(pipe(task="joint", sampling=SamplingConfig(steps=2)).video).all()
    with pytest.raises(TrainingError, match="prediction: 'v' there, 'eps' now"):
        train(tiny(codecs_dir, data=str(shards), steps=3, prediction="eps"), tmp_path, progress=False)


def test_latents_of_other_codecs_are_refused(codecs_dir, shards, tmp_path):
    other = tmp_path / "other_codecs"
    tiny_codecs(1).save(other)
    with pytest.raises(ValueError, match="latents of other codecs"):
        train(tiny(other, data=str(shards), steps=1), tmp_path / "run", progress=False)


def test_model_overrides_shape_the_network_and_a_bad_one_writes_nothing(codecs_dir, shards, tmp_path):
    train(tiny(codecs_dir, data=str(shards), model="video_patch=4,depth=1", steps=1), tmp_path / "p4",
          progress=False)
    model, info = AVDiT.from_pretrained(tmp_path / "p4"), AVDiT.load_info(tmp_path / "p4")
    assert model.config.video_patch == 4 and model.config.depth == 1 and info["train"]["model"] == "video_patch=4,depth=1"
    with pytest.raises(TrainingError, match="model: 'video_patch=4,depth=1' there, 'depth=1' now"):
        train(tiny(codecs_dir, data=str(shards), model="depth=1", steps=2), tmp_path / "p4", progress=False)
    with pytest.raises(ValueError, match="not divisible by the video patch 3"):
        train(tiny(codecs_dir, data=str(shards), model="video_patch=3"), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()


def test_task_specific_training_logs_its_task(codecs_dir, shards, tmp_path):
    last = train(tiny(codecs_dir, data=str(shards), noise_levels="task:a2v", steps=2), tmp_path, progress=False)
    assert set(k for k in last if k.startswith("loss/")) == {"loss/task:a2v"}
    mixed = train(tiny(codecs_dir, data=str(shards), noise_levels="per-cell=0.5,tasks=0.5", steps=3, log_every=3,
                       batch_size=8), tmp_path / "mixed", progress=False)
    logged = {k for k in mixed if k.startswith("loss/")}
    assert logged <= {"loss/per-cell", "loss/task:a2v", "loss/task:v2a", "loss/task:av_continue",
                      "loss/task:av_inpaint"} and len(logged) >= 2 and math.isfinite(mixed["loss"])


def test_logs_and_periodic_samples(codecs_dir, shards, tmp_path):
    import json

    train(tiny(codecs_dir, data=str(shards), steps=2, sample_every=2, sample_steps=2), tmp_path, progress=False)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2] and all(m["samples_per_s"] > 0 for m in lines)
    assert all(m["samples_per_s"] == pytest.approx(4 / m["seconds"]) for m in lines)  # one step of batch 4 a window
    assert any((tmp_path / "tb").iterdir())
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert names == [f"step_0000002_{task}.mp4" for task in ("a2v", "av_continue", "joint")]
    from avdit.media import probe

    info = probe(tmp_path / "samples" / names[0])
    assert info.has_video and info.has_audio and abs(info.duration - 2.125) < 0.05


def test_a_noise_level_schedule_moves_over_the_run_and_a_bad_one_writes_nothing(codecs_dir, shards, tmp_path):
    import json

    train(tiny(codecs_dir, data=str(shards), noise_levels="task:a2v", noise_levels_final="per-cell", steps=4,
               log_every=1, batch_size=8), tmp_path / "moving", progress=False)
    lines = [json.loads(line) for line in (tmp_path / "moving" / "metrics.jsonl").read_text().splitlines()]
    losses = [{k for k in m if k.startswith("loss/")} for m in lines]
    assert losses[0] == {"loss/task:a2v"}  # progress 0: the start mixture only
    assert "loss/per-cell" in losses[-1]  # progress 3/4: mostly the final one
    assert json.loads((tmp_path / "moving" / "config.json").read_text())["noise_levels_final"] == "per-cell"
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        train(tiny(codecs_dir, data=str(shards), noise_levels_final="task:nope"), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()


def test_the_loss_of_a_v_prediction_run_keeps_its_values(codecs_dir, shards, tmp_path):
    """Golden values of the first steps' loss (the defaults: prediction v, weighting v, self-conditioning on)."""
    import json

    train(tiny(codecs_dir, data=str(shards), steps=2), tmp_path, progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert losses == pytest.approx(GOLDEN_RUN_LOSSES, rel=1e-5)


GOLDEN_RUN_LOSSES = [0.19961556792259216, 0.32763582468032837]  # written by the code before the denoiser wrapper
