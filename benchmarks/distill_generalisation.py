"""Does a distilled student learn the teacher's map from noise to sample, or memorise its pairs? The student's loss
per level on its training pairs against new pairs of the same teacher (another seed), and the teacher's weights on
the new pairs as the baseline, measured in the same run.

    python benchmarks/distill_generalisation.py --student runs/distill/student [--teacher avdit/assets/model]
                                                [--data runs/distill/latents] [--pairs 384] [--batches 3]

The new pairs go to STUDENT/heldout_pairs (made once; a rerun reuses them). Each row is the mean v loss (the
training loss) per level of the student's sampler, over ``--batches`` batches of 128 drawn as training draws them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from avdit.codecs.shards import open_shards
from avdit.diffusion import diffusion_loss, reduce_loss
from avdit.diffusion.loss import parse_loss_weighting
from avdit.model import AVDiT
from avdit.train.config import TrainConfig
from avdit.train.pairs import PairBatches, PairSettings, make_pairs


@torch.no_grad()
def loss_per_level(checkpoint: str | Path, pairs_dir: Path, student_steps: str, batches: int) -> dict[int, float]:
    model = AVDiT.from_pretrained(checkpoint)
    layout = model.config.layout
    pairs, index = open_shards(pairs_dir)
    source = PairBatches(TrainConfig(data=str(pairs_dir), student_steps=student_steps, batch_size=128, seed=5), pairs,
                         index)
    weighting = parse_loss_weighting("v")
    losses: dict[int, list[float]] = {}
    for step in range(batches):
        batch = source.draw(step)
        per_example = reduce_loss(diffusion_loss(model, batch.x0, batch.t, layout, noise=batch.noise,
                                                 prediction=model.config.prediction), batch.t, layout, weighting)
        for level, loss in zip(batch.t.amax(dim=(1, 2)).tolist(), per_example.tolist()):
            losses.setdefault(level, []).append(loss)
    return {level: sum(v) / len(v) for level, v in sorted(losses.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--student", required=True, help="run folder of `avdit distill`")
    parser.add_argument("--teacher", default="avdit/assets/model", help="its teacher (default the bundled model)")
    parser.add_argument("--data", default="runs/distill/latents", help="the latents the pairs were made from")
    parser.add_argument("--pairs", type=int, default=384, help="new pairs (default 384)")
    parser.add_argument("--batches", type=int, default=3, help="batches of 128 per row (default 3)")
    args = parser.parse_args(argv)
    student = Path(args.student)
    steps = json.loads((student / "config.json").read_text())["student_steps"]
    held_out = student / "heldout_pairs"
    make_pairs(PairSettings(teacher=args.teacher, data=args.data, pairs=args.pairs, seed=1), held_out)
    rows = {"teacher weights, new pairs": loss_per_level(args.teacher, held_out, steps, args.batches),
            "student, its training pairs": loss_per_level(student, student / "pairs", steps, args.batches),
            "student, new pairs": loss_per_level(student, held_out, steps, args.batches)}
    levels = sorted({level for row in rows.values() for level in row})
    print("| level | " + " | ".join(str(level) for level in levels) + " |")
    print("|---|" + "---:|" * len(levels))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[level]:.3f}" if level in row else "—" for level in levels) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
