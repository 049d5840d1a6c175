"""How evenly joint generation draws the colour classes under each sampling setting: the clips of each class, the
class mix (1 - total variation distance from the held-out clips' classes, ``avdit.eval.measures.class_mix``) and
colour = pitch, one row per setting, in the same run.

    python benchmarks/class_mix.py [--checkpoint CKPT] [--num 100] [SETTING ...]

A SETTING is ``SamplingConfig`` fields joined by commas (``order=together,steps=50``; ``default``: the checkpoint's
own sampling). The held-out classes are those of ``avdit evaluate --num 200`` (seed 0); the clips drawn here use
noise seeds 1000 on. docs/sampling.md "The mix of classes joint draws" was made with it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from avdit.diffusion.sampling import SamplingConfig
from avdit.eval.evaluate import held_out
from avdit.eval.measures import class_mix, clip_measures
from avdit.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).parent))
from common import field_changes  # noqa: E402

BATCH = 50  # joint clips sampled at once


def parse_setting(text: str, base: SamplingConfig) -> SamplingConfig:
    """'order=together,steps=50' -> ``base`` with those fields changed; 'default' -> ``base``."""
    return base if text == "default" else base.replace(**field_changes(text.split(","), base, "setting"))


def joint_study(description: str, argv: list[str] | None) -> tuple[Pipeline, list[tuple[str, SamplingConfig]], int,
                                                                   np.ndarray]:
    """The command line of a study of joint clips per sampling setting (this one's, ``class_decided.py``'s): the
    checkpoint's pipeline, each setting as written and as made, clips per setting, the held-out clips' classes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("settings", nargs="*", default=["default"], help="sampling settings (default: 'default')")
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled model)")
    parser.add_argument("--num", type=int, default=100, help="joint clips per setting (default 100)")
    args = parser.parse_args(argv)
    pipe = Pipeline.from_pretrained(args.checkpoint, device="cpu")
    settings = [(text, parse_setting(text, pipe.default_sampling)) for text in args.settings]  # bad ones fail first
    _, _, reference = held_out("bouncing-tones", 200, 0)
    return pipe, settings, args.num, reference


def main(argv: list[str] | None = None) -> int:
    pipe, settings, num, reference = joint_study(__doc__.split("\n")[0], argv)
    print(f"held-out clips of each class: {np.bincount(reference, minlength=8).tolist()}\n")
    print("| sampling | clips of each class (no disc, then classes 0-7) | class mix | colour = pitch |")
    print("|---|---|---:|---:|")
    for text, sampling in settings:
        measures = []
        for start in range(0, num, BATCH):
            result = pipe("joint", num=min(BATCH, num - start), seed=1000 + start, sampling=sampling)
            measures += [clip_measures(v, a) for v, a in zip(result.video, result.audio)]
        colours = np.array([m["colour"] for m in measures])
        agree = np.mean([m["identity_agreement"] for m in measures])
        print(f"| {text} | {np.bincount(colours + 1, minlength=9).tolist()} | {class_mix(colours, reference):.2f} "
              f"| {agree:.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
