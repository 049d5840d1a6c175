"""A study: a distillation run's teacher pairs with pairs of more task grids added, for a DMD stage to go on from.

    python benchmarks/grid_pairs.py --run runs/distill2 --task av_continue_2s --num 1024 --out runs/kf_pairs
    python benchmarks/grid_pairs.py --run runs/distill2 --task 'video:all,audio:0-1' 'audio:all,video:0-1' --num 1024 \
        --out runs/turn_pairs

``avdit distill``'s pairs hold the task mixture it was given (``--tasks``); a grid outside it is met only among the
random grids (``cells``). A joint stream's first window is drawn again given its own segment 0 of both modalities
(``SamplingConfig.keyframe_first``), the ``av_continue_2s`` grid, which the default mixture does not name; and a
student sampled in turns (the ``distilled`` preset) runs each modality with the other's latest sample given whole,
so a continuation's runs are on the grids 'video:all,audio:0-1' and 'audio:all,video:0-1', which no task of the
mixture is. Here the teacher (its own sampling, as the run's pairs were made) samples ``--num`` pairs of each
``--task`` on the run's clips (pair p made from clip p modulo their number, as the run's own pairs and the GAN term's
real clips have it), and OUT/pairs lists the run's pairs (linked) and these (the tasks' names added to the index's
task names). Then

    python benchmarks/dmd_variant.py --stage runs/distill2/student --pairs runs/kf_pairs/pairs --out OUT --steps 2600

goes on with the run's DMD stage on both. A shard written is kept: a rerun resumes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from avdit.codecs.shards import SHARD_INDEX, open_shards
from avdit.diffusion.sampling import SamplingConfig
from avdit.pipeline import Pipeline
from avdit.tasks.grid import get_task
from avdit.train.pairs import write_pair_shard
from avdit.utils.atomic import write_json

sys.path.insert(0, os.path.dirname(__file__))
from common import link_pairs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="the `avdit distill` run (RUN/student/pairs, its latents)")
    parser.add_argument("--task", required=True, nargs="+",
                        help="the task presets or grids of the pairs added (e.g. av_continue_2s 'video:all,audio:0-1')")
    parser.add_argument("--num", type=int, nargs="+", default=[1024], help="pairs added per task (default 1024)")
    parser.add_argument("--out", required=True, help="folder of the new pairs (OUT/pairs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    nums = args.num * len(args.task) if len(args.num) == 1 else args.num
    if len(nums) != len(args.task):
        raise SystemExit(f"--num: give one count, or one per task ({len(args.task)})")
    source = Path(args.run) / "student" / "pairs"
    pairs_out = Path(args.out) / "pairs"
    pairs_out.mkdir(parents=True, exist_ok=True)
    index = link_pairs(source, pairs_out)
    teacher = Pipeline.from_pretrained(index["teacher"])
    clips, _ = open_shards(index["data"])
    sampling = SamplingConfig.preset(index["teacher_sampling"])
    names, shards, chunk, made = list(index["task_names"]), list(index["shards"]), index["chunk"], 0
    for task, num in zip(args.task, nums):
        if task in names:
            raise SystemExit(f"{source} holds pairs of {task!r} already (or it is named twice); name another task")
        given = get_task(task, teacher.layout.num_segments).given  # (M, N)
        names.append(task)
        began = time.perf_counter()
        for start in tqdm(range(0, num, chunk), desc=f"{task} pairs", unit="shard"):
            name, count = f"shard_{len(shards):05d}.safetensors", min(chunk, num - start)
            added = len(shards) - len(index["shards"])  # the added shard's number: its seed
            shards.append({"file": name, "clips": count})
            if not (pairs_out / name).exists():  # pair p from clip p modulo their number (the GAN term's real clips)
                first_pair = index["pairs"] + made + start
                clean = clips.take(torch.arange(first_pair, first_pair + count) % len(clips))
                g = torch.Generator().manual_seed(args.seed * 100_003 + added)
                write_pair_shard(teacher, clean, given, len(names) - 1, sampling, g, pairs_out / name)
        made += num
        print(f"{num} pairs of {task} in {time.perf_counter() - began:.0f} s", flush=True)
    write_json(pairs_out / SHARD_INDEX, {**index, "shards": shards, "task_names": names,
                                         "pairs": index["pairs"] + made, "added": vars(args)})
    print(f"written {pairs_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
