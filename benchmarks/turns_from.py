"""How well one checkpoint's turns bring colour and pitch together from another's first draw: joint clips whose video
is drawn by ``--first`` (its first sampler run: video, the audio unseen), then, by ``--turns``, audio given that
video (v2a), video given that audio (a2v) and audio given that video (v2a), each with the checkpoint's own sampling.
After each turn: class mix, colour = pitch (all clips, and per colour class), one disc and onset F1.

    python benchmarks/turns_from.py [--first CKPT] [--turns CKPT] [--num 100]

Either default is the bundled model. The turns go through the codecs (each turn's output decoded, then encoded as
the next one's input), as a user chaining ``avdit generate --task v2a`` and ``--task a2v`` would. The clips use
noise seeds 1000 on, as ``benchmarks/class_mix.py``; docs/distillation.md "Where the class is decided" was made
with it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from avdit.eval.evaluate import held_out
from avdit.eval.measures import class_mix, clip_measures
from avdit.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from class_mix import BATCH  # noqa: E402

TURNS = ("v2a", "a2v", "v2a")  # the task of each turn after the first draw (video, audio, video, audio)


def turn_rows(first: Pipeline, turns: Pipeline, num: int) -> list[list[dict]]:
    """Clip measures after each turn: [first draw + its audio by ``turns``, + video, + audio], ``num`` clips each."""
    rows: list[list[dict]] = [[] for _ in TURNS]
    first_run = first.default_sampling.replace(order="video-audio")  # its first run draws the video alone
    for start in range(0, num, BATCH):
        batch = min(BATCH, num - start)
        video = first("joint", num=batch, seed=1000 + start, sampling=first_run).video  # (B, T, H, W, 3) uint8
        audio = None
        for k, task in enumerate(TURNS):
            out = (turns(task, video=video, num=batch, seed=2000 + start + k) if task == "v2a"
                   else turns(task, audio=audio, num=batch, seed=2000 + start + k))
            video, audio = out.video, out.audio
            rows[k] += [clip_measures(v, a) for v, a in zip(video, audio)]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first", default=None, help="checkpoint that draws the first video (default: bundled)")
    parser.add_argument("--turns", default=None, help="checkpoint that takes the turns (default: bundled)")
    parser.add_argument("--num", type=int, default=100, help="joint clips (default 100)")
    args = parser.parse_args(argv)
    first = Pipeline.from_pretrained(args.first, device="cpu")
    turns = first if args.turns == args.first else Pipeline.from_pretrained(args.turns, device="cpu")
    _, _, reference = held_out("bouncing-tones", 200, 0)
    first_run = first.default_sampling.replace(order="video-audio").describe()
    print(f"first video: {args.first or 'bundled model'} ({first_run}, its first run); turns: "
          f"{args.turns or 'bundled model'} ({turns.default_sampling.describe()})\n")
    print("| after | class mix | colour = pitch | colour = pitch per class 0-7 (clips) | one disc | onset F1 |")
    print("|---|---:|---:|---|---:|---:|")
    for name, measures in zip(("audio", "video", "audio"), turn_rows(first, turns, args.num)):
        colours = np.array([m["colour"] for m in measures])
        agree = np.array([m["identity_agreement"] for m in measures])
        per_class = ", ".join(f"{agree[colours == k].mean():.0%} ({int((colours == k).sum())})"
                              if (colours == k).any() else "- (0)" for k in range(8))
        one_disc, f1 = np.mean([m["one_disc"] for m in measures]), np.nanmean([m["onset_f1"] for m in measures])
        print(f"| {name} | {class_mix(colours, reference):.2f} | {agree.mean():.1%} | {per_class} | {one_disc:.1%} | "
              f"{f1:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
