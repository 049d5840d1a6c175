"""``avdit train`` (MoNL training, rerun to resume, under torchrun too) and ``avdit export``."""

from __future__ import annotations

import argparse
import sys

from avdit.cli.common import DEVICE_HELP, given


def _train(args: argparse.Namespace) -> int:
    from avdit.train.config import TrainConfig
    from avdit.train.loop import TrainingError, train

    config = TrainConfig.from_recipe(args.recipe, **given(args, TrainConfig.fields()))
    try:
        last = train(config, args.out, device=args.device)
    except TrainingError as err:
        print(f"avdit train: {err}", file=sys.stderr)
        return 3
    if last:
        print(f"step {last['step']}: loss {last['loss']:.4f}; checkpoint in {args.out}")
    return 0


def _distill(args: argparse.Namespace) -> int:
    from avdit.train.config import TrainConfig
    from avdit.train.distill import distill
    from avdit.train.dmd import DMDSettings
    from avdit.train.loop import TrainingError
    from avdit.train.pairs import PairSettings

    pairs = PairSettings(**given(args, PairSettings.__dataclass_fields__.keys()))
    training = given(args, TrainConfig.fields() - {"data", "seed"})
    dmd = None
    # the DMD flags' dests are "dmd.FIELD" of DMDSettings; seed and precision are distill's own, shared with it
    chosen = {name[4:]: value for name, value in vars(args).items() if name.startswith("dmd.") and value is not None}
    if chosen.get("steps"):
        shared = {name: getattr(args, name) for name in ("seed", "precision") if getattr(args, name) is not None}
        try:
            dmd = DMDSettings(**chosen, **shared)
        except ValueError as err:
            print(f"avdit distill: {err}", file=sys.stderr)
            return 2
    try:
        last = distill(pairs, args.out, device=args.device, dmd=dmd, **training)
    except (TrainingError, FloatingPointError) as err:
        print(f"avdit distill: {err}", file=sys.stderr)
        return 3
    if dmd is not None:
        where = f"{args.out}/dmd"
        if last:
            print(f"dmd step {last['step']}: dmd {last['dmd']:.4f}, regression {last['regression']:.4f}", end="; ")
        print(f"the DMD student is in {where} (it samples with the 'distilled' preset: --checkpoint {where}); the "
              f"regression student it started from is in {args.out}")
    elif last:
        print(f"step {last['step']}: loss {last['loss']:.4f}; the student is in {args.out} (it samples with the "
              f"'distilled' preset: --checkpoint {args.out})")
    return 0



def _add_distill(sub: argparse._SubParsersAction) -> None:
    from avdit.diffusion.sampling import SamplingConfig
    from avdit.train.distill import DEFAULT_TRAINING
    from avdit.train.dmd import DMDSettings
    from avdit.train.pairs import PairSettings

    p = PairSettings("", "")  # every default below is the library's
    t = DEFAULT_TRAINING
    distill = sub.add_parser("distill", help="distil a checkpoint into a student that samples any task in a few "
                                             "network passes (rerun to resume; works under torchrun)")
    distill.add_argument("--teacher", required=True, help="the checkpoint to distil (e.g. avdit/assets/model)")
    distill.add_argument("--data", required=True,
                         help="latents from `avdit encode` (made with the teacher's codecs): the given cells of the "
                              "conditional tasks")
    distill.add_argument("--out", required=True, help="run folder: pairs/ (the teacher's samples), then the student")
    distill.add_argument("--pairs", type=int, help=f"teacher samples to make (default {p.pairs}; may grow on a rerun: "
                                                   "the pairs made are kept)")
    distill.add_argument("--tasks", help=f"the task grids of the pairs and their shares: presets, 'cells' for "
                                         f"random grids and 'turns' for the grids a student's turns run on "
                                         f"(default {p.tasks})")
    distill.add_argument("--teacher-sampling", choices=list(SamplingConfig.PRESETS),
                         help=f"the teacher's sampling preset (default {p.teacher_sampling})")
    distill.add_argument("--chunk", type=int, help=f"pairs per shard, one task grid each (default {p.chunk})")
    distill.add_argument("--student-steps", help=f"the sampler step counts whose levels the student learns "
                                                 f"(default {t['student_steps']})")
    distill.add_argument("--steps", type=int, help=f"optimizer steps (default {t['steps']}; may grow on resume)")
    distill.add_argument("--batch-size", type=int, help=f"global batch (default {t['batch_size']})")
    distill.add_argument("--lr", type=float, help=f"peak learning rate (default {t['lr']:g})")
    distill.add_argument("--warmup", type=int, help=f"linear warm-up steps (default {t['warmup']})")
    distill.add_argument("--ema-decay", type=float, help=f"EMA decay (default {t['ema_decay']})")
    distill.add_argument("--precision", choices=["bf16", "fp32"], help="autocast precision (default bf16)")
    distill.add_argument("--compile", action="store_true", default=None, help="torch.compile the student")
    distill.add_argument("--fsdp", action="store_true", default=None, help="under torchrun: shard with FSDP2")
    distill.add_argument("--seed", type=int, help=f"seed of the pairs and of the training (default {p.seed})")
    distill.add_argument("--checkpoint-every", type=int,
                         help=f"checkpoint every N steps (default {t['checkpoint_every']})")
    distill.add_argument("--device", default=None, help=DEVICE_HELP)
    m = DMDSettings()
    dmd = distill.add_argument_group("distribution matching (DMD), after the student: into OUT/dmd, resumable")
    dmd.add_argument("--dmd-steps", type=int, dest="dmd.steps", metavar="N",
                     help=f"steps of the DMD stage (default: none; docs/distillation.md's DMD student took {m.steps})")
    dmd.add_argument("--dmd-batch-size", type=int, dest="dmd.batch_size", metavar="N",
                     help=f"global batch of the DMD stage (default {m.batch_size})")
    dmd.add_argument("--dmd-lr", type=float, dest="dmd.lr", metavar="LR",
                     help=f"the student's learning rate there (default {m.lr:g})")
    dmd.add_argument("--fake-lr", type=float, dest="dmd.fake_lr", metavar="LR",
                     help=f"the fake score network's learning rate (default {m.fake_lr:g})")
    dmd.add_argument("--fake-updates", type=int, dest="dmd.fake_updates", metavar="N",
                     help=f"fake network steps per student step (default {m.fake_updates})")
    dmd.add_argument("--fake-warmup", type=int, dest="dmd.fake_warmup", metavar="N",
                     help=f"first steps that train the fake network alone (default {m.fake_warmup})")
    dmd.add_argument("--dmd-regression", type=float, dest="dmd.regression", metavar="W",
                     help=f"weight of the pair regression loss beside DMD's (default {m.regression:g})")
    dmd.add_argument("--dmd-guidance", type=float, dest="dmd.guidance", metavar="W",
                     help=f"guidance of the teacher's (real) score on the given modality (default {m.guidance:g}, as "
                          "generation's; docs/distillation.md measures 2 and 3)")
    dmd.add_argument("--dmd-together", type=float, dest="dmd.scored_together", metavar="P",
                     help="share of examples whose generated cells are all scored together, matching the joint "
                          f"distribution as well as each modality's given the other (default {m.scored_together:g})")
    dmd.add_argument("--dmd-gan", type=float, dest="dmd.gan", metavar="W",
                     help="weight of DMD2's GAN term: a head on the fake network tells the student's samples from the "
                          f"clips the pairs were made from (default {m.gan:g}: none)")
    dmd.add_argument("--dmd-gan-modalities", dest="dmd.gan_modalities", metavar="LIST",
                     help=f"the modalities the GAN term scores (default {m.gan_modalities})")
    dmd.add_argument("--dmd-gan-max-level", type=int, dest="dmd.gan_max_level", metavar="T",
                     help=f"the GAN term re-noises to levels below T (default {m.gan_max_level}: as DMD)")
    dmd.add_argument("--dmd-ema", type=float, dest="dmd.ema_decay", metavar="DECAY",
                     help=f"write an EMA of the student's weights with this decay (default {m.ema_decay:g}: the "
                          "student's own)")
    distill.set_defaults(func=_distill)


def _export(args: argparse.Namespace) -> int:
    from avdit.pipeline import export_checkpoint

    out = export_checkpoint(args.run, args.out, half=not args.fp32, merge=args.merge)
    print(f"{out}: model.safetensors ({'fp32' if args.fp32 else 'fp16'}) + model.json; use it with --checkpoint {out}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from avdit.model import PRESETS
    from avdit.model.config import OVERRIDABLE
    from avdit.train.config import RECIPES, TrainConfig

    d = TrainConfig()  # every default below is TrainConfig's; a --recipe replaces them, a flag replaces both
    train = sub.add_parser("train", help="train AVDiT with a mixture of noise levels (rerun the command to resume; "
                                         "works under torchrun)")
    train.add_argument("--recipe", choices=list(RECIPES), default=None,
                       help="a whole-run recipe whose settings replace the defaults below (flags still win): "
                            + "; ".join(f"{name}: {text}" for name, (text, _) in RECIPES.items()))
    train.add_argument("--preset", help=f"model preset: {', '.join(PRESETS)} (default {d.preset})")
    train.add_argument("--model", metavar="KEY=VALUE,...",
                       help="override the preset's network, e.g. 'video_patch=4,depth=6' (keys: "
                            + ", ".join(OVERRIDABLE) + "); kept in the run's config and its snapshot")
    train.add_argument("--data", help="'bouncing-tones' (clips encoded once into OUT/latents; the default) or a "
                                      "folder from `avdit encode`")
    train.add_argument("--codecs", help="codec folder (default: the one the latents were made with, recorded by "
                                        "`avdit encode`)")
    train.add_argument("--init", metavar="CHECKPOINT",
                       help="start from this checkpoint's weights (fine-tuning: e.g. the bundled model, avdit/assets/"
                            "model, or a GPU run); it must be the same network at the same geometry and codecs")
    train.add_argument("--lora", type=int, metavar="RANK",
                       help="with --init: train LoRA adapters of this rank (PEFT) on the checkpoint's frozen weights; "
                            "the run folder holds the adapters alone, and --checkpoint takes it everywhere")
    train.add_argument("--lora-targets", metavar="LIST",
                       help=f"projections of every block that get adapters, of attention, mlp, adaln (default "
                            f"{d.lora_targets})")
    train.add_argument("--num-clips", type=int, help=f"Bouncing Tones clips to train on (default {d.num_clips})")
    train.add_argument("--out", required=True, help="run folder: config, checkpoints, samples, TensorBoard logs")
    train.add_argument("--noise-levels",
                       help=f"{d.noise_levels} (default), vanilla, per-modality, per-segment, per-cell, task:<task> "
                            "(task-specific conditional training), or a weighted mixture of those such as "
                            "'vanilla=0.25,per-cell=0.75' or 'monl=0.5,tasks=0.5' (tasks: a2v, v2a, av_continue, "
                            "av_inpaint, given cells clean)")
    train.add_argument("--noise-levels-final",
                       help="a mixture (as --noise-levels) that the shares move to, linearly over the run; e.g. "
                            "--noise-levels monl=0.7,task:a2v=0.3 --noise-levels-final monl (default: fixed shares)")
    train.add_argument("--prediction", choices=["eps", "v"],
                       help=f"what the network's head predicts (default {d.prediction}): v = sqrt(a) eps - sqrt(1 - a) "
                            "x0 (on Bouncing Tones it learns the cross-modal link several times faster) or eps (the "
                            "paper's)")
    train.add_argument("--loss-weighting",
                       help=f"how each cell's epsilon MSE counts by its noise level (default {d.loss_weighting}): v: "
                            "times 1 / alpha_bar, the v MSE of a model with --prediction v; eps: the paper's plain "
                            "epsilon MSE; min-snr-G: times min(SNR, G) / SNR; trunc-snr-K: times clamp(1 / SNR, 1, K)")
    train.add_argument("--steps", type=int, help=f"optimizer steps (default {d.steps}; may grow on resume)")
    train.add_argument("--batch-size", type=int,
                       help=f"global batch over ranks and accumulation (default {d.batch_size})")
    train.add_argument("--accumulation", type=int, help=f"gradient accumulation steps (default {d.accumulation})")
    train.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr:g}; the paper's is 5e-4)")
    train.add_argument("--warmup", type=int, help=f"linear warm-up steps before cosine decay (default {d.warmup})")
    train.add_argument("--grad-clip", type=float, help=f"gradient norm clip (default {d.grad_clip})")
    train.add_argument("--ema-decay", type=float, help=f"EMA decay of the snapshot weights (default {d.ema_decay})")
    train.add_argument("--self-condition-rate", type=float,
                       help=f"fraction of examples trained with self-conditioning (the paper: 0.9; default "
                            f"{d.self_condition_rate:g})")
    train.add_argument("--precision", choices=["bf16", "fp32"], help=f"autocast precision (default {d.precision})")
    train.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    train.add_argument("--fsdp", action="store_true", default=None,
                       help="under torchrun: shard model, EMA and optimizer over the ranks (FSDP2) instead of "
                            "replicating them (DDP); for presets too big for one device, such as paper")
    train.add_argument("--device", default=None, help=DEVICE_HELP)
    train.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    train.add_argument("--log-every", type=int, help=f"log scalars every N steps (default {d.log_every})")
    train.add_argument("--checkpoint-every", type=int, help=f"checkpoint every N steps (default {d.checkpoint_every})")
    train.add_argument("--sample-every", type=int, help="write sample mp4s every N steps (default 0: never)")
    train.add_argument("--sample-steps", type=int, help=f"DDIM steps for those samples (default {d.sample_steps})")
    train.set_defaults(func=_train)


def _add_export(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="copy a run's EMA snapshot as a small checkpoint (fp16) to share")
    export.add_argument("run", help="run folder of `avdit train`")
    export.add_argument("out", help="folder for model.safetensors and model.json")
    export.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    export.add_argument("--merge", action="store_true",
                        help="a LoRA run: merge its adapters into the base weights and write a plain checkpoint")
    export.set_defaults(func=_export)


def register(sub: argparse._SubParsersAction) -> None:
    _add_train(sub)
    _add_distill(sub)
    _add_export(sub)
