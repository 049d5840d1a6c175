"""A checkpoint whose weights are the mean of others' (a "model soup", Wortsman et al. 2022): two stages of one
run, e.g. a distilled student after 1,600 and 2,600 DMD steps, averaged as an EMA over that stretch would.

    python benchmarks/average_weights.py runs/distill2/student/dmd runs/dmd_more/dmd --out runs/soup

The checkpoints must hold the same network (the same config and tensors). The result keeps the last one's
``model.json`` (so a student stays a student) with what it was made from.
"""

from __future__ import annotations

import argparse
import sys

import torch

from avdit.model import checkpoint
from avdit.model.config import AVDiTConfig


def average(folders: list[str]) -> tuple[AVDiTConfig, dict[str, torch.Tensor]]:
    """The config of ``folders`` and the mean of their weights (in float32, stored in the first one's dtypes)."""
    configs, states = zip(*(checkpoint.read(f) for f in folders))
    for folder, config, state in zip(folders[1:], configs[1:], states[1:]):
        if config != configs[0] or state.keys() != states[0].keys():
            raise SystemExit(f"{folder} does not hold the network of {folders[0]}: only one run's stages average")
    mean = {k: (sum(s[k].float() for s in states) / len(states)).to(states[0][k].dtype) for k in states[0]}
    return configs[0], mean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders of one network")
    parser.add_argument("--out", required=True, help="folder for the averaged checkpoint")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        parser.error("give two checkpoints or more")
    config, state = average(args.checkpoints)
    info = checkpoint.read_info(args.checkpoints[-1])
    info["averaged_from"] = list(args.checkpoints)
    checkpoint.write(args.out, config, state, info)
    print(f"{args.out}: the mean of {len(args.checkpoints)} checkpoints' weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
