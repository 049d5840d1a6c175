"""Periodic samples during training: fixed held-out inputs, fixed seeds, a few tasks, written as mp4."""

from __future__ import annotations

from pathlib import Path

import torch

from avdit.codecs.interface import load_codecs
from avdit.diffusion import generate_latents
from avdit.media import write_mp4
from avdit.model import AVDiT
from avdit.tasks import get_task
from avdit.train.config import TrainConfig
from avdit.train.data import codecs_folder, held_out_latents

SAMPLE_TASKS = ("joint", "a2v", "av_continue")


def write_samples(run_dir: Path, model: AVDiT, config: TrainConfig, step: int) -> None:
    codecs = load_codecs(codecs_folder(config))
    layout = model.config.layout
    device = next(model.parameters()).device
    clean = held_out_latents(config, 1).map(lambda part: part.to(device))
    for name in SAMPLE_TASKS:
        task = get_task(name, layout.num_segments)
        generator = torch.Generator().manual_seed(config.seed)
        latents = generate_latents(model, clean, task.given, layout, steps=config.sample_steps, generator=generator,
                                   self_condition=model.config.self_condition)
        video, audio = codecs.decode(latents.map(lambda part: part.cpu().float()))
        write_mp4(run_dir / "samples" / f"step_{step:07d}_{name}.mp4", video[0].numpy(), audio[0].numpy(),
                  layout.fps, layout.sample_rate)
