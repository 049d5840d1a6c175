"""Periodic samples during training: fixed held-out inputs, fixed seeds, a few tasks, written as mp4."""

from __future__ import annotations

from pathlib import Path

from avdit.codecs.interface import load_codecs
from avdit.media import write_mp4
from avdit.model import AVDiT
from avdit.diffusion import DEFAULT_SAMPLING, SamplingConfig
from avdit.diffusion.sampling import STUDENT_PRESET
from avdit.pipeline import Pipeline, Result
from avdit.train.config import TrainConfig
from avdit.train.data import codecs_folder, held_out_latents

SAMPLE_TASKS = ("joint", "a2v", "av_continue")


def write_samples(run_dir: Path, model: AVDiT, config: TrainConfig, step: int) -> None:
    """One unguided clip per task in SAMPLE_TASKS from held-out clip 0, sampled where ``model`` is."""
    device = str(next(model.parameters()).device)
    pipe = Pipeline(model, load_codecs(codecs_folder(config)), device=device)
    clean = held_out_latents(pipe.codecs, config.seed, 1)  # (1, ...) latents on the CPU
    sampling = (SamplingConfig.preset(STUDENT_PRESET) if config.student_steps  # a student samples as it will be used
                else DEFAULT_SAMPLING.replace(steps=config.sample_steps, guidance=0.0))
    window = float(pipe.layout.duration)
    for task in SAMPLE_TASKS:
        result = Result.join(pipe.stream(task, latents=clean, seed=config.seed, duration=window, sampling=sampling))
        write_mp4(run_dir / "samples" / f"step_{step:07d}_{task}.mp4", result.video[0], result.audio[0],
                  result.fps, result.sample_rate)
