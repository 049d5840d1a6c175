"""``avdit generate``: clips for any task from a checkpoint, as mp4s and a contact sheet."""

from __future__ import annotations

import argparse
import itertools

from avdit.cli.common import add_sampling_flags, given, library_defaults, sampling_from_flags


def _duration(text: str) -> float:
    """--duration: seconds > 0, or ``inf`` for a stream without end."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--duration takes seconds or 'inf', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--duration must be > 0 seconds (or 'inf'), got {text}")
    return value


def _generate(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from avdit.media import write_mp4
    from avdit.pipeline import Pipeline, Result
    from avdit.apps.render import contact_sheet, save_png

    to_stdout = args.out == "-"
    out = Path(args.out)
    if not to_stdout and out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder (or '-' for stdout)")
    sampling = sampling_from_flags(args)
    pipe = Pipeline.from_pretrained(args.checkpoint, codecs=args.codecs, device=args.device)
    flags = given(args, ("task", "num", "seed", "offset"))
    inputs = dict(video=args.video or args.input, audio=args.audio or args.input)
    print(f"sampling: {args.sampling} preset, {sampling.describe()}", file=sys.stderr)
    if to_stdout or (args.duration is not None and args.duration > float(pipe.layout.duration)):
        return _stream(pipe, args, inputs, {**flags, "sampling": sampling}, None if to_stdout else out)
    pipe.progress = True
    result = Result.join(pipe.stream(**inputs, duration=args.duration or float(pipe.layout.duration), **flags,
                                     sampling=sampling))
    out.mkdir(parents=True, exist_ok=True)
    for i, (video, audio) in enumerate(zip(result.video, result.audio)):
        write_mp4(out / f"sample_{i:03d}.mp4", video, audio, result.fps, result.sample_rate)
    sheet = contact_sheet(result.video, result.audio, pipe.layout, result.task.given.numpy())
    save_png(out / "contact_sheet.png", sheet)
    print(f"{len(result.video)} clip(s) for task {result.task.name} in {out} (sample_*.mp4, contact_sheet.png)")
    return 0


def _stream(pipe, args: argparse.Namespace, inputs: dict, flags: dict, out) -> int:
    """Past one window, or to stdout: each clip is written as it is made (a fragmented mp4: memory holds one window,
    and a run cut off leaves files that play up to their last half second); progress in seconds of content."""
    import sys
    import time

    from tqdm import tqdm

    from avdit.media import Mp4Stream
    from avdit.apps.render import contact_sheet, save_png

    layout = pipe.layout
    if out is None and flags.get("num", 1) != 1:
        raise ValueError("--out - writes one stream to stdout: give --num 1")
    duration = None if args.duration == float("inf") else args.duration or float(layout.duration)  # None: no end
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    chunks = pipe.stream(**inputs, duration=duration, **flags)
    first = next(chunks)  # the first window: any input error is raised before a file is opened
    num = first.video.shape[0]
    writers = [Mp4Stream(sys.stdout.buffer if out is None else out / f"sample_{i:03d}.mp4", layout.width,
                         layout.height, layout.fps, layout.sample_rate) for i in range(num)]
    bar = tqdm(total=duration, unit="s", desc=f"{first.task.name}: seconds of content", file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}{postfix}]" if duration else
               "{desc}: {n:.1f} s [{elapsed}{postfix}]")
    written, interrupted = 0.0, False
    try:
        if out is not None:
            sheet = contact_sheet(first.video, first.audio, layout, first.task.given.numpy())  # the first window
            save_png(out / "contact_sheet.png", sheet)
        for chunk in itertools.chain([first], chunks):
            for writer, video, audio in zip(writers, chunk.video, chunk.audio):
                writer.write(video, audio)
            seconds = chunk.video.shape[1] / layout.fps
            written += seconds
            bar.update(seconds)
            bar.set_postfix_str(f"{written / (time.perf_counter() - began):.2f}x real time")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for writer in writers:
            writer.close()
        bar.close()
    where = "stdout" if out is None else f"{out} (sample_*.mp4, contact_sheet.png of the first window)"
    rate = written / (time.perf_counter() - began)
    state = "interrupted: " if interrupted else ""
    pace = f"{rate:.2f}x real time" if num == 1 else f"each at {rate:.2f}x real time ({num * rate:.2f}x in all)"
    print(f"{state}{num} stream(s) of {written:.1f} s for task {first.task.name} in {where}, {pace}", file=sys.stderr)
    return 130 if interrupted else 0


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
    add_sampling_flags(gen, "default")
    gen.add_argument("--seed", type=int,
                     help=f"random seed (default {d.seed}); the same seed, inputs, device and thread count "
                          "(OMP_NUM_THREADS) give the same clip bit for bit; another thread count or device gives "
                          "the same noise, but float rounding may move pixel values by a step (1/255 measured))")
    gen.add_argument("--offset", type=float, help="start of the clip in the input file, seconds (default 0)")
    gen.add_argument("--duration", type=_duration,
                     help="seconds to generate, or 'inf' to go on until Ctrl-C; past one window, windows roll on, each "
                          "given the last two segments of the one before (what the task gives whole, such as a2v's "
                          "audio, slides along its input), and the mp4s are written as they are made: an interrupted "
                          "run leaves files that play")
    gen.add_argument("--out", required=True, help="output folder, or '-': one stream to stdout as fragmented mp4 "
                                                  "(avdit generate ... --out - | ffplay -)")
    gen.set_defaults(func=_generate)
