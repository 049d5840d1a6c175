"""The ``avdit`` command line. Thin: every subcommand parses its flags and calls the library."""

from __future__ import annotations

import argparse
import sys

from avdit.codecs.train import RECIPES as CODEC_RECIPES
from avdit.codecs.train import CodecTrainSettings
from avdit.diffusion.conditioning import DEFAULT_GUIDANCE
from avdit.layout import GEOMETRIES
from avdit.model.config import OVERRIDABLE
from avdit.train.config import RECIPES, TrainConfig


def _info(args: argparse.Namespace) -> int:
    from avdit.model import PRESETS, AVDiT

    import torch

    print(f"{'preset':<10} {'params':>12} {'video tokens':>13} {'audio tokens':>13} {'grid':>6}  latents")
    for name, config in PRESETS.items():
        with torch.device("meta"):
            params = AVDiT(config).num_parameters()
        layout = config.layout
        print(f"{name:<10} {params:>12,} {config.num_video_tokens:>13} {config.num_audio_tokens:>13} "
              f"{'2x' + str(layout.num_segments):>6}  video {layout.video_latent_shape(config.video_channels)}, "
              f"audio {layout.audio_latent_shape(config.audio_channels)}")
    print(f"\n{'geometry':<15} clip (`avdit prepare --preset`)")
    for name, g in GEOMETRIES.items():
        print(f"{name:<15} {g.height}x{g.width}, {g.fps} fps, {g.frames} frames ({float(g.duration):g} s), "
              f"{g.sample_rate} Hz audio, {g.num_segments} segments")
    print(f"\n{'recipe':<15} `avdit train --recipe`")
    for name, (text, _) in RECIPES.items():
        print(f"{name:<15} {text}")
    return 0


DEVICE_HELP = "where the model samples: cpu or cuda (default: cuda when available)"


def _demo(args: argparse.Namespace) -> int:
    from avdit.pipeline import bundled_model_dir

    if args.checkpoint is None and not (bundled_model_dir() / "model.json").exists() and not args.toy:
        print("avdit demo: no Bouncing Tones model is bundled with this version yet (train one with `avdit train` "
              "and pass --checkpoint); running the exact-Gaussian demonstration instead.\n", file=sys.stderr)
        args.toy = True
    if args.toy:
        from avdit.toy import run_toy_demo

        return run_toy_demo(num=args.num, steps=100 if args.steps is None else args.steps, seed=args.seed)
    from avdit.demo import run_demo

    page = run_demo(args.out, clips=args.clips, steps=25 if args.steps is None else args.steps, seed=args.seed,
                    checkpoint=args.checkpoint, device=args.device)
    print(f"open {page}")
    return 0


def _data_bouncing_tones(args: argparse.Namespace) -> int:
    from avdit.data.bt_files import write_bouncing_tones

    path = write_bouncing_tones(args.out, args.n, args.seed, args.split)
    print(f"wrote {args.n} Bouncing Tones clips ({args.split}, seed {args.seed}) and {path}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from avdit.data.prepare import PrepareSettings, prepare_folder, summary

    given = {name: tuple(value) if name == "size" else value for name, value in vars(args).items()
             if name in PrepareSettings.__dataclass_fields__ and value is not None}
    if args.preset:
        settings = PrepareSettings.from_geometry(args.preset, **given)
    else:
        missing = [flag for flag, name in (("--fps", "fps"), ("--size", "size"), ("--duration", "duration"))
                   if name not in given]
        if missing:
            raise ValueError(f"give --preset ({', '.join(GEOMETRIES)}) or the clip geometry: {', '.join(missing)} "
                             "missing")
        settings = PrepareSettings(**{"hop": given["duration"], **given})
    index = prepare_folder(args.src, args.out, settings)
    print(summary(index))
    return 0


def _train_codec(args: argparse.Namespace) -> int:
    from avdit.codecs.train import train_codec

    settings = CodecTrainSettings(**{name: value for name, value in vars(args).items()
                                     if name in CodecTrainSettings.__dataclass_fields__ and value is not None})
    result = train_codec(settings, args.out)
    figure = "PSNR" if args.kind == "video" else "SNR"
    print(f"{args.kind} codec in {args.out}: held-out {figure} {result['held_out_db']:.2f} dB after {result['steps_done']} steps")
    return 0


def _codec_roundtrip(args: argparse.Namespace) -> int:
    from avdit.codecs.interface import load_codecs
    from avdit.media import read_clip, write_mp4

    import torch

    codecs = load_codecs(args.codecs)
    layout = codecs.layout
    clip = read_clip(args.input, layout.fps, layout.sample_rate, (layout.height, layout.width), start=args.offset,
                     duration=layout.duration)
    latents = codecs.encode(torch.from_numpy(clip.video)[None], torch.from_numpy(clip.audio)[None])
    video, audio = codecs.decode(latents)
    write_mp4(args.output, video[0].numpy(), audio[0].numpy(), layout.fps, layout.sample_rate)
    print(f"{args.output}: {float(layout.duration)} s through video latents {tuple(latents.video.shape[1:])} and "
          f"audio latents {tuple(latents.audio.shape[1:])}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from avdit.codecs.interface import bundled_codecs_dir, load_codecs
    from avdit.codecs.shards import encode_dataset
    from avdit.data.datasets import is_bouncing_tones

    codecs_dir = args.codecs
    if codecs_dir is None:
        if not is_bouncing_tones(args.data):
            raise ValueError(f"give --codecs: the codec folder trained on {args.data} (`avdit train-codec video --data "
                             f"{args.data} --out CODECS`, the same for audio); the bundled codecs take Bouncing Tones only")
        codecs_dir = bundled_codecs_dir()
    index = encode_dataset(args.data, load_codecs(codecs_dir), codecs_dir, args.out, split=args.split, num=args.num,
                           shard_size=args.shard_size, workers=args.workers)
    print(f"{index['clips']} clips in {len(index['shards'])} shards under {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from avdit.train.loop import TrainingError, train

    config = TrainConfig.from_recipe(args.recipe, **{name: value for name, value in vars(args).items()
                                                     if name in TrainConfig.fields() and value is not None})
    try:
        last = train(config, args.out, device=args.device)
    except TrainingError as err:
        print(f"avdit train: {err}", file=sys.stderr)
        return 3
    if last:
        print(f"step {last['step']}: loss {last['loss']:.4f}; checkpoint in {args.out}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from avdit.media import write_mp4
    from avdit.pipeline import Pipeline
    from avdit.render import contact_sheet, save_png

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder")
    if args.guidance is not None and (args.guidance_video is not None or args.guidance_audio is not None):
        raise ValueError("give --guidance, or --guidance-video / --guidance-audio, not both")
    guidance = (args.guidance if args.guidance is not None else
                (DEFAULT_GUIDANCE if args.guidance_video is None else args.guidance_video,
                 DEFAULT_GUIDANCE if args.guidance_audio is None else args.guidance_audio))
    pipe = Pipeline.from_pretrained(args.checkpoint, codecs=args.codecs, device=args.device)
    result = pipe(task=args.task, video=args.video or args.input, audio=args.audio or args.input, num=args.num,
                  steps=args.steps, sampler=args.sampler, eta=args.eta, guidance=guidance, mode=args.mode,
                  seed=args.seed, offset=args.offset, duration=args.duration, pyramid_lag=args.pyramid_lag,
                  progress=True)
    out.mkdir(parents=True, exist_ok=True)
    for i, (video, audio) in enumerate(zip(result.video, result.audio)):
        write_mp4(out / f"sample_{i:03d}.mp4", video, audio, result.fps, result.sample_rate)
    sheet = contact_sheet(result.video, result.audio, pipe.layout, result.task.given.numpy())
    save_png(out / "contact_sheet.png", sheet)
    print(f"{args.num} clip(s) for task {result.task.name} in {out} (sample_*.mp4, contact_sheet.png)")
    return 0


def _train_features(args: argparse.Namespace) -> int:
    from avdit.eval.features.bt_train import train_features

    info = train_features(args.out, steps=args.steps, batch_size=args.batch_size, clips=args.clips, seed=args.seed)
    scores = ", ".join(f"{k} {v:.1%}" for k, v in info["held_out"].items())
    print(f"Bouncing Tones feature nets in {args.out} ({info['seconds']:.0f} s); held out: {scores}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from avdit.eval.evaluate import EvalSettings, evaluate, markdown_table, parse_tasks

    settings = EvalSettings(tasks=parse_tasks(args.tasks), data=args.data, num=args.num, steps=args.steps,
                            sampler=args.sampler, guidance=args.guidance, mode=args.mode, seed=args.seed,
                            batch_size=args.batch_size,
                            av_align=not args.no_av_align, bt_features=args.bt_features, i3d=args.i3d,
                            vggish=args.vggish, checkpoint=args.checkpoint, codecs=args.codecs,
                            device=args.device)
    results = evaluate(settings, args.out)
    print(markdown_table(results))
    print(f"written to {args.out}/results.md and {args.out}/results.json")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from avdit.serve import serve

    serve(args.checkpoint, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, device=args.device,
          auth=args.auth)
    return 0


def _export(args: argparse.Namespace) -> int:
    from avdit.pipeline import export_checkpoint

    out = export_checkpoint(args.run, args.out, half=not args.fp32)
    print(f"{out}: model.safetensors ({'fp32' if args.fp32 else 'fp16'}) + model.json; use it with --checkpoint {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avdit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="list the model presets (sizes, latent layouts), clip geometries and recipes")
    info.set_defaults(func=_info)

    demo = sub.add_parser("demo", help="every task on held-out Bouncing Tones clips with the bundled model: an HTML page")
    demo.add_argument("--out", default="avdit-demo", help="output folder (default avdit-demo)")
    demo.add_argument("--clips", type=int, default=4, help="held-out clips per task (default 4)")
    demo.add_argument("--steps", type=int, default=None, help="DDIM steps (default 25; 100 with --toy)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled model)")
    demo.add_argument("--device", default=None, help=DEVICE_HELP)
    demo.add_argument("--toy", action="store_true",
                      help="instead: every task through the samplers on Gaussian latents with a known answer")
    demo.add_argument("--num", type=int, default=1000, help="--toy: samples per task (default 1000)")
    demo.set_defaults(func=_demo)

    data = sub.add_parser("data", help="make built-in datasets")
    data_sub = data.add_subparsers(dest="dataset", required=True)
    tones = data_sub.add_parser("bouncing-tones", help="write N Bouncing Tones clips as mp4 plus metadata.json")
    tones.add_argument("out", help="output folder")
    tones.add_argument("--n", type=int, required=True, help="number of clips")
    tones.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    tones.add_argument("--split", choices=["train", "test"], default="train",
                       help="train or held-out test clips (independent streams; default train)")
    tones.set_defaults(func=_data_bouncing_tones)

    prepare = sub.add_parser("prepare", help="index a folder of videos as fixed-length clips with a train/test split")
    prepare.add_argument("src", help="folder of video files (scanned recursively)")
    prepare.add_argument("out", help="output folder for index.json")
    prepare.add_argument("--preset", choices=list(GEOMETRIES), default=None,
                         help="a named clip geometry: " + "; ".join(
                             f"{name}: {g.height}x{g.width}, {g.fps} fps, {g.frames} frames" for name, g in
                             GEOMETRIES.items()) + " (flags below override its values)")
    prepare.add_argument("--fps", type=int, default=None, help="video frame rate of the clips")
    prepare.add_argument("--sample-rate", type=int, default=None, help="audio sample rate (default 16000)")
    prepare.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                         help="frame size after centre crop and resize")
    prepare.add_argument("--duration", type=float, default=None,
                         help="clip length in seconds: 1 + 4k frames at --fps (e.g. 2.1 at 10 fps, 2.125 at 8)")
    prepare.add_argument("--hop", type=float, default=None, help="seconds between clip starts (default: --duration)")
    prepare.add_argument("--test-fraction", type=float, default=None,
                         help="fraction of files held out for test, chosen by a hash of their path (default 0.1)")
    prepare.set_defaults(func=_prepare)

    c, video, audio = CodecTrainSettings, CODEC_RECIPES["video"], CODEC_RECIPES["audio"]  # the defaults, written there
    train_codec = sub.add_parser("train-codec", help="train the video or the audio codec (rerun to resume); both with "
                                                     "the same --out make one codec folder")
    train_codec.add_argument("kind", choices=["video", "audio"], help="which codec")
    train_codec.add_argument("--data", help="'bouncing-tones' (made on the fly; the default), a folder from "
                                            "`avdit data` or `avdit prepare` (the codec takes its clip geometry)")
    train_codec.add_argument("--out", required=True, help="codec folder: checkpoints, samples, the trained codec")
    train_codec.add_argument("--steps", type=int, help=f"steps of the whole autoencoder (default: video "
                                                       f"{video['steps']}, audio {audio['steps']})")
    train_codec.add_argument("--batch-size", type=int, help=f"clips per step (default {c.batch_size})")
    train_codec.add_argument("--lr", type=float, help=f"peak learning rate of those steps, cosine decay (default: "
                                                      f"video {video['lr']:g}, audio {audio['lr']:g})")
    train_codec.add_argument("--latent-channels", type=int, help="latent channels (default 16)")
    train_codec.add_argument("--seed", type=int, help=f"random seed (default {c.seed})")
    train_codec.add_argument("--sample-every", type=int,
                             help=f"write a held-out reconstruction every N steps (default {c.sample_every})")
    train_codec.add_argument("--checkpoint-every", type=int, help=f"checkpoint every N steps (default "
                                                                  f"{c.checkpoint_every})")
    train_codec.add_argument("--workers", type=int, help=f"DataLoader worker processes (default {c.workers})")
    train_codec.add_argument("--precision", choices=["fp32", "bf16"],
                             help=f"autocast precision of the codec's forward pass (default: video {video['precision']}, "
                                  f"audio {audio['precision']})")
    train_codec.add_argument("--decoder-steps", type=int,
                             help="after --steps, train the decoder alone on plain MSE for N steps; the encoder and "
                                  f"so the latents stay as they are (default: video {video['decoder_steps']}, audio "
                                  f"{audio['decoder_steps']})")
    train_codec.add_argument("--decoder-lr", type=float,
                             help=f"peak learning rate of the decoder steps, cosine decay (default {c.decoder_lr:g})")
    train_codec.add_argument("--sharpen-width", type=int,
                             help="video: channels of the full-resolution sharpening head the decoder steps add "
                                  f"(0: none; default {c.sharpen_width})")
    train_codec.set_defaults(func=_train_codec)

    features = sub.add_parser("train-features", help="train the Bouncing Tones feature nets behind BT-FVD and BT-FAD")
    features.add_argument("--out", required=True, help="folder for bt_video/bt_audio.safetensors and bt_features.json")
    features.add_argument("--steps", type=int, default=800, help="optimizer steps (default 800)")
    features.add_argument("--batch-size", type=int, default=32, help="clips per step (default 32)")
    features.add_argument("--clips", type=int, default=4096, help="training clips made up front (default 4096)")
    features.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    features.set_defaults(func=_train_features)

    codec = sub.add_parser("codec", help="codec utilities")
    codec_sub = codec.add_subparsers(dest="action", required=True)
    roundtrip = codec_sub.add_parser("roundtrip", help="encode and decode a clip to hear and see what the latents keep")
    roundtrip.add_argument("input", help="a video file with audio")
    roundtrip.add_argument("output", help="the mp4 to write")
    roundtrip.add_argument("--codecs", default=None, help="codec folder (default: the bundled Bouncing Tones codecs)")
    roundtrip.add_argument("--offset", type=float, default=0.0, help="start of the clip in the input, seconds")
    roundtrip.set_defaults(func=_codec_roundtrip)

    encode = sub.add_parser("encode", help="write the latents of a dataset into safetensors shards")
    encode.add_argument("data", help="'bouncing-tones', a folder from `avdit data` or one from `avdit prepare`")
    encode.add_argument("--codecs", default=None,
                        help="codec folder (`avdit train-codec`); required but for Bouncing Tones, whose default is "
                             "the bundled codecs")
    encode.add_argument("--out", required=True, help="output folder for the shards and index.json")
    encode.add_argument("--split", choices=["train", "test"], default="train", help="which split (default train)")
    encode.add_argument("--num", type=int, default=None,
                        help="clips to encode (required for 'bouncing-tones'; default: all of a folder)")
    encode.add_argument("--shard-size", type=int, default=1024, help="clips per shard (default 1024)")
    encode.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    encode.set_defaults(func=_encode)

    d = TrainConfig()  # every default below is TrainConfig's; a --recipe replaces them, a flag replaces both
    train = sub.add_parser("train", help="train AVDiT with a mixture of noise levels (rerun the command to resume; "
                                         "works under torchrun)")
    train.add_argument("--recipe", choices=list(RECIPES), default=None,
                       help="a whole-run recipe whose settings replace the defaults below (flags still win): "
                            + "; ".join(f"{name}: {text}" for name, (text, _) in RECIPES.items()))
    train.add_argument("--preset", help=f"model preset: bt-tiny, bt-small, paper (default {d.preset})")
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
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    train.add_argument("--log-every", type=int, help=f"log scalars every N steps (default {d.log_every})")
    train.add_argument("--checkpoint-every", type=int, help=f"checkpoint every N steps (default {d.checkpoint_every})")
    train.add_argument("--sample-every", type=int, help="write sample mp4s every N steps (default 0: never)")
    train.add_argument("--sample-steps", type=int, help=f"DDIM steps for those samples (default {d.sample_steps})")
    train.set_defaults(func=_train)

    export = sub.add_parser("export", help="copy a run's EMA snapshot as a small checkpoint (fp16) to share")
    export.add_argument("run", help="run folder of `avdit train`")
    export.add_argument("out", help="folder for model.safetensors and model.json")
    export.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    export.set_defaults(func=_export)

    gen = sub.add_parser("generate", help="generate clips for any task from a checkpoint")
    gen.add_argument("--task", default="joint",
                     help="joint, a2v, v2a, av_continue, av_inpaint, av_continue_2s, or a grid like 'video:0-1,audio:0-1'")
    gen.add_argument("--input", default=None, help="a file with the given parts (video and/or audio; a wav is "
                                                   "enough for a2v)")
    gen.add_argument("--video", default=None, help="take the given video from this file instead of --input")
    gen.add_argument("--audio", default=None, help="take the given audio from this file instead of --input")
    gen.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled model)")
    gen.add_argument("--codecs", default=None, help="codec folder (default: the ones the checkpoint names)")
    gen.add_argument("--num", type=int, default=1, help="clips to generate (default 1)")
    gen.add_argument("--steps", type=int, default=50, help="sampler steps (default 50)")
    gen.add_argument("--sampler", choices=["ddim", "ddpm", "dpmpp2m"], default="ddim",
                     help="sampler (default ddim); dpmpp2m: DPM-Solver++(2M) on levels evenly spaced in log-SNR, "
                          "for 12 steps or fewer (docs/sampling.md)")
    gen.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default 0: deterministic)")
    gen.add_argument("--guidance", type=float, default=None,
                     help=f"guidance scale s for every generated modality (default {DEFAULT_GUIDANCE}; 0: none)")
    gen.add_argument("--guidance-video", type=float, default=None,
                     help=f"guidance scale for generated video (default {DEFAULT_GUIDANCE})")
    gen.add_argument("--guidance-audio", type=float, default=None,
                     help=f"guidance scale for generated audio (default {DEFAULT_GUIDANCE})")
    gen.add_argument("--mode", choices=["clean", "replace"], default="clean",
                     help="how given cells reach the model: clean (MoNL) or replace (a vanilla-trained model)")
    gen.add_argument("--seed", type=int, default=0,
                     help="random seed (default 0); the same seed, inputs, device and thread count "
                          "(OMP_NUM_THREADS) give the same clip bit for bit; another thread count or device gives "
                          "the same noise, but float rounding may move pixel values by a step (1/255 measured))")
    gen.add_argument("--device", default=None, help=DEVICE_HELP)
    gen.add_argument("--offset", type=float, default=0.0, help="start of the clip in the input file, seconds")
    gen.add_argument("--duration", type=float, default=None,
                     help="seconds to generate; past one window, windows roll on, each given the last two segments of "
                          "the one before (what the task gives whole, such as a2v's audio, slides along its input)")
    gen.add_argument("--pyramid-lag", type=int, default=0,
                     help="diffusion-forcing schedule: each later generated segment starts this many steps later")
    gen.add_argument("--out", required=True, help="output folder")
    gen.set_defaults(func=_generate)

    ev = sub.add_parser("evaluate", help="generate from held-out clips for each task and score them: a table")
    ev.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled model)")
    ev.add_argument("--codecs", default=None, help="codec folder (default: the ones the checkpoint names)")
    ev.add_argument("--tasks", default="all", help="'all' (joint,a2v,v2a,av_continue,av_inpaint) or a list")
    ev.add_argument("--data", default="bouncing-tones",
                    help="held-out clips: 'bouncing-tones' (test split, made in memory) or a folder from "
                         "`avdit data` / `avdit prepare` (its test split)")
    ev.add_argument("--num", type=int, default=200, help="clips per task (default 200)")
    ev.add_argument("--steps", type=int, default=25, help="sampler steps (default 25)")
    ev.add_argument("--sampler", choices=["ddim", "ddpm", "dpmpp2m"], default="ddim",
                    help="sampler (default ddim); dpmpp2m: DPM-Solver++(2M) on levels evenly spaced in log-SNR, "
                         "for 12 steps or fewer (docs/sampling.md)")
    ev.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                    help=f"guidance scale (default {DEFAULT_GUIDANCE}; 0: none)")
    ev.add_argument("--mode", choices=["clean", "replace"], default="clean",
                    help="how given cells reach the model: clean (MoNL) or replace (a vanilla-trained model)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the held-out clips and of sampling (default 0)")
    ev.add_argument("--device", default=None, help=DEVICE_HELP)
    ev.add_argument("--batch-size", type=int, default=32, help="clips per sampling batch (default 32)")
    ev.add_argument("--no-av-align", action="store_true", help="skip AV-align (optical flow + onsets per clip)")
    ev.add_argument("--bt-features", default=None, help="Bouncing Tones feature nets (default: the bundled ones)")
    ev.add_argument("--i3d", default=None, help="local I3D weights (.pt/.safetensors) to report FVD and KVD")
    ev.add_argument("--vggish", default=None, help="local VGGish weights (.pth/.safetensors) to report FAD")
    ev.add_argument("--out", required=True, help="folder for results.md and results.json")
    ev.set_defaults(func=_evaluate)

    srv = sub.add_parser("serve", help="a web page (Gradio) to try every task in the browser")
    srv.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled model)")
    srv.add_argument("--device", default=None, help=DEVICE_HELP)
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 to share)")
    srv.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    srv.add_argument("--max-upload-mb", type=int, default=50, help="largest upload accepted, MB (default 50)")
    srv.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                     help="login the page asks for (default: none; anyone who reaches it can use it)")
    srv.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input: say what and stop, without a traceback
        print(f"avdit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
