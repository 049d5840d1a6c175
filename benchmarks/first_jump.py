"""A study: teach a student the first run of a joint clip (video from pure noise, the audio unseen) in two steps: from
level T to where the teacher's first run stands after its top steps (those that decide the clip's colour class),
and from there to the teacher's video; its other grids are kept as they were. docs/distillation.md "Where the class
is decided" was made with it.

    python benchmarks/first_jump.py --student RUN/dmd --out runs/jump [--pairs 40960] [--whole 16384] [--steps 1000]
    python benchmarks/first_jump.py --student CKPT --evaluate-only [--land 500] [--evaluate 100]

1. Pairs of noise z and the teacher's first run from it (the bundled model's ``default`` sampling,
   DPM-Solver++(2M)): ``--pairs`` stop after its first ``--top`` steps, at the level it then stands (463 for 5 of
   12 steps: 5 passes a pair); ``--whole`` go on to the end of the run (12 passes) and keep both states. Pairs of
   other seeds (``--held``, ``--held-whole``) measure the fit.
2. Fine-tuning from ``--student``, three squared errors summed: a DDIM step of the student from level T on that grid
   against the teacher's state at the landing level; a DDIM step from the teacher's state there against the
   teacher's video; and, on the student's own pairs where something is given (``RUN/pairs``: the grids of every
   other task and of its later turns), the student's output against the frozen student's (``--losses``:
   jump, video, kept; some of them alone for a study).

The result is a checkpoint folder (``--out``) that ``avdit evaluate --checkpoint`` and ``benchmarks/class_mix.py``
read as any student. Pairs already made (``--out``/top_pairs.pt) are reused; the fine-tuning runs from the start.
"""

from __future__ import annotations

import argparse
import copy
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from avdit.diffusion import generate_latents
from avdit.diffusion.samplers import ddim_levels, step_levels
from avdit.diffusion.denoiser import eps_from_v
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, predict_x0, q_sample, q_sample_av
from avdit.eval.evaluate import held_out
from avdit.eval.measures import class_mix, clip_measures
from avdit.latents import AV
from avdit.layout import VIDEO, M
from avdit.pipeline import Pipeline
from avdit.tasks import get_task
from avdit.utils.atomic import atomic_path

BATCH = 64  # pairs a teacher batch makes, examples a training step takes of the landing (half that of the others)
LOSSES = ("jump", "kept", "video")  # the landing, the other grids kept, the video from the landing
T = DEFAULT_SCHEDULE.T


class _Stopped(Exception):
    """Raised by the callback once the teacher's first run has made what a pair keeps: its later steps are not
    needed."""


@torch.no_grad()
def top_pairs(teacher: Pipeline, count: int, top: int, seed: int, whole: bool = False) -> dict[str, torch.Tensor]:
    """``count`` pairs: noise (video, audio), the teacher's video after ``top`` steps of its first run ("landed")
    and, ``whole``, at the end of that run ("drawn")."""
    given = get_task("joint", teacher.layout.num_segments).given  # (M, N): nothing given
    sampling = teacher.default_sampling
    last = sampling.steps - 1 if whole else top - 1  # the step after which the run is stopped
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {"noise_video": [], "noise_audio": [], "landed": [], "drawn": []}
    for start in tqdm(range(0, count, BATCH), desc=f"pairs (seed {seed})"):
        batch = min(BATCH, count - start)
        clean = teacher.codecs.encode(None, None).map(lambda p: p.expand(batch, *p.shape[1:]))
        noise = clean.map(lambda p: torch.randn(p.shape, generator=g))  # (B, ...) each modality
        state: dict[str, torch.Tensor] = {}

        def stop(run: int, step: int, x: AV, x0: AV) -> None:
            if run == 0 and step == top - 1:
                state["landed"] = x.video.float().clone()
            if run == 0 and step == last:
                state["drawn"] = x.video.float().clone()
                raise _Stopped

        try:
            generate_latents(teacher.model, clean, given, teacher.layout, sampling, generator=g, noise=noise,
                             prediction=teacher.model.config.prediction, callback=stop)
        except _Stopped:
            pass
        out["noise_video"].append(noise.video)
        out["noise_audio"].append(noise.audio)
        out["landed"].append(state["landed"])
        if whole:
            out["drawn"].append(state["drawn"])
    return {name: torch.cat(parts) for name, parts in out.items() if parts}


def ddim_x0(model, x: AV, t: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``model``'s video x0 and eps estimates at ``x``, its video cells at ``level`` (grid ``t`` (B, M, N))."""
    at = torch.tensor(level)
    eps = eps_from_v(model(x, t, None).video, x.video, at, DEFAULT_SCHEDULE)  # the head predicts v
    return predict_x0(x.video.float(), at, eps, DEFAULT_SCHEDULE), eps


def landed(model, noise: AV, level: int) -> torch.Tensor:
    """Where a DDIM step of ``model`` from level T (every cell, nothing given) lands the video at ``level``."""
    t = torch.full((noise.batch_size, M, model.config.layout.num_segments), T, dtype=torch.long)  # (B, M, N)
    x0, eps = ddim_x0(model, noise, t, T)
    return q_sample(x0, torch.tensor(level), eps, DEFAULT_SCHEDULE)  # eta 0: the same noise, at the new level


def drawn(model, pairs: dict[str, torch.Tensor], idx: torch.Tensor, level: int) -> torch.Tensor:
    """A DDIM step of ``model`` to level 0 from the teacher's video at ``level`` (the audio unseen, at T)."""
    t = torch.full((len(idx), M, model.config.layout.num_segments), T, dtype=torch.long)  # (B, M, N)
    t[:, VIDEO] = level
    return ddim_x0(model, AV(pairs["landed"][idx], pairs["noise_audio"][idx]), t, level)[0]


def fit(model, pairs: dict[str, torch.Tensor], level: int) -> tuple[float, float]:
    """Mean squared errors of ``model``'s landing against the teacher's on ``pairs``, and of its step from there
    against the teacher's video where the pairs hold it (nan where they do not)."""
    errors = [0.0, 0.0]
    with torch.no_grad():
        for i in range(0, len(pairs["landed"]), 256):
            idx = torch.arange(i, min(i + 256, len(pairs["landed"])))
            noise = AV(pairs["noise_video"][idx], pairs["noise_audio"][idx])
            errors[0] += float(((landed(model, noise, level) - pairs["landed"][idx]) ** 2).sum())
            if "drawn" in pairs:
                errors[1] += float(((drawn(model, pairs, idx, level) - pairs["drawn"][idx]) ** 2).sum())
    size = pairs["landed"].numel()
    return errors[0] / size, errors[1] / size if "drawn" in pairs else math.nan


@torch.no_grad()
def joint_clips(pipe: Pipeline, level: int, num: int) -> list[dict]:
    """``clip_measures`` of ``num`` joint clips sampled as the ``distilled`` preset does (video, audio, video, audio:
    2 passes each), but for the first run's first step, which lands at ``level`` (the preset's: 500). Noise seeds 1000
    on, as ``benchmarks/class_mix.py``."""
    model, layout = pipe.model, pipe.layout
    measures = []
    for start in range(0, num, BATCH):
        batch = min(BATCH, num - start)
        g = torch.Generator().manual_seed(1000 + start)
        zeros = pipe.codecs.encode(None, None).map(lambda p: p.expand(batch, *p.shape[1:]))
        noise = zeros.map(lambda p: torch.randn(p.shape, generator=g))  # (B, ...) each modality
        t = torch.full((batch, M, layout.num_segments), T, dtype=torch.long)  # (B, M, N)
        t[:, VIDEO] = level
        video = ddim_x0(model, AV(landed(model, noise, level), noise.audio), t, level)[0]  # the first run
        clips = AV(video, zeros.audio)
        for task in ("v2a", "a2v", "v2a"):  # the later runs
            clips = generate_latents(model, clips, get_task(task, layout.num_segments).given, layout,
                                     pipe.default_sampling,
                                     generator=g, prediction=model.config.prediction)
        video, audio = pipe.codecs.video.decode(clips.video), pipe.codecs.audio.decode(clips.audio, layout.num_samples)
        measures += [clip_measures(v, a) for v, a in zip(video.numpy(), audio.numpy())]
    return measures


def kept_pairs(run: Path) -> dict[str, torch.Tensor]:
    """The student's own pairs (``RUN/pairs``) whose grid gives something."""
    shards = [load_file(str(path)) for path in sorted((run / "pairs").glob("shard_*.safetensors"))]
    if not shards:
        raise FileNotFoundError(f"{run / 'pairs'}: no pair shards (the folder `avdit distill` made the student in)")
    pairs = {name: torch.cat([s[name] for s in shards]) for name in shards[0]}
    keep = pairs["given"].bool().flatten(1).any(1)  # (P,)
    return {name: tensor[keep] for name, tensor in pairs.items()}


def keep_loss(model, frozen, pairs: dict[str, torch.Tensor], idx: torch.Tensor, levels: torch.Tensor,
              g: torch.Generator) -> torch.Tensor:
    """Squared distance of ``model``'s output from ``frozen``'s on pairs ``idx`` at the student's levels."""
    given = pairs["given"][idx].bool()  # (B, M, N)
    level = levels[torch.randint(0, len(levels), (len(idx),), generator=g)]  # (B,)
    t = torch.where(given, 0, level.view(-1, 1, 1))  # (B, M, N)
    clean = AV(pairs["video"][idx], pairs["audio"][idx])
    x = q_sample_av(clean, model.config.layout.cells_to_latents(t), AV(pairs["noise_video"][idx],
                                                                        pairs["noise_audio"][idx]))
    with torch.no_grad():
        reference = frozen(x, t, None)
    return sum(((o.float() - r.float()) ** 2).mean() for o, r in zip(model(x, t, None), reference))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--student", required=True, help="the student's checkpoint (RUN/dmd or RUN)")
    parser.add_argument("--out", help="folder for the pairs and the fine-tuned checkpoint (not with --evaluate-only)")
    parser.add_argument("--pairs", type=int, default=40960, help="pairs to the landing level (default 40960)")
    parser.add_argument("--whole", type=int, default=16384, help="pairs to the end of the run (default 16384)")
    parser.add_argument("--held", type=int, default=2048, help="held-out pairs to the landing (default 2048)")
    parser.add_argument("--held-whole", type=int, default=1024, help="held-out whole pairs (default 1024)")
    parser.add_argument("--top", type=int, default=5, help="teacher steps before the landing (default 5 of 12)")
    parser.add_argument("--steps", type=int, default=1000, help="fine-tuning steps (default 1000)")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    parser.add_argument("--evaluate", type=int, default=0, metavar="NUM",
                        help="then NUM joint clips, the first step landing where it was taught (and only those, of "
                             "--student at --land, with --evaluate-only)")
    parser.add_argument("--evaluate-only", action="store_true", help="measure --student only; train nothing")
    parser.add_argument("--land", type=int, default=None, help="with --evaluate-only: the first step's landing level")
    parser.add_argument("--losses", default=",".join(LOSSES), help=f"the terms summed (default {','.join(LOSSES)})")
    args = parser.parse_args(argv)
    losses = set(args.losses.split(","))
    if not losses or not losses <= set(LOSSES):
        parser.error(f"--losses {args.losses!r}: give some of {', '.join(LOSSES)} joined by ','")
    student_dir = Path(args.student)
    if args.evaluate_only:
        report_clips(Pipeline.from_pretrained(student_dir, device="cpu"), args.land or 500, args.evaluate or 100)
        return 0
    if args.out is None:
        parser.error("give --out (where the pairs and the fine-tuned checkpoint go), or --evaluate-only")
    out = Path(args.out)
    run = student_dir.parent if (student_dir / "done.json").exists() else student_dir  # RUN/dmd -> RUN
    keep = kept_pairs(run)
    student = Pipeline.from_pretrained(student_dir, device="cpu")
    teacher = Pipeline.from_pretrained(None, device="cpu")
    level = int(step_levels(teacher.default_sampling.steps, teacher.default_sampling.level_spacing)[args.top])
    out.mkdir(parents=True, exist_ok=True)
    made = out / "top_pairs.pt"
    if made.exists():
        print(f"{made}: reusing the pairs made")
        sets = torch.load(made)
    else:
        sets = {"top": top_pairs(teacher, args.pairs, args.top, 0), "held": top_pairs(teacher, args.held, args.top, 1),
                "whole": top_pairs(teacher, args.whole, args.top, 10, whole=True),
                "held_whole": top_pairs(teacher, args.held_whole, args.top, 11, whole=True)}
        with atomic_path(made, ".pt") as tmp:
            torch.save(sets, tmp)
    model = student.model.train()
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    levels = ddim_levels(student.info["train"]["student_steps"])

    def report(step: int) -> None:
        model.eval()
        (land, _), (_, video) = fit(model, sets["held"], level), fit(model, sets["held_whole"], level)
        print(f"step {step}: held-out error of the landing at {level} {land:.4f}, of the video from there "
              f"{video:.4f} ({time.time() - start:.0f} s)", flush=True)
        model.train()

    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    start = time.time()
    report(0)
    for step in range(1, args.steps + 1):
        terms = []
        if "jump" in losses:
            idx = torch.randint(0, len(sets["top"]["landed"]), (BATCH,), generator=g)
            noise = AV(sets["top"]["noise_video"][idx], sets["top"]["noise_audio"][idx])
            terms.append(((landed(model, noise, level) - sets["top"]["landed"][idx]) ** 2).mean())
        if "kept" in losses:
            idx = torch.randint(0, len(keep["task"]), (BATCH // 2,), generator=g)
            terms.append(keep_loss(model, frozen, keep, idx, levels, g))
        if "video" in losses:
            idx = torch.randint(0, len(sets["whole"]["drawn"]), (BATCH // 2,), generator=g)
            terms.append(((drawn(model, sets["whole"], idx, level) - sets["whole"]["drawn"][idx]) ** 2).mean())
        optimiser.zero_grad()
        sum(terms).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in optimiser.param_groups:
            group["lr"] = args.lr * min(1.0, step / 100)  # warm-up
        optimiser.step()
        if step % 200 == 0 or step == args.steps:
            report(step)
    shutil.copy(student_dir / "model.json", out / "model.json")
    with atomic_path(out / "model.safetensors", ".safetensors") as tmp:
        save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, tmp)
    print(f"saved {out}: sample it as any student (avdit evaluate --checkpoint {out})")
    if args.evaluate:
        report_clips(Pipeline.from_pretrained(out, device="cpu"), level, args.evaluate)
    return 0


def report_clips(pipe: Pipeline, level: int, num: int) -> None:
    """Class mix, colour = pitch, one disc and onset F1 of ``joint_clips``."""
    measures = joint_clips(pipe, level, num)
    _, _, reference = held_out("bouncing-tones", 200, 0)
    colours = np.array([m["colour"] for m in measures])
    agree, one_disc = (np.mean([m[key] for m in measures]) for key in ("identity_agreement", "one_disc"))
    print(f"{num} joint clips, the first step landing at {level}: class mix {class_mix(colours, reference):.2f}, "
          f"colour = pitch {agree:.1%}, one disc {one_disc:.1%}, onset F1 "
          f"{np.nanmean([m['onset_f1'] for m in measures]):.3f}; clips of each class (no disc, then 0-7) "
          f"{np.bincount(colours + 1, minlength=9).tolist()}")


if __name__ == "__main__":
    sys.exit(main())
