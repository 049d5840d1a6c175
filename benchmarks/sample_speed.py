"""Sampling speed on this machine: seconds per clip at 50 and 250 DDIM steps, and at 12 DPM-Solver++(2M) steps
(the few-step sampler, docs/sampling.md) against 50 DDIM steps, per preset, batch and precision.

    python benchmarks/sample_speed.py [--presets bt-small paper] [--batches 1 8] [--measure-steps 10] [--device cuda]

Each configuration runs in its own process (its peak resident memory is its own) with random weights. The
sampler is timed over ``--measure-steps`` DDIM steps of the joint task; its cost is linear in the step count,
so 50 and 250 steps are that per-step time times the steps, plus the codec decode of the bundled Bouncing
Tones codecs where the preset's latents fit them (timed once per batch). Each step is set against one
forward pass's FLOPs (counted by torch) and this machine's matmul throughput in the same precision, measured
in the same run. With ``--device cuda`` the sampler runs on the GPU (the codecs decode on the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import autocast, count_flops, matmul_peaks, peak_memory_mib, run_isolated, synchronize  # noqa: E402

from avdit.codecs.interface import bundled_codecs_dir, load_codecs  # noqa: E402
from avdit.diffusion import generate_latents  # noqa: E402
from avdit.latents import AV  # noqa: E402
from avdit.model import AVDiT, get_preset  # noqa: E402
from avdit.tasks import get_task  # noqa: E402
from avdit.diffusion import SamplingConfig


FEW_STEP_SAMPLER, FEW_STEPS = "dpmpp2m", 12  # the few-step setting set against 50 DDIM steps


def one(preset: str, precision: str, batch: int, steps: int, device: str = "cpu") -> dict:
    torch.manual_seed(0)
    model = AVDiT(get_preset(preset)).eval().to(device)
    layout = model.config.layout
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    clean = AV(torch.zeros(batch, *model.video_shape, device=device),
               torch.zeros(batch, *model.audio_shape, device=device))
    given = get_task("joint", layout.num_segments).given
    t = torch.full((batch, 2, layout.num_segments), 500, device=device)

    def forward():
        with torch.no_grad(), autocast(dtype, device):
            return model(clean, t)

    def sample(n, sampler="ddim"):
        with torch.no_grad(), autocast(dtype, device):
            return generate_latents(model, clean, given, layout,
                                    SamplingConfig(sampler=sampler, steps=n, guidance=0.0, order="together"),
                                    generator=torch.Generator().manual_seed(0))

    def seconds_per_step(sampler: str) -> tuple[float, AV]:
        sample(2, sampler)  # warm-up
        synchronize(device)
        start = time.perf_counter()
        out = sample(steps, sampler).map(lambda part: part.float().cpu())
        return (time.perf_counter() - start) / steps, out

    flops = count_flops(forward)
    per_step, latents = seconds_per_step("ddim")
    few_per_step, _ = seconds_per_step(FEW_STEP_SAMPLER)
    decode = float("nan")
    codecs = load_codecs(bundled_codecs_dir())
    if codecs.layout == layout and latents.video.shape[1] == codecs.video.config.latent_channels \
            and latents.audio.shape[1] == codecs.audio.config.latent_channels:
        codecs.decode(latents)
        start = time.perf_counter()
        codecs.decode(latents)
        decode = time.perf_counter() - start
    return {"preset": preset, "params": model.num_parameters(), "precision": precision, "batch": batch,
            "s_per_step": per_step, "few_s_per_step": few_per_step, "decode_s": decode, "gflop_per_step": flops / 1e9,
            "peak_mib": peak_memory_mib(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["bt-small", "paper"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--measure-steps", type=int, default=10, help="DDIM steps actually timed (default 10)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--one", nargs=3, metavar=("PRESET", "PRECISION", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], int(args.one[2]), args.measure_steps, args.device)))
        return
    peak = matmul_peaks(f"{args.measure_steps} steps timed", args.device)
    print(f"{'preset':<9}{'params':>12}{'batch':>6}{'dtype':>6}{'s/step':>9}{'s/clip@50':>11}{'s/clip@250':>12}"
          f"{'s/clip@' + str(FEW_STEPS) + '*':>12}{'vs 50':>7}{'GFLOP/step':>11}{'GFLOP/s':>9}{'vs matmul':>10}"
          f"{'peak MiB':>10}")
    for preset in args.presets:
        for batch in args.batches:
            for precision in ("fp32", "bf16"):
                r = run_isolated(__file__, preset, precision, str(batch), "--measure-steps", str(args.measure_steps),
                                 "--device", args.device)
                decode = 0.0 if r["decode_s"] != r["decode_s"] else r["decode_s"]  # nan: latents only
                per_clip = {s: (r["s_per_step"] * s + decode) / batch for s in (50, 250)}
                few = (r["few_s_per_step"] * FEW_STEPS + decode) / batch
                rate = r["gflop_per_step"] / r["s_per_step"]
                print(f"{preset:<9}{r['params']:>12,}{batch:>6}{precision:>6}{r['s_per_step']:>9.3f}"
                      f"{per_clip[50]:>11.2f}{per_clip[250]:>12.2f}{few:>12.2f}{few / per_clip[50]:>7.2f}"
                      f"{r['gflop_per_step']:>11.2f}{rate:>9.1f}{rate / peak[precision]:>10.2f}{r['peak_mib']:>10.0f}",
                      flush=True)
    print("\ns/clip includes the bundled codecs' decode where the preset's latents fit them (bt-small); "
          "the paper preset's figures are the sampler alone.\n"
          f"* {FEW_STEPS} {FEW_STEP_SAMPLER} steps, timed as DDIM is; 'vs 50': against 50 DDIM "
          "steps in the same run.")


if __name__ == "__main__":
    main()
