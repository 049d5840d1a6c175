"""``avdit generate``: clips for any task from a checkpoint, as mp4s and a contact sheet."""

from __future__ import annotations

import argparse

from avdit.cli.common import add_sampling_flags, given, library_defaults, parameter_names


def _guidance(args: argparse.Namespace) -> dict:
    """``guidance=`` for the pipeline: one scale, one per modality (a missing one the default), or none given."""
    from avdit.diffusion.conditioning import DEFAULT_GUIDANCE

    per_modality = (args.guidance_video, args.guidance_audio)
    if args.guidance is not None and per_modality != (None, None):
        raise ValueError("give --guidance, or --guidance-video / --guidance-audio, not both")
    if per_modality != (None, None):
        return {"guidance": tuple(DEFAULT_GUIDANCE if s is None else s for s in per_modality)}
    return given(args, ("guidance",))


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from avdit.media import write_mp4
    from avdit.pipeline import Pipeline
    from avdit.render import contact_sheet, save_png

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder")
    guidance = _guidance(args)
    pipe = Pipeline.from_pretrained(args.checkpoint, codecs=args.codecs, device=args.device)
    flags = given(args, parameter_names(Pipeline.__call__) - {"video", "audio", "guidance", "progress"})
    result = pipe(video=args.video or args.input, audio=args.audio or args.input, **flags, **guidance, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    for i, (video, audio) in enumerate(zip(result.video, result.audio)):
        write_mp4(out / f"sample_{i:03d}.mp4", video, audio, result.fps, result.sample_rate)
    sheet = contact_sheet(result.video, result.audio, pipe.layout, result.task.given.numpy())
    save_png(out / "contact_sheet.png", sheet)
    print(f"{len(result.video)} clip(s) for task {result.task.name} in {out} (sample_*.mp4, contact_sheet.png)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from avdit.pipeline import Pipeline

    d = library_defaults(Pipeline.__call__)
    gen = sub.add_parser("generate", help="generate clips for any task from a checkpoint")
    gen.add_argument("--task", help="joint (default), a2v, v2a, av_continue, av_inpaint, av_continue_2s, or a grid "
                                    "like 'video:0-1,audio:0-1'")
    gen.add_argument("--input", default=None, help="a file with the given parts (video and/or audio; a wav is "
                                                   "enough for a2v)")
    gen.add_argument("--video", default=None, help="take the given video from this file instead of --input")
    gen.add_argument("--audio", default=None, help="take the given audio from this file instead of --input")
    gen.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled model)")
    gen.add_argument("--codecs", default=None, help="codec folder (default: the ones the checkpoint names)")
    gen.add_argument("--num", type=int, help=f"clips to generate (default {d.num})")
    add_sampling_flags(gen, d)
    gen.add_argument("--eta", type=float, help=f"DDIM eta (default {d.eta:g}: deterministic)")
    gen.add_argument("--guidance", type=float,
                     help=f"guidance scale s for every generated modality (default {d.guidance}; 0: none)")
    gen.add_argument("--guidance-video", type=float,
                     help=f"guidance scale for generated video (default {d.guidance})")
    gen.add_argument("--guidance-audio", type=float,
                     help=f"guidance scale for generated audio (default {d.guidance})")
    gen.add_argument("--seed", type=int,
                     help=f"random seed (default {d.seed}); the same seed, inputs, device and thread count "
                          "(OMP_NUM_THREADS) give the same clip bit for bit; another thread count or device gives "
                          "the same noise, but float rounding may move pixel values by a step (1/255 measured))")
    gen.add_argument("--offset", type=float, help="start of the clip in the input file, seconds (default 0)")
    gen.add_argument("--duration", type=float,
                     help="seconds to generate; past one window, windows roll on, each given the last two segments of "
                          "the one before (what the task gives whole, such as a2v's audio, slides along its input)")
    gen.add_argument("--out", required=True, help="output folder")
    gen.set_defaults(func=_generate)
