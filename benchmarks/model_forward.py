"""Forward-pass time of each AVDiT preset on this machine: batch 1 and 8, fp32 and bf16 autocast.

    python benchmarks/model_forward.py [--presets bt-tiny bt-small paper] [--batches 1 8]

Prints seconds per forward, achieved GFLOP/s and the ratio to this machine's matmul throughput (measured in
the same run, in the same precision).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import autocast, best_time, count_flops, matmul_gflops  # noqa: E402

from avdit.latents import AV  # noqa: E402
from avdit.model import AVDiT, get_preset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["bt-tiny", "bt-small", "paper"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    peak = {dtype: matmul_gflops(dtype) for dtype in (torch.float32, torch.bfloat16)}
    print(f"matmul 2048^3: fp32 {peak[torch.float32]:.0f} GFLOP/s, bf16 {peak[torch.bfloat16]:.0f} GFLOP/s\n")
    print(f"{'preset':<9}{'params':>12}{'batch':>6}{'dtype':>7}{'s/forward':>11}{'GFLOP':>9}{'GFLOP/s':>9}{'vs matmul':>10}")
    for name in args.presets:
        model = AVDiT(get_preset(name)).eval()
        for batch in args.batches:
            x = AV(torch.randn(batch, *model.video_shape), torch.randn(batch, *model.audio_shape))
            t = torch.randint(0, 1001, (batch, 2, model.config.layout.num_segments))
            for dtype in (torch.float32, torch.bfloat16):
                def forward():
                    with torch.no_grad(), autocast(dtype):
                        return model(x, t)

                flops = count_flops(forward)
                seconds = best_time(forward, repeats=args.repeats)
                rate = flops / seconds / 1e9
                print(f"{name:<9}{model.num_parameters():>12,}{batch:>6}{'bf16' if dtype == torch.bfloat16 else 'fp32':>7}{seconds:>11.4f}"
                      f"{flops / 1e9:>9.2f}{rate:>9.1f}{rate / peak[dtype]:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
