"""Where along a sampler run a joint clip's colour class is decided: at every step of the first run, the class of the
step's x0 estimate (decoded), the share of clips whose estimate already has the class the run ends with, and the mix
of the classes (``avdit.eval.measures.class_mix``).

    python benchmarks/class_decided.py [--checkpoint CKPT] [--num 100] [SETTING ...]

A SETTING is ``SamplingConfig`` fields joined by commas (``order=together,steps=12,sampler=ddim``; ``default``: the
checkpoint's own sampling). Where the order has several runs, the first one (video, the audio unseen) is read. The
clips use noise seeds 1000 on, as ``benchmarks/class_mix.py``; docs/distillation.md "Where the class is decided" was
made with it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from avdit.diffusion import generate_latents
from avdit.diffusion.samplers import step_levels
from avdit.eval.bt_analysis import colour_class
from avdit.eval.measures import class_mix, majority_colour
from avdit.pipeline import Pipeline
from avdit.tasks import get_task

sys.path.insert(0, str(Path(__file__).parent))
from class_mix import BATCH, joint_study  # noqa: E402


@torch.no_grad()
def classes_along(pipe: Pipeline, sampling, num: int) -> np.ndarray:
    """(S, num) the class of each clip's x0 estimate after each step of the first sampler run of joint clips."""
    given = get_task("joint", pipe.layout.num_segments).given  # (M, N)
    columns = []
    for start in range(0, num, BATCH):
        batch = min(BATCH, num - start)
        clean = pipe.codecs.encode(None, None).map(lambda p: p.expand(batch, *p.shape[1:]))
        estimates: list[torch.Tensor] = []
        generate_latents(pipe.model, clean, given, pipe.layout, sampling, generator=torch.Generator().manual_seed(
            1000 + start), prediction=pipe.model.config.prediction,
            callback=lambda run, step, x, x0: estimates.append(x0.video.float()) if run == 0 else None)
        columns.append(np.array([[majority_colour(colour_class(v)) for v in pipe.codecs.video.decode(x0).numpy()]
                                 for x0 in estimates]))  # (S, batch)
    return np.concatenate(columns, axis=1)


def main(argv: list[str] | None = None) -> int:
    pipe, settings, num, reference = joint_study(__doc__.split("\n")[0], argv)
    for text, sampling in settings:
        classes = classes_along(pipe, sampling, num)
        levels = step_levels(sampling.steps, sampling.level_spacing).tolist()
        print(f"\n{text}: {sampling.describe()}\n")
        print("| step | level | class as at the end | class mix | clips of each class (no disc, then 0-7) |")
        print("|---:|---:|---:|---:|---|")
        for step, row in enumerate(classes):
            print(f"| {step + 1} | {levels[step]} | {np.mean(row == classes[-1]):.0%} | "
                  f"{class_mix(row, reference):.2f} | {np.bincount(row + 1, minlength=9).tolist()} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
