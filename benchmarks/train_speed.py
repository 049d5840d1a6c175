"""Training throughput on this machine: samples/s, achieved GFLOP/s and peak memory per preset and precision.

    python benchmarks/train_speed.py [--presets bt-small bt-medium 30-minute] [--batch 32] [--steps 10] [--compile]
                                     [--device cuda]

Each configuration runs in its own process (so its peak resident memory is its own). One training step is the
MoNL loss (forward), backward and AdamW on random latents; FLOPs are counted by torch's FlopCounterMode. The
baseline is this machine's square-matmul throughput in the same precision, measured in the same run. "bound" is
the most the step could reach against it with these matmul kernels: its FLOPs over the time of its own matmuls
(every mm/addmm/bmm it runs, forward and backward, recorded and run again alone at their best), as if all its other
work (norms, activations, casts, the optimizer) took no time. With
``--compile`` every configuration is also measured with the model under ``torch.compile`` (``avdit train --compile``).
With ``--device cuda`` it runs on the GPU: the baseline is that GPU's matmul, peak memory is allocated GPU memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import (autocast, count_flops, matmul_peaks, matmul_seconds, peak_memory_mib,  # noqa: E402
                    reset_peak_memory, run_isolated, synchronize)

from avdit.diffusion import diffusion_loss, parse_noise_levels, reduce_loss  # noqa: E402
from avdit.latents import AV  # noqa: E402
from avdit.model import AVDiT, get_preset  # noqa: E402
from avdit.model.config import parse_model_overrides  # noqa: E402
from avdit.train.config import RECIPES, TrainConfig  # noqa: E402
from avdit.train.loop import make_optimizer  # noqa: E402

# a larger preset for the comparison: twice the width of bt-small
EXTRA = {"bt-medium": ("bt-small", dict(width=512, depth=8, heads=8))}
# and the network of each training recipe (`avdit train --recipe NAME`; its batch is --batch here)
EXTRA.update({name: (settings["preset"], parse_model_overrides(settings.get("model", "")))
              for name, (_, settings) in RECIPES.items()})


def one(preset: str, precision: str, batch: int, steps: int, compiled: bool, device: str = "cpu") -> dict:
    torch.manual_seed(0)
    base, overrides = EXTRA.get(preset, (preset, {}))
    model = AVDiT(get_preset(base, **overrides)).to(device)
    layout = model.config.layout
    optimizer = make_optimizer(model, TrainConfig(lr=1e-4))  # the trainer's
    levels = parse_noise_levels("monl", layout.num_segments)
    x0 = AV(torch.randn(batch, *model.video_shape, device=device),
            torch.randn(batch, *model.audio_shape, device=device))
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    g = torch.Generator().manual_seed(0)
    net = model

    def step():
        t, _ = levels(batch, g)
        t = t.to(device)
        with autocast(dtype, device):
            loss = reduce_loss(diffusion_loss(net, x0, t, layout, generator=g), t, layout).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    flops = count_flops(step)  # counted eagerly: compiling changes how the FLOPs run, not how many
    matmul_s, _ = matmul_seconds(step)  # the step's matmuls alone, each at its best
    gc.collect()
    reset_peak_memory(device)  # the count keeps every activation alive: not what a training step needs
    if compiled:
        net = torch.compile(model)
    step()  # warm-up (and compilation)
    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    return {"preset": preset, "params": model.num_parameters(), "precision": precision, "batch": batch,
            "s_per_step": seconds, "samples_per_s": batch / seconds, "gflops": flops / seconds / 1e9,
            "matmul_gflops": flops / matmul_s / 1e9, "peak_mib": peak_memory_mib(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["bt-small", "bt-medium"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also measure each configuration under torch.compile")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--one", nargs=3, metavar=("PRESET", "PRECISION", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.batch, args.steps, args.one[2] == "compiled",
                             args.device)))
        return
    peak = matmul_peaks(f"batch {args.batch}", args.device)
    print(f"{'preset':<10}{'params':>12}{'dtype':>6}{'mode':>10}{'s/step':>9}{'samples/s':>11}{'GFLOP/s':>9}"
          f"{'vs matmul':>10}{'bound':>7}{'peak MiB':>10}")
    modes = ("eager", "compiled") if args.compile else ("eager",)
    for preset in args.presets:
        for precision in args.precisions:
            for mode in modes:
                r = run_isolated(__file__, preset, precision, mode, "--batch", str(args.batch), "--steps",
                                 str(args.steps), "--device", args.device)
                print(f"{preset:<10}{r['params']:>12,}{precision:>6}{mode:>10}{r['s_per_step']:>9.3f}"
                      f"{r['samples_per_s']:>11.1f}{r['gflops']:>9.1f}{r['gflops'] / peak[precision]:>10.2f}"
                      f"{r['matmul_gflops'] / peak[precision]:>7.2f}{r['peak_mib']:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
