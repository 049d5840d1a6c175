"""``avdit distill --dmd-steps N``: distribution matching on top of the regression student (DMD, Yin et al. 2024;
DMD2, Yin et al. 2024).

The regression student of ``avdit.train.distill`` learns the teacher's map from noise to sample; where that map is
decided (levels 875-1000) it memorises its pairs and averages elsewhere (docs/distillation.md). Distribution matching
moves the student's samples along the difference of two scores at a re-noised sample: the teacher's ("real") and a
network trained on the student's own samples ("fake"). Each step, on the student's teacher pairs:

1. the student predicts x0 from x_t on the pair's line at one of its student levels (the regression loss of
   ``avdit distill``, weighted by ``regression``, keeps it near the teacher's samples);
2. per example, one modality with generated cells is re-noised to a level tau in [20, 980]; every other cell is fed
   clean at 0: the given cells and the student's own sample of the other modality. The real score is the teacher's
   *conditional* score of that modality given the other, with its guidance (the other modality's cells replaced by
   noise at T), as generation's alternating runs use it; a MoNL grid, so no new network is needed. With
   ``scored_together`` > 0, that share of examples has every generated cell re-noised: the teacher's score given the
   task's cells only, which matches the joint distribution (conditionals alone leave the mix of classes free where
   each modality nearly fixes the other's);
3. the DMD gradient (x0_fake - x0_real), normalised per example by mean |x0 - x0_real| (DMD's weighting), moves the
   student's x0 of that modality's generated cells;
4. the fake network (started from the teacher) takes ``fake_updates`` denoising steps on the student's samples, with
   the same kind of grid (and trains alone for the first ``fake_warmup`` steps: two time-scale updates, DMD2).

With ``gan`` > 0 (DMD2's GAN term, ``avdit.train.discriminator``), a head on the fake network's features learns to tell
the student's re-noised samples from the pairs' real clips re-noised alike (weight ``gan_discriminator`` beside the
fake network's loss), and the student's loss gains ``gan`` times its generator loss; the term scores the modalities
``gan_modalities`` names, at levels below ``gan_max_level``. With ``ema_decay`` > 0 the
checkpoint written is an exponential moving average of the student's weights.

Writes RUN/dmd: a checkpoint that samples with the student's preset (``distilled``), metrics.jsonl, and state.pt,
from which a rerun resumes. Under torchrun each rank draws its own examples of ``batch_size / world`` and both
networks train data-parallel (DDP).
"""

from __future__ import annotations

import copy
import gc
import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from avdit.codecs.shards import SHARD_INDEX, open_shards
from avdit.diffusion.conditioning import DEFAULT_GUIDANCE, conditioned_denoiser
from avdit.diffusion.samplers import ddim_levels
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, q_sample_av
from avdit.latents import AV
from avdit.layout import MODALITIES, ClipLayout
from avdit.model import AVDiT
from avdit.train.discriminator import (DiscriminatorHead, discriminator_loss, features_and_output, generator_loss,
                                       scored_tokens)
from avdit.train.loop import update_ema
from avdit.train.pairs import PAIR_TENSORS
from avdit.utils import distributed
from avdit.utils.atomic import atomic_path, write_json
from avdit.utils.distributed import unwrapped
from avdit.utils.seeding import step_generator

TAU_RANGE = (20, 980)  # the re-noising levels of the score difference (DMD's [0.02 T, 0.98 T])
RESUMABLE = ("steps", "save_every")  # DMDSettings a rerun may change
GAN_STREAM = 0x5DEECE66D  # the GAN term's random stream: a step's seed with these bits flipped


@dataclass(frozen=True)
class DMDSettings:
    """The DMD stage's settings; the defaults made docs/distillation.md's DMD student (4,000 steps)."""

    steps: int = 4000
    batch_size: int = 16  # global, over ranks
    lr: float = 3e-5  # the student's
    fake_lr: float = 1e-4  # the fake score network's
    fake_updates: int = 2  # fake network steps per student step
    fake_warmup: int = 100  # first steps that train the fake network alone, on the student's samples
    regression: float = 0.25  # weight of the pair regression loss
    guidance: float = DEFAULT_GUIDANCE  # the real score's
    save_every: int = 250
    seed: int = 0
    precision: str = "bf16"  # autocast: bf16 or fp32
    gan: float = 0.0  # weight of the student's GAN loss (DMD2); 0: no GAN term
    gan_discriminator: float = 1e-2  # weight of the discriminator's loss beside the fake network's (DMD2's)
    gan_modalities: str = "video,audio"  # the modalities the GAN term scores
    gan_max_level: int = TAU_RANGE[1]  # the GAN term re-noises to levels in [TAU_RANGE[0], this)
    ema_decay: float = 0.0  # the checkpoint: an EMA of the student's weights with this decay; 0: the student's own
    # share of examples whose generated cells are re-noised and scored together: their joint distribution matched
    # (the real score given only the task's cells), not only each modality's given the other (docs/distillation.md)
    scored_together: float = 0.0

    def __post_init__(self):
        problems = [f"{name}={getattr(self, name)} must be >= {low}" for name, low in
                    (("steps", 1), ("batch_size", 1), ("fake_updates", 1), ("fake_warmup", 0), ("save_every", 1))
                    if getattr(self, name) < low]
        problems += [f"{name}={getattr(self, name)} must be > 0" for name in ("lr", "fake_lr")
                     if not getattr(self, name) > 0]
        problems += [f"{name}={getattr(self, name)} must be >= 0" for name in ("regression", "gan", "gan_discriminator")
                     if getattr(self, name) < 0]
        unknown = set(self.gan_modalities.split(",")) - set(MODALITIES)
        if unknown or not self.gan_modalities:
            problems.append(f"gan_modalities={self.gan_modalities!r}: give video, audio or video,audio")
        if not TAU_RANGE[0] < self.gan_max_level <= TAU_RANGE[1]:
            problems.append(f"gan_max_level={self.gan_max_level} must be in ({TAU_RANGE[0]}, {TAU_RANGE[1]}]")
        if not 0 <= self.scored_together <= 1:
            problems.append(f"scored_together={self.scored_together} must be in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay={self.ema_decay} must be in [0, 1)")
        if self.precision not in ("bf16", "fp32"):
            problems.append(f"precision={self.precision!r}: choose bf16 or fp32")
        if problems:
            raise ValueError("DMD settings: " + "; ".join(problems))


def local_batch(settings: DMDSettings, world: int) -> int:
    """Each of ``world`` ranks' share of the global DMD batch; a clear error where it does not split."""
    if settings.batch_size % world:
        raise ValueError(f"the DMD batch of {settings.batch_size} does not split over {world} ranks: give a multiple "
                         "(--dmd-batch-size)")
    return settings.batch_size // world


def masked_mean(values: AV, masks: AV) -> torch.Tensor:
    """Per example (B,): the mean of ``values`` over the elements where ``masks`` is true, both modalities."""
    total = sum((v * m).flatten(1).sum(1) for v, m in zip(values, masks))
    count = sum(m.expand_as(v).flatten(1).sum(1) for v, m in zip(values, masks))
    return total / count.clamp(min=1)


def draw(pairs, levels: torch.Tensor, batch: int, g: torch.Generator):
    """A batch of pairs: x* (given cells: the clip's latents), z, the grid (B, M, N), the student's level grid and
    the pairs' indices (B,)."""
    idx = torch.randint(0, len(pairs), (batch,), generator=g)
    video, audio, noise_video, noise_audio, given, _ = pairs.take_named(idx, PAIR_TENSORS)
    given = given.bool()  # (B, M, N)
    level = levels[torch.randint(0, len(levels), (batch,), generator=g)]  # (B,)
    t = torch.where(given, 0, level.view(-1, 1, 1))  # (B, M, N)
    return AV(video.float(), audio.float()), AV(noise_video.float(), noise_audio.float()), given, t, idx


def real_clips(index: dict, pairs_folder: Path):
    """The latents the pairs were made from (pair i is made from clip i modulo their number,
    ``avdit.train.pairs``): the GAN term's real data."""
    data = Path(index.get("data", ""))
    if not (data / SHARD_INDEX).is_file():
        raise FileNotFoundError(f"the GAN term (gan > 0) reads the clips the pairs of {pairs_folder} were made from, "
                                f"{data}, and finds none there: encode them again to that path, or set gan=0")
    clips, _ = open_shards(data)
    return clips


def gan_weights(scored: torch.Tensor, modalities: str) -> torch.Tensor:
    """(B,) 1 where an example's scored modality is among ``modalities`` (the GAN term's), else 0."""
    allowed = torch.tensor([name in modalities.split(",") for name in MODALITIES], device=scored.device)  # (M,)
    return (scored.any(2) & allowed).any(1).float()


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The mean of (B,) ``values`` weighted by (B,) ``weights``; 0 where every weight is 0."""
    return (values * weights).sum() / weights.sum().clamp(min=1)


def scored_grid(given: torch.Tensor, g: torch.Generator, together: float = 0.0) -> torch.Tensor:
    """(B, M, N) bool: per example, the generated cells of one modality (drawn among those with any), or with
    probability ``together`` every generated cell (no draw is made for it where ``together`` is 0)."""
    generated = ~given  # (B, M, N)
    has = generated.any(2).float()  # (B, M)
    modality = torch.multinomial(has, 1, generator=g).squeeze(1)  # (B,)
    pick = torch.nn.functional.one_hot(modality, given.shape[1]).bool()  # (B, M)
    if together > 0:
        pick |= (torch.rand(given.shape[0], generator=g) < together)[:, None]
    return generated & pick[:, :, None]


def renoise(x0: AV, scored: torch.Tensor, layout: ClipLayout, g: torch.Generator, top: int = TAU_RANGE[1]):
    """x0 with the ``scored`` cells noised to one level tau in [TAU_RANGE[0], ``top``) per example (noise drawn on
    the CPU); the level grid (0 elsewhere) and the noise."""
    tau = torch.randint(TAU_RANGE[0], top, (scored.shape[0],), generator=g).to(scored.device)  # (B,)
    t = torch.where(scored, tau.view(-1, 1, 1), 0)  # (B, M, N)
    noise = x0.map(lambda p: torch.randn(p.shape, generator=g).to(p.device))
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


def dmd_target(sample: AV, x0_real: AV, x0_fake: AV, scored_elements: AV) -> AV:
    """Where DMD moves the student's x0: ``sample`` - (x0_fake - x0_real) / s, s per example the mean |sample -
    x0_real| over the scored elements (Yin et al. 2024, Eq. 8). Where the fake score is the real one, the sample
    itself: nothing moves."""
    scale = masked_mean(sample.map(lambda a, b: (a - b).abs(), x0_real), scored_elements).clamp(min=1e-3)  # (B,)
    return sample.map(lambda s, f, r: s - (f - r) / scale.view(-1, *[1] * (f.dim() - 1)), x0_fake, x0_real)


@contextmanager
def frozen(net: torch.nn.Module):
    """``net``'s parameters take no gradient inside (gradients still flow through it to its inputs)."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield net
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def dmd_finetune(run_dir: str | Path, settings: DMDSettings = DMDSettings(), device: str | None = None,
                 progress: bool = True, teacher: str | Path | None = None) -> dict:
    """The DMD stage of ``avdit distill`` on the student in ``run_dir`` (its checkpoint and RUN/pairs), into
    RUN/dmd; ``teacher``: the real score (default: the checkpoint the student was distilled from). A rerun resumes
    from RUN/dmd/state.pt. Returns the last step's figures."""
    run_dir = Path(run_dir)
    if not (run_dir / "pairs").is_dir() or not (run_dir / "model.json").is_file():
        raise FileNotFoundError(f"{run_dir} holds no student of `avdit distill` (its checkpoint and pairs/): run "
                                "`avdit distill` without --dmd-steps first, or give its --out")
    info = AVDiT.load_info(run_dir)
    if info.get("model", {}).get("prediction") != "v":
        raise ValueError(f"{run_dir}: DMD here takes a student with a v head (the bundled model's); this one "
                         f"predicts {info.get('model', {}).get('prediction')!r}")
    teacher = Path(teacher or info["train"]["init"])
    d = distributed.init(device)
    batch = local_batch(settings, d.world)
    pairs, index = open_shards(run_dir / "pairs")
    layout = ClipLayout.from_dict(index["layout"])
    levels = ddim_levels(info["train"]["student_steps"])
    real = AVDiT.from_pretrained(teacher).to(d.device).eval().requires_grad_(False)
    student = AVDiT.from_pretrained(run_dir).to(d.device).train()
    fake = AVDiT.from_pretrained(teacher).to(d.device).train()
    head = DiscriminatorHead(fake.config.width).to(d.device).train()  # trained (and saved) only where gan > 0
    clips = real_clips(index, run_dir / "pairs") if settings.gan > 0 else None
    ema = copy.deepcopy(student).requires_grad_(False) if settings.ema_decay > 0 else None
    opt = torch.optim.AdamW(student.parameters(), lr=settings.lr, weight_decay=0.0, betas=(0.0, 0.999))
    fake_opt = torch.optim.AdamW(fake.parameters(), lr=settings.fake_lr, weight_decay=0.0, betas=(0.0, 0.999))
    head_opt = torch.optim.AdamW(head.parameters(), lr=settings.fake_lr, weight_decay=0.0, betas=(0.0, 0.999))
    out = run_dir / "dmd"
    out.mkdir(parents=True, exist_ok=True)
    state_path, start = out / "state.pt", 0
    if state_path.exists():
        state = torch.load(state_path, map_location=d.device, weights_only=True)
        made = {**asdict(DMDSettings()), **state.get("settings", {})}  # a stage from before a setting: its default
        changed = {k: (made[k], v) for k, v in asdict(settings).items() if k not in RESUMABLE and made[k] != v}
        if changed:
            raise ValueError(f"{out} holds a DMD stage made with other settings ("
                             + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in changed.items())
                             + "): rerun with the same settings (--dmd-steps may grow), or distil into a new --out")
        for module, key in ((student, "student"), (fake, "fake"), (opt, "opt"), (fake_opt, "fake_opt"),
                            (head, "head"), (head_opt, "head_opt"), (ema, "ema")):
            if module is not None and key in state:
                module.load_state_dict(state[key])
        start = state["step"]
        if d.main:
            print(f"dmd: resuming from step {start} of {settings.steps}", flush=True)
    if d.group:
        ids = [d.local_rank] if d.device.type == "cuda" else None
        student, fake = (DistributedDataParallel(n, device_ids=ids) for n in (student, fake))
        if clips is not None:
            head = DistributedDataParallel(head, device_ids=ids)
    autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16")
    metrics_path = out / "metrics.jsonl"
    kept = [line for line in (metrics_path.read_text().splitlines() if metrics_path.exists() else [])
            if json.loads(line)["step"] <= start]  # lines after the last save are made again
    metrics = None
    if d.main:
        metrics_path.write_text("".join(line + "\n" for line in kept))
        metrics = metrics_path.open("a")

    def to_device(x: AV) -> AV:
        return x.map(lambda p: p.to(d.device))

    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, desc="dmd",
               disable=not (progress and d.main))
    began, figures = time.perf_counter(), {}
    for step in bar:
        g = step_generator(settings.seed, step, stream=d.rank)  # each rank its own examples
        # the GAN term's random stream, apart from g's draws
        gan_g = torch.Generator().manual_seed(g.initial_seed() ^ GAN_STREAM) if clips is not None else None
        x_star, z, given, t, idx = draw(pairs, levels, batch, g)
        x_star, z, given, t = to_device(x_star), to_device(z), given.to(d.device), t.to(d.device)
        t_elements = layout.cells_to_latents(t)
        generated = layout.cells_to_latents(~given).map(lambda m: m.float())  # (B, ...) 1 on generated elements
        # 1. the student's x0 from x_t on the pair's line, and the regression loss (the v MSE, as distill trains)
        x_t = q_sample_av(x_star, t_elements, z, DEFAULT_SCHEDULE)
        train_student = step >= settings.fake_warmup  # before: the fake network first learns the student's samples
        with autocast, torch.set_grad_enabled(train_student):
            v = (student if train_student else unwrapped(student))(x_t, t, None)
        x0 = x0_from_v(x_t, t_elements, v)
        x0 = x0.map(lambda p, clip, m: torch.where(m.bool(), p, clip), x_star, generated)  # given cells: the clip's
        sample = x0.map(torch.Tensor.detach)
        regression = masked_mean(v.map(lambda p, v_true: (p.float() - v_true) ** 2,
                                       v_target(x_star, z, t_elements)), generated)
        dmd, gen, grad_norm = torch.zeros(1, device=d.device), torch.zeros((), device=d.device), 0.0
        if train_student:
            # 2. the score difference at a re-noised sample: one modality's generated cells at tau, the rest clean
            scored = scored_grid(given.cpu(), g, settings.scored_together).to(d.device)  # (B, M, N)
            scored_elements = layout.cells_to_latents(scored).map(lambda m: m.float())
            x_tau, t_tau, _ = renoise(sample, scored, layout, g)
            tau_elements = layout.cells_to_latents(t_tau)
            with torch.no_grad(), autocast:  # guidance combines v as it combines eps: the scored cells' x and t agree
                v_real = conditioned_denoiser(real, ~scored, sample, layout, guidance=settings.guidance,
                                              generator=g)(x_tau, t_tau, None)
                v_fake = unwrapped(fake)(x_tau, t_tau, None)
            # 3. DMD: move x0 towards the sample moved along (real - fake)
            target = dmd_target(sample, x0_from_v(x_tau, tau_elements, v_real),
                                x0_from_v(x_tau, tau_elements, v_fake), scored_elements)
            dmd = masked_mean(x0.map(lambda p, tg: 0.5 * (p - tg) ** 2, target), scored_elements)
            loss = dmd.mean() + settings.regression * regression.mean()
            if clips is not None:  # DMD2's GAN term: the student's sample, re-noised, taken for real; as DMD's,
                # it moves the scored cells only (the other cells: the sample, detached)
                x_scored = x0.map(lambda p, s, m: torch.where(m.bool(), p, s), sample, scored_elements)
                x_gen, t_gen, _ = renoise(x_scored, scored, layout, gan_g, settings.gan_max_level)
                with autocast, frozen(unwrapped(fake)), frozen(unwrapped(head)):
                    tokens, _ = features_and_output(unwrapped(fake), x_gen, t_gen)
                    logits = unwrapped(head)(tokens, scored_tokens(unwrapped(fake), scored))  # (B,)
                gen = weighted_mean(generator_loss(logits), gan_weights(scored, settings.gan_modalities))
                loss = loss + settings.gan * gen
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0))
            opt.step()
            if ema is not None:
                update_ema(ema, unwrapped(student), min(settings.ema_decay, (1 + step) / (10 + step)))
        # 4. the fake network learns the student's samples (a fresh tau and grid), with the v MSE; with the GAN term,
        # in its first update its head also learns to tell them from the real clips re-noised alike
        disc = torch.zeros((), device=d.device)
        for update in range(settings.fake_updates):
            fake_scored = scored_grid(given.cpu(), g, settings.scored_together).to(d.device)
            x_f, t_f, noise_f = renoise(sample, fake_scored, layout, g)
            discriminate = clips is not None and update == 0
            if discriminate:  # the student's samples and the real clips, re-noised alike, ride in the same batch
                # (one forward under DDP): (3B, ...)
                x_g, t_g, noise_g = renoise(sample, fake_scored, layout, gan_g, settings.gan_max_level)
                clip = to_device(clips.take(idx % len(clips)).map(torch.Tensor.float))
                x_r = q_sample_av(clip, layout.cells_to_latents(t_g), noise_g, DEFAULT_SCHEDULE)
                x_f, t_f = x_f.map(lambda a, b, c: torch.cat([a, b, c]), x_g, x_r), torch.cat([t_f, t_g, t_g])
            with autocast:
                tokens, v_f = features_and_output(fake, x_f, t_f)
            if discriminate:
                mask = scored_tokens(unwrapped(fake), fake_scored).repeat(2, 1)  # (2B, L)
                with autocast:
                    fake_logits, real_logits = head(tokens[batch:], mask).chunk(2)
                disc = weighted_mean(discriminator_loss(real_logits, fake_logits),
                                     gan_weights(fake_scored, settings.gan_modalities))
                v_f, t_f = v_f.map(lambda p: p[:batch]), t_f[:batch]
            fake_loss = masked_mean(v_f.map(lambda p, v_true: (p.float() - v_true) ** 2,
                                            v_target(sample, noise_f, layout.cells_to_latents(t_f))),
                                    layout.cells_to_latents(fake_scored).map(lambda m: m.float())).mean()
            loss_f = fake_loss + settings.gan_discriminator * disc if discriminate else fake_loss
            fake_opt.zero_grad(set_to_none=True)
            head_opt.zero_grad(set_to_none=True)
            loss_f.backward()
            torch.nn.utils.clip_grad_norm_(fake.parameters(), 1.0)
            fake_opt.step()
            if discriminate:
                torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
                head_opt.step()
        losses = torch.stack([dmd.mean().detach(), regression.mean().detach(), fake_loss.detach(),
                              gen.detach(), disc.detach()]).float()
        losses = distributed.all_mean(d, losses)
        figures = {"step": step + 1, "dmd": float(losses[0]), "regression": float(losses[1]),
                   "fake": float(losses[2]), "grad_norm": grad_norm, "s": time.perf_counter() - began}
        if clips is not None:
            figures.update(generator=float(losses[3]), discriminator=float(losses[4]))
        if not all(math.isfinite(value) for value in figures.values()):
            raise FloatingPointError(f"dmd: a loss became {figures} at step {step + 1}; stopped without saving "
                                     "(the last checkpoint stands: lower --dmd-lr)")
        if d.main:
            metrics.write(json.dumps(figures) + "\n")
            metrics.flush()
            bar.set_postfix(dmd=f"{figures['dmd']:.4f}", reg=f"{figures['regression']:.3f}",
                            fake=f"{figures['fake']:.3f}")
        if (step + 1) % settings.save_every == 0 or step + 1 == settings.steps:
            if d.main:
                published = ema if ema is not None else unwrapped(student)
                published.save_pretrained(out, {**info, "dmd": asdict(settings), "dmd_step": step + 1,
                                                "dmd_teacher": str(teacher)})
                extra = {}
                if clips is not None:
                    extra.update(head=unwrapped(head).state_dict(), head_opt=head_opt.state_dict())
                if ema is not None:
                    extra["ema"] = ema.state_dict()
                with atomic_path(state_path, ".pt") as tmp:
                    torch.save({"student": unwrapped(student).state_dict(), "fake": unwrapped(fake).state_dict(),
                                "opt": opt.state_dict(), "fake_opt": fake_opt.state_dict(), "step": step + 1,
                                "settings": asdict(settings), **extra}, tmp)
            distributed.barrier(d)
    if d.main:
        metrics.close()
        write_json(out / "done.json", {"steps": settings.steps})
    student = fake = head = None  # the DDP wrappers go before the group (see avdit.train.loop.train)
    gc.collect()
    distributed.barrier(d)
    distributed.shutdown(d)
    return figures
