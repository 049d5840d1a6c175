"""``avdit distill``: a student that samples every task in a few network passes, taught by a MoNL model.

Teacher-pair distillation onto straight DDIM paths: knowledge distillation of a sampler into a few-step network
(Luhman & Luhman 2021), with the coupling of rectified flow's reflow (Liu et al. 2023) on the VP schedule.

1. **Pairs** (``make_pairs``, into RUN/pairs). For each training clip: a task grid drawn from ``tasks``, noise z of
   both modalities, and the teacher's sample x* of the grid's generated cells, made with the teacher's own sampling
   (by default 12 DPM-Solver++(2M) steps in five alternating runs with guidance 1: 108-120 network passes), every
   run starting from the same z (``generate_latents``' ``noise``). Given cells keep the clip's latents.
2. **Student** (the teacher's network and weights, trained by ``avdit train``'s loop on ``PairBatches``). Each
   example's generated cells are put at one level t, x_t = sqrt(a_t) x* + sqrt(1 - a_t) z, its given cells clean at
   level 0 as in MoNL; the loss is training's, with x* as the clean latents and z as the noise. t is drawn from the
   levels that uniform DDIM samplers of ``student_steps`` steps visit. A DDIM step (eta 0) of a network that
   predicts x* from x_t lands on the same line at the next level, so k steps from z end at x*: the alternating
   runs and the guidance pass are folded into k passes (the ``distilled`` sampling preset).

The per-cell level input stays, so every task grid is served: given cells clean at 0, generated ones at the step's
level. Pair shards are written like ``avdit encode``'s (atomically; a rerun resumes; under torchrun, rank k % world
makes shard k), and the training resumes as ``avdit train`` does.
3. **Distribution matching** (optional, ``--dmd-steps``; ``avdit.train.dmd``): the regression student fine-tuned
   towards the teacher's distribution rather than its pairs, into RUN/dmd.
"""

from __future__ import annotations

from pathlib import Path

from avdit.diffusion.samplers import ddim_levels
from avdit.diffusion.sampling import STUDENT_PRESET, SamplingConfig
from avdit.train.dmd import DMDSettings, dmd_finetune, local_batch
from avdit.train.pairs import PairSettings, make_pairs
from avdit.utils import distributed


def student_config(teacher: str | Path, pairs_dir: str | Path, **training):
    """The ``TrainConfig`` of a student of checkpoint ``teacher``: its network (preset, overrides and head, as its
    model.json records them) started from its weights, trained on the pairs in ``pairs_dir``; ``training`` sets the
    rest (steps, batch_size, lr, student_steps, ...)."""
    from avdit.model import AVDiT
    from avdit.train.config import TrainConfig

    recorded = AVDiT.load_info(teacher).get("train", {})
    if "preset" not in recorded:
        raise ValueError(f"{teacher}/model.json does not say which preset made it (no 'train' record): distil a "
                         "checkpoint of `avdit train`, or export it with a current avdit")
    network = {name: recorded[name] for name in ("preset", "model", "prediction", "self_condition_rate")
               if name in recorded}
    config = TrainConfig(**{**DEFAULT_TRAINING, **network, "data": str(pairs_dir), "init": str(teacher),
                            "codecs": None, **training})
    preset = SamplingConfig.preset(STUDENT_PRESET)
    if not set(ddim_levels(str(preset.steps)).tolist()) <= set(ddim_levels(config.student_steps).tolist()):
        raise ValueError(f"student_steps={config.student_steps!r} does not train the levels of {preset.steps} DDIM "
                         f"steps, with which the student samples (the {STUDENT_PRESET!r} preset): include "
                         f"{preset.steps} (e.g. '1,2,4,8') or a multiple of it")
    return config


# The student's training unless told otherwise: a fine-tune of the teacher's weights on the pairs.
DEFAULT_TRAINING = {"student_steps": "1,2,4,8", "steps": 4000, "batch_size": 64, "lr": 2e-4, "warmup": 200,
                    "ema_decay": 0.999, "checkpoint_every": 250}


def distill(pairs: PairSettings, run_dir: str | Path, device: str | None = None, progress: bool = True,
            dmd: DMDSettings | None = None, **training) -> dict:
    """``avdit distill``: the teacher pairs (RUN/pairs), then the student trained on them in ``run_dir`` (both
    resume when rerun; under torchrun the ranks share the pairs and train data-parallel, or sharded with
    fsdp=True); with ``dmd``, then its distribution-matching stage into RUN/dmd (``avdit.train.dmd``). Returns the
    last logged figures. The students' checkpoints name the ``distilled`` sampling."""
    from avdit.train.loop import TrainingError, check_batch_split, train

    d = distributed.init(device)
    pairs_dir = Path(run_dir) / "pairs"
    config = student_config(pairs.teacher, pairs_dir, **{"seed": pairs.seed, **training})  # bad settings fail now,
    check_batch_split(config, d)  # not after the pairs
    if dmd is not None and config.fsdp:
        raise TrainingError("the DMD stage replicates its networks (DDP), it does not shard them: distil with --fsdp "
                            "first, then rerun without it to add --dmd-steps")
    if dmd is not None:
        local_batch(dmd, d.world)
    make_pairs(pairs, pairs_dir, ranks=d, progress=progress)
    last = train(config, run_dir, progress=progress, device=device, keep_group=dmd is not None)
    if dmd is None:
        return last
    return dmd_finetune(run_dir, dmd, device=device, progress=progress, teacher=pairs.teacher)
