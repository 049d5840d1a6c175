"""Does distribution matching lift a regression student? A DMD fine-tune of an `avdit distill` student, measured.

    python benchmarks/dmd_student.py --student runs/distill/student --out runs/distill/dmd [--steps 4000]
        [--batch-size 16] [--lr 3e-5] [--fake-lr 1e-4] [--fake-updates 2] [--fake-warmup 100] [--regression 0.25]
    avdit evaluate --checkpoint runs/distill/dmd --num 200 --out runs/distill/dmd_eval

The regression student of `avdit distill` learns the teacher's map from noise to sample; where that map is decided
(levels 875-1000) it memorises its pairs and averages elsewhere, and its joint clips keep colour = pitch in 67 % of
clips (docs/distillation.md). Distribution matching (DMD, Yin et al. 2024; DMD2 2024) instead moves the student's
samples along the difference of two scores at a re-noised sample: the teacher's ("real") and a network trained on the
student's own samples ("fake"). Each step, on the student's teacher pairs:

1. the student predicts x0 from x_t on the pair's line at one of its student levels (the regression loss of
   `avdit distill`, weighted by ``--regression``, keeps it near the teacher's samples);
2. per example, one modality with generated cells is re-noised to a level tau in [20, 980]; **every other cell is
   fed clean at 0**: the given cells, and the student's own sample of the other modality. The real score is then the
   teacher's *conditional* score of that modality given the other, with its guidance (the other modality's cells
   replaced by noise at T), as generation's alternating runs use it; this is a MoNL grid, so no new network is
   needed. Matching both conditionals is what the teacher's alternating runs (blocked Gibbs sweeps) approach;
   matching its joint score alone would aim at its one-run samples (joint 67 %, docs/studies.md).
3. the DMD gradient (x0_fake - x0_real), normalised per example by mean |x0 - x0_real| (DMD's weighting), moves the
   student's x0 of that modality's generated cells;
4. the fake network (started from the teacher) takes ``--fake-updates`` denoising steps on the student's samples,
   with the same kind of grid (and trains alone for the first ``--fake-warmup`` steps).

Writes a checkpoint in OUT that `avdit generate` / `avdit evaluate` sample with the student's preset (``distilled``:
DDIM, video and audio in turns, guidance 0), and OUT/metrics.jsonl. A rerun resumes from OUT/state.pt.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from avdit.codecs.shards import open_shards
from avdit.diffusion.conditioning import DEFAULT_GUIDANCE, conditioned_denoiser
from avdit.diffusion.samplers import ddim_levels
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, q_sample_av
from avdit.latents import AV
from avdit.layout import ClipLayout
from avdit.model import AVDiT
from avdit.train.pairs import PAIR_TENSORS
from avdit.utils.atomic import atomic_path, write_json
from avdit.utils.seeding import step_generator

TAU_RANGE = (20, 980)  # the re-noising levels of the score difference (DMD's [0.02 T, 0.98 T])


def masked_mean(values: AV, masks: AV) -> torch.Tensor:
    """Per example (B,): the mean of ``values`` over the elements where ``masks`` is true, both modalities."""
    total = sum((v * m).flatten(1).sum(1) for v, m in zip(values, masks))
    count = sum(m.expand_as(v).flatten(1).sum(1) for v, m in zip(values, masks))
    return total / count.clamp(min=1)


def draw(pairs, levels: torch.Tensor, batch: int, g: torch.Generator):
    """A batch of pairs: x* (given cells: the clip's latents), z, the grid (B, M, N) and the student's level grid."""
    idx = torch.randint(0, len(pairs), (batch,), generator=g)
    video, audio, noise_video, noise_audio, given, task = pairs.take_named(idx, PAIR_TENSORS)
    given = given.bool()  # (B, M, N)
    level = levels[torch.randint(0, len(levels), (batch,), generator=g)]  # (B,)
    t = torch.where(given, 0, level.view(-1, 1, 1))  # (B, M, N)
    return AV(video, audio), AV(noise_video, noise_audio), given, t, task


def scored_grid(given: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(B, M, N) bool: per example, the generated cells of one modality (drawn among those with any)."""
    generated = ~given  # (B, M, N)
    has = generated.any(2).float()  # (B, M)
    modality = torch.multinomial(has, 1, generator=g).squeeze(1)  # (B,)
    pick = torch.nn.functional.one_hot(modality, given.shape[1]).bool()  # (B, M)
    return generated & pick[:, :, None]


def renoise(x0: AV, scored: torch.Tensor, layout: ClipLayout, g: torch.Generator):
    """x0 with the ``scored`` cells noised to one level tau per example; the level grid (0 elsewhere)."""
    tau = torch.randint(*TAU_RANGE, (scored.shape[0],), generator=g)  # (B,)
    t = torch.where(scored, tau.view(-1, 1, 1), 0)  # (B, M, N)
    noise = x0.map(lambda p: torch.randn(p.shape, generator=g))
    return q_sample_av(x0, layout.cells_to_latents(t), noise, DEFAULT_SCHEDULE), t, noise


def x0_from_v(x_t: AV, t: AV, v: AV) -> AV:
    """x0 = sqrt(a_t) x_t - sqrt(1 - a_t) v (elements at t = 0: x_t), in fp32; well conditioned at every level."""
    def one(x, level, vel):
        a = DEFAULT_SCHEDULE.alpha_bar(level)
        return torch.where(level == 0, x, a.sqrt() * x - (1 - a).sqrt() * vel.float())
    return x_t.map(one, t, v)


def v_target(x0: AV, noise: AV, t: AV) -> AV:
    """v = sqrt(a_t) eps - sqrt(1 - a_t) x0 (Salimans & Ho 2022): what a v head predicts."""
    return x0.map(lambda x, n, level: DEFAULT_SCHEDULE.alpha_bar(level).sqrt() * n
                  - (1 - DEFAULT_SCHEDULE.alpha_bar(level)).sqrt() * x, noise, t)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", required=True, help="an `avdit distill` run: its checkpoint and RUN/pairs")
    parser.add_argument("--teacher", default=None, help="the teacher checkpoint (default: the student's init)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-5, help="the student's learning rate")
    parser.add_argument("--fake-lr", type=float, default=1e-4, help="the fake score network's learning rate")
    parser.add_argument("--fake-updates", type=int, default=2, help="fake network steps per student step (TTUR)")
    parser.add_argument("--fake-warmup", type=int, default=100,
                        help="first steps that train the fake network alone, on the student's samples")
    parser.add_argument("--regression", type=float, default=0.25, help="weight of the pair regression loss")
    parser.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="the real score's guidance")
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    student_dir, out = Path(args.student), Path(args.out)
    if not (student_dir / "pairs").is_dir() or not (student_dir / "model.json").is_file():
        raise SystemExit(f"{student_dir} is not an `avdit distill` run (its checkpoint and pairs/): make one first")
    info = AVDiT.load_info(student_dir)
    teacher_dir = args.teacher or info["train"]["init"]
    pairs, index = open_shards(student_dir / "pairs")
    layout = ClipLayout.from_dict(index["layout"])
    levels = ddim_levels(info["train"]["student_steps"])
    if info["model"]["prediction"] != "v":
        raise SystemExit(f"{student_dir}: this study takes a v-prediction student (the bundled model's head)")
    teacher = AVDiT.from_pretrained(teacher_dir).requires_grad_(False)
    student = AVDiT.from_pretrained(student_dir).train()
    fake = AVDiT.from_pretrained(teacher_dir).train()
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.0, 0.999))
    fake_opt = torch.optim.AdamW(fake.parameters(), lr=args.fake_lr, weight_decay=0.0, betas=(0.0, 0.999))
    out.mkdir(parents=True, exist_ok=True)
    state_path, start = out / "state.pt", 0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        for module, key in ((student, "student"), (fake, "fake"), (opt, "opt"), (fake_opt, "fake_opt")):
            module.load_state_dict(state[key])
        start = state["step"]
        print(f"dmd: resuming at step {start}", flush=True)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    metrics_path = out / "metrics.jsonl"
    kept = [line for line in (metrics_path.read_text().splitlines() if metrics_path.exists() else [])
            if json.loads(line)["step"] <= start]  # lines after the last save are made again
    metrics_path.write_text("".join(line + "\n" for line in kept))
    metrics = metrics_path.open("a")
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="dmd")
    began = time.perf_counter()
    for step in bar:
        g = step_generator(args.seed, step)
        x_star, z, given, t, _ = draw(pairs, levels, args.batch_size, g)
        t_elements = layout.cells_to_latents(t)
        generated = layout.cells_to_latents(~given).map(lambda m: m.float())  # (B, ...) 1 on generated elements
        # 1. the student's x0 from x_t on the pair's line, and the regression loss (the v MSE, as distill trains)
        x_t = q_sample_av(x_star, t_elements, z, DEFAULT_SCHEDULE)
        train_student = step >= args.fake_warmup  # before: the fake network first learns the student's samples
        with autocast, torch.set_grad_enabled(train_student):
            v = student(x_t, t, None)
        x0 = x0_from_v(x_t, t_elements, v)
        x0 = x0.map(lambda p, clip, m: torch.where(m.bool(), p, clip), x_star, generated)  # given cells: the clip's
        sample = x0.map(torch.Tensor.detach)
        regression = masked_mean(v.map(lambda p, v_true: (p.float() - v_true) ** 2,
                                       v_target(x_star, z, t_elements)), generated)
        dmd = torch.zeros(1)
        grad_norm = 0.0
        if train_student:
            # 2. the score difference at a re-noised sample: one modality's generated cells at tau, the rest clean
            scored = scored_grid(given, g)  # (B, M, N)
            scored_elements = layout.cells_to_latents(scored).map(lambda m: m.float())
            x_tau, t_tau, _ = renoise(sample, scored, layout, g)
            tau_elements = layout.cells_to_latents(t_tau)
            with torch.no_grad(), autocast:  # guidance combines v as it combines eps: the scored cells' x and t agree
                v_real = conditioned_denoiser(teacher, ~scored, sample, layout, guidance=args.guidance,
                                              generator=g)(x_tau, t_tau, None)
                v_fake = fake(x_tau, t_tau, None)
            x0_real, x0_fake = x0_from_v(x_tau, tau_elements, v_real), x0_from_v(x_tau, tau_elements, v_fake)
            # 3. DMD: move x0 along (fake - real), normalised per example by |x0 - real| (Yin et al. 2024, Eq. 8)
            scale = masked_mean(sample.map(lambda a, b: (a - b).abs(), x0_real), scored_elements).clamp(min=1e-3)
            step_dir = x0_fake.map(lambda f, r, s=scale: (f - r) / s.view(-1, *[1] * (f.dim() - 1)), x0_real)
            target = x0.map(lambda p, d: (p - d).detach(), step_dir)
            dmd = masked_mean(x0.map(lambda p, tg: 0.5 * (p - tg) ** 2, target), scored_elements)
            loss = dmd.mean() + args.regression * regression.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0))
            opt.step()
        # 4. the fake network learns the student's samples (a fresh tau and grid), with the v MSE
        for _ in range(args.fake_updates):
            fake_scored = scored_grid(given, g)
            x_f, t_f, noise_f = renoise(sample, fake_scored, layout, g)
            with autocast:
                v_f = fake(x_f, t_f, None)
            fake_loss = masked_mean(v_f.map(lambda p, v_true: (p.float() - v_true) ** 2,
                                            v_target(sample, noise_f, layout.cells_to_latents(t_f))),
                                    layout.cells_to_latents(fake_scored).map(lambda m: m.float())).mean()
            fake_opt.zero_grad(set_to_none=True)
            fake_loss.backward()
            torch.nn.utils.clip_grad_norm_(fake.parameters(), 1.0)
            fake_opt.step()
        figures = {"step": step + 1, "dmd": float(dmd.mean()), "regression": float(regression.mean()),
                   "fake": float(fake_loss), "grad_norm": grad_norm, "s": time.perf_counter() - began}
        if not all(math.isfinite(value) for value in figures.values()):
            raise SystemExit(f"dmd: a loss became {figures} at step {step}; stopped without saving")
        metrics.write(json.dumps(figures) + "\n")
        metrics.flush()
        bar.set_postfix(dmd=f"{figures['dmd']:.4f}", reg=f"{figures['regression']:.3f}",
                        fake=f"{figures['fake']:.3f}")
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
            student.save_pretrained(out, {**info, "dmd": vars(args), "dmd_step": step + 1})
            with atomic_path(state_path, ".pt") as tmp:
                torch.save({"student": student.state_dict(), "fake": fake.state_dict(), "opt": opt.state_dict(),
                            "fake_opt": fake_opt.state_dict(), "step": step + 1}, tmp)
    write_json(out / "done.json", {"steps": args.steps})
    return 0


if __name__ == "__main__":
    sys.exit(main())
