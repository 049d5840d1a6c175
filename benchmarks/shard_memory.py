"""Resident memory of the training latents as the data grows: the shard-backed store against all in memory.

    python benchmarks/shard_memory.py [--shards 4] [--clips 1024] [--batch 64] [--steps 50]

Writes --shards safetensors shards of --clips latents each (the bundled codecs' shapes: video (8, 6, 8, 8), audio
(16, 84); ``avdit encode``'s 1024 clips a shard), and ten times as many. Each configuration runs in its own process
(so its peak resident memory is its own): open the folder, then take --steps batches of --batch random clips as
`avdit train` does. Baseline, measured in the same run: ``load_shards``, every latent in memory (the loader the
trainer used before). "start" is the process's resident memory before it opens the folder (Python and torch),
"peak" its peak from then on, "above start" the difference: what the latents cost (Linux: read from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from common import run_isolated  # noqa: E402

from avdit.codecs.shards import SHARD_INDEX, load_shards, open_shards  # noqa: E402
from avdit.latents import AV  # noqa: E402
from avdit.train.data import draw_indices  # noqa: E402

VIDEO, AUDIO = (8, 6, 8, 8), (16, 84)  # one clip's latents from the bundled codecs


def write_shards(folder: Path, shards: int, clips: int) -> float:
    """``shards`` shards of ``clips`` random latents and their index; returns the data's MiB."""
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for i in range(shards):
        save_file({"video": torch.randn(clips, *VIDEO, generator=g), "audio": torch.randn(clips, *AUDIO, generator=g)},
                  folder / f"shard_{i:05d}.safetensors")
    index = {"complete": True, "clips": shards * clips,
             "shards": [{"file": f"shard_{i:05d}.safetensors", "clips": clips} for i in range(shards)]}
    (folder / SHARD_INDEX).write_text(json.dumps(index))
    return shards * clips * (torch.Size(VIDEO).numel() + torch.Size(AUDIO).numel()) * 4 / 2**20


def resident_mib(key: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), from Linux's /proc."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status[key].split()[0]) / 1024


def one(loader: str, folder: str, batch: int, steps: int) -> dict:
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from here: imports' peaks left out
    start_mib = resident_mib()
    opened = time.perf_counter()
    if loader == "memory":
        everything, _ = load_shards(folder)
        clips, take = everything.batch_size, lambda idx: AV(everything.video[idx], everything.audio[idx])
    else:
        store, _ = open_shards(folder)
        clips, take = len(store), store.take
    opened = time.perf_counter() - opened
    g = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(steps):
        take(draw_indices(clips, batch, g))
    seconds = (time.perf_counter() - started) / steps
    return {"open_s": opened, "ms_per_batch": seconds * 1e3, "start_mib": start_mib, "peak_mib": resident_mib("VmHWM"),
            "above_mib": resident_mib("VmHWM") - start_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4, help="shards at 1x (10x has ten times as many)")
    parser.add_argument("--clips", type=int, default=1024, help="clips a shard")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--one", nargs=2, metavar=("LOADER", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.batch, args.steps)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {scale: write_shards(Path(tmp) / f"{scale}x", scale * args.shards, args.clips) for scale in (1, 10)}
        print(f"latents video {VIDEO}, audio {AUDIO} a clip; {args.clips} clips a shard; {args.steps} batches of "
              f"{args.batch}\n")
        print(f"{'loader':<8}{'shards':>8}{'data MiB':>10}{'open s':>8}{'ms/batch':>10}{'start MiB':>11}"
              f"{'peak MiB':>10}{'above start':>13}")
        above = {}
        for loader in ("memory", "shards"):
            for scale, mib in sizes.items():
                r = run_isolated(__file__, loader, str(Path(tmp) / f"{scale}x"), "--batch", str(args.batch),
                                 "--steps", str(args.steps))
                above[loader, scale] = r["above_mib"]
                print(f"{loader:<8}{scale * args.shards:>8}{mib:>10.0f}{r['open_s']:>8.2f}{r['ms_per_batch']:>10.2f}"
                      f"{r['start_mib']:>11.0f}{r['peak_mib']:>10.0f}{r['above_mib']:>13.1f}", flush=True)
    print(f"\nabove start, 10x against 1x: memory {above['memory', 10] / above['memory', 1]:.1f}x, shards "
          f"{above['shards', 10] / max(above['shards', 1], 0.1):.1f}x; at 10x the shards store holds "
          f"{above['shards', 10] / above['memory', 10]:.3f} of the in-memory loader's")


if __name__ == "__main__":
    main()
