"""Teacher pairs for ``avdit distill`` (``avdit.train.distill``): what the student learns from, and its batches.

RUN/pairs is a shard folder as ``avdit encode`` writes it (an index.json, safetensors shards written atomically, a rerun
resumes, under torchrun rank k % world makes shard k), whose shards hold for each pair: ``video``/``audio`` the
teacher's sample x* (the given cells are the clip's latents), ``noise_video``/``noise_audio`` the noise z every sampler
run started from, ``given`` its task grid (M, N) and ``task`` the index of its task in the mixture.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from avdit.codecs.shards import SHARD_INDEX, LatentShards, check_shard_folder, open_shards
from avdit.diffusion.generate import generate_latents
from avdit.diffusion.samplers import ddim_levels
from avdit.diffusion.sampling import SamplingConfig
from avdit.latents import AV
from avdit.layout import ClipLayout, M
from avdit.tasks.grid import preset as task_preset
from avdit.train.data import Batch, draw_indices
from avdit.utils import devices, distributed
from avdit.utils.atomic import atomic_path, write_json
from avdit.utils.seeding import step_generator

PAIR_TENSORS = ("video", "audio", "noise_video", "noise_audio", "given", "task")
RANDOM_GRID = "cells"  # a task of the mixture: every cell given with probability 1/2 (not all)
TURNS = "turns"  # a task of the mixture: a grid a student sampled in turns runs on (``turn_grid``)
TURN_TASKS = ("av_continue", "av_continue_2s", "av_inpaint")  # the presets that give cells of both modalities
DEFAULT_TASKS = "joint=0.3,av_continue=0.2,a2v=0.15,v2a=0.15,av_inpaint=0.1,cells=0.1"


def parse_tasks(spec: str) -> tuple[list[str], torch.Tensor]:
    """'joint=0.3,a2v=0.2,cells=0.1' -> task names and their shares (summing to 1). A name is a task preset
    (``avdit.tasks``), ``cells`` (a random grid) or ``turns`` (``turn_grid``)."""
    from avdit.tasks.grid import TASK_PRESETS

    names, weights = [], []
    for part in spec.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in TASK_PRESETS and name not in (RANDOM_GRID, TURNS):
            raise ValueError(f"tasks={spec!r}: unknown task {name!r}; give presets ({', '.join(TASK_PRESETS)}), "
                             f"{RANDOM_GRID!r} (random grids) or {TURNS!r} (the grids of a student's turns), each "
                             f"with a share, e.g. {DEFAULT_TASKS!r}")
        try:
            share = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"tasks={spec!r}: the share of {name!r} is not a number: {weight!r}") from None
        if share < 0 or name in names:
            raise ValueError(f"tasks={spec!r}: each task once, with a share >= 0")
        names.append(name)
        weights.append(share)
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"tasks={spec!r}: the shares sum to 0")
    return names, torch.tensor(weights) / total


def turn_grid(num_segments: int, generator: torch.Generator) -> torch.Tensor:
    """(M, N): a grid that a student sampled in turns (the ``distilled`` preset) runs on where a task gives cells of
    both modalities: one of ``TURN_TASKS``' grids with one modality given whole (a run given the other's latest
    sample). No task of the mixture is such a grid, and a stream's rolled windows (continuations) run on them."""
    task = TURN_TASKS[int(torch.randint(len(TURN_TASKS), (1,), generator=generator))]
    given = task_preset(task, num_segments).given.clone()  # (M, N)
    given[int(torch.randint(M, (1,), generator=generator))] = True  # that modality given whole
    return given


def draw_grid(name: str, num_segments: int, generator: torch.Generator) -> torch.Tensor:
    """The (M, N) grid of given cells of task ``name``; for ``cells`` a random one with a generated cell, for
    ``turns`` one of ``turn_grid``."""
    if name == TURNS:
        return turn_grid(num_segments, generator)
    if name != RANDOM_GRID:
        return task_preset(name, num_segments).given
    while True:
        given = torch.rand(M, num_segments, generator=generator) < 0.5  # (M, N)
        if not bool(given.all()):
            return given


@dataclass(frozen=True)
class PairSettings:
    """What the teacher pairs are made of; recorded in RUN/pairs/index.json (a rerun with others is refused)."""

    teacher: str
    data: str
    pairs: int = 8192  # may grow when rerun: the shards made are kept, the new ones added
    tasks: str = DEFAULT_TASKS
    teacher_sampling: str = "default"  # a sampling preset of the teacher
    chunk: int = 64  # pairs per shard; a shard is one task grid, sampled as one batch
    seed: int = 0

    def __post_init__(self) -> None:
        parse_tasks(self.tasks)
        SamplingConfig.preset(self.teacher_sampling)
        if self.pairs < 1 or self.chunk < 1:
            raise ValueError(f"pairs={self.pairs} and chunk={self.chunk} must be >= 1")


def make_pairs(settings: PairSettings, out: str | Path, device: str | None = None,
               ranks: distributed.Dist | None = None, progress: bool = True) -> dict:
    """The teacher pairs of ``settings`` in shard folder ``out`` (resumed where shards exist); returns its index."""
    from avdit.codecs.digest import codec_digest_matches
    from avdit.pipeline import Pipeline

    d = ranks or distributed.Dist(0, 1, 0, devices.resolve_device(device))
    latents, data_index = open_shards(settings.data)
    teacher = Pipeline.from_pretrained(settings.teacher, codecs=data_index.get("codecs"), device=str(d.device))
    layout = teacher.layout
    if ClipLayout.from_dict(data_index["layout"]) != layout:
        raise ValueError(f"the latents in {settings.data} are of another clip layout than the teacher "
                         f"{settings.teacher}'s: encode the data with the teacher's codecs")
    # loading the teacher with the data's codecs checked that it was trained with them; the data must be theirs too
    if not codec_digest_matches(data_index["codec_digest"], data_index["codecs"]):
        raise ValueError(f"the latents in {settings.data} were made with other codecs than those now in "
                         f"{data_index['codecs']}: encode the data again with the teacher's codecs")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = {**asdict(settings), "teacher": str(Path(settings.teacher).resolve()),
            "data": str(Path(settings.data).resolve()), "teacher_weights": teacher.weights_digest(),
            "codec_digest": data_index["codec_digest"]}
    check_shard_folder(out, {k: v for k, v in plan.items() if k != "pairs"})  # more pairs extend the folder
    index_path = out / SHARD_INDEX
    before = json.loads(index_path.read_text()).get("pairs", 0) if index_path.is_file() else 0
    if settings.pairs < before:
        raise ValueError(f"{out} holds {before} pairs; pairs={settings.pairs} would train on fewer: give "
                         f"pairs={before} or more (the count may only grow), or choose another out=")
    distributed.barrier(d)
    shards = [{"file": f"shard_{k:05d}.safetensors", "clips": min(settings.chunk, settings.pairs - first)}
              for k, first in enumerate(range(0, settings.pairs, settings.chunk))]
    for shard in shards:  # shard k is the same pairs whatever the count, unless it was the last and partial
        path = out / shard["file"]
        if path.exists():
            with safe_open(path, "pt") as f:
                held = f.get_slice("task").get_shape()[0]
            if held != shard["clips"]:
                raise ValueError(f"{path} holds {held} pairs where {shard['clips']} are planned now (pairs= grew from "
                                 f"a count that is not a multiple of chunk=): delete it to make it again")
    if d.main:
        done = sum((out / shard["file"]).exists() for shard in shards)
        if done and progress:
            print(f"avdit distill: resuming the teacher pairs in {out}: {done} of {len(shards)} shards written",
                  flush=True)
        write_json(out / SHARD_INDEX, {**plan, "complete": False})
    distributed.barrier(d)
    names, shares = parse_tasks(settings.tasks)
    sampling = SamplingConfig.preset(settings.teacher_sampling)
    mine = [(k, k * settings.chunk, shard) for k, shard in enumerate(shards) if k % d.world == d.rank]
    bar = tqdm(total=sum(shard["clips"] for *_, shard in mine), desc="teacher pairs", unit="pair",
               disable=not (progress and d.main))
    for k, first, shard in mine:
        if not (out / shard["file"]).exists():
            _write_pair_shard(teacher, latents, out / shard["file"], first, shard["clips"], names, shares, sampling,
                              step_generator(settings.seed, k, stream=1))
        bar.update(shard["clips"])
    bar.close()
    distributed.barrier(d)
    index = {**plan, "complete": True, "shards": shards, "layout": layout.to_dict(),
             "video_shape": list(latents.video_shape), "audio_shape": list(latents.audio_shape),
             "codecs": data_index["codecs"], "task_names": names}
    if d.main:
        write_json(out / SHARD_INDEX, index)
    distributed.barrier(d)
    return index


@torch.no_grad()
def _write_pair_shard(teacher, latents: LatentShards, path: Path, first: int, count: int, names: list[str],
                      shares: torch.Tensor, sampling: SamplingConfig, g: torch.Generator) -> None:
    """One shard: ``count`` clips from ``first`` (wrapping around the data) under one task grid drawn from the
    mixture, their noise, and the teacher's samples from that noise."""
    task = int(torch.multinomial(shares, 1, generator=g))
    given = draw_grid(names[task], teacher.layout.num_segments, g)  # (M, N)
    clean = latents.take((first + torch.arange(count)) % len(latents))  # (count, ...) each modality
    write_pair_shard(teacher, clean, given, task, sampling, g, path)


@torch.no_grad()
def write_pair_shard(teacher, clean: AV, given: torch.Tensor, task: int, sampling: SamplingConfig,
                     g: torch.Generator, path: Path) -> None:
    """One shard at ``path``: for each of ``clean``'s clips, noise z drawn from ``g`` and the teacher's sample of the
    generated cells of grid ``given`` (M, N) from z, ``task`` its index in the shard folder's task names."""
    count = clean.batch_size
    noise = clean.map(lambda p: torch.randn(p.shape, generator=g))
    model = teacher.model
    sample = generate_latents(model, clean.map(lambda p: p.to(teacher.device)), given, teacher.layout, sampling,
                              generator=g, self_condition=model.config.self_condition,
                              prediction=model.config.prediction, noise=noise.map(lambda p: p.to(teacher.device)))
    sample = sample.map(lambda p: p.float().cpu())
    tensors = {"video": sample.video, "audio": sample.audio, "noise_video": noise.video, "noise_audio": noise.audio,
               "given": given.to(torch.uint8).expand(count, -1, -1), "task": torch.full((count,), task)}
    with atomic_path(path, ".safetensors") as tmp:
        save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, tmp)


class PairBatches:
    """A distillation's batches (``TrainConfig.student_steps``): teacher pairs drawn as ``avdit train`` draws clips,
    each example's generated cells at one level of the student's sampler, its given cells at 0; the pair's noise is
    the noise. The loss is logged per task of the mixture."""

    def __init__(self, config, pairs: LatentShards, index: dict):
        if "task_names" not in index:
            raise ValueError(f"{pairs.folder} holds latents, not teacher pairs: student_steps= trains on the pairs "
                             "`avdit distill` makes (RUN/pairs)")
        self.config, self.pairs = config, pairs
        self.levels = ddim_levels(config.student_steps)  # (L,)
        self.strategies = tuple(index["task_names"])

    def draw(self, step: int) -> Batch:
        config = self.config
        g = step_generator(config.seed, step)
        idx = draw_indices(len(self.pairs), config.batch_size, g)  # (B,)
        video, audio, noise_video, noise_audio, given, task = self.pairs.take_named(idx, PAIR_TENSORS)
        level = self.levels[torch.randint(0, len(self.levels), (config.batch_size,), generator=g)]  # (B,)
        t = torch.where(given.bool(), 0, level.view(-1, 1, 1))  # (B, M, N)
        self_condition = (torch.rand(config.batch_size, generator=g) < config.self_condition_rate
                          if config.self_condition_rate > 0 else None)  # (B,), as MoNL batches draw it
        return Batch(AV(video, audio), AV(noise_video, noise_audio), t, task.long(), self_condition)
