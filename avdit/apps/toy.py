"""A demonstration that needs no trained weights: every task on Gaussian latents with a known answer.

A perfect MoNL denoiser for Gaussian latents is known in closed form (``GaussianOracle``). Running each task
preset through the same sampler as the real model shows "a task is just a mask": the samples must follow
the analytic conditional distribution of the generated cells given the given ones.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from avdit.diffusion import SamplingConfig, generate_latents
from avdit.diffusion.gaussian import GaussianOracle, random_gaussian
from avdit.layout import BOUNCING_TONES
from avdit.tasks import TASK_PRESETS, get_task

# Small latents so the exact denoiser (a linear solve per example and step) stays cheap.
TOY_LAYOUT = dataclasses.replace(BOUNCING_TONES, height=8, width=8, audio_hop=2000)


def run_toy_demo(num: int = 1000, steps: int = 100, seed: int = 0) -> int:
    if num < 10 or steps < 1:
        raise ValueError(f"the toy demo needs num >= 10 and steps >= 1, got num={num}, steps={steps}")
    g = torch.Generator().manual_seed(seed)
    sampling = SamplingConfig(sampler="ddim", steps=steps, guidance=0.0, order="together")  # the exact posterior's
    mean, cov = random_gaussian(TOY_LAYOUT, 1, 1, rank=3, generator=g)
    oracle = GaussianOracle(mean, cov, TOY_LAYOUT)
    print(f"Gaussian latents: {mean.flatten().shape[1]} dims over a 2 x {TOY_LAYOUT.num_segments} task grid; "
          f"{num} samples per task, {steps} DDIM steps, exact MoNL denoiser\n")
    print(f"{'task':<16}{'given cells':>12}{'mean error (sd)':>17}{'variance ratio':>16}{'seconds':>9}")
    worst = 0.0
    for name in TASK_PRESETS:
        task = get_task(name, TOY_LAYOUT.num_segments)
        reference = oracle.sample(1, g)
        clean = reference.map(lambda p: p.expand(num, *p.shape[1:]).clone())
        start = time.perf_counter()
        out = generate_latents(oracle, clean, task.given, TOY_LAYOUT, sampling, generator=g)
        elapsed = time.perf_counter() - start
        given = TOY_LAYOUT.cells_to_latents(task.given[None]).map(lambda m, p: m.expand_as(p), mean).flatten()[0]
        mu, cov_u = oracle.conditional(given, reference.flatten()[0][given])
        generated = out.flatten().double()[:, ~given]
        sd = cov_u.diagonal().sqrt()
        error = ((generated.mean(0) - mu).abs() / sd).max().item()
        ratio = torch.cov(generated.T).diagonal() / cov_u.diagonal()
        worst = max(worst, error)
        print(f"{name:<16}{int(task.given.sum()):>12}{error:>17.3f}{ratio.min().item():>8.2f}-{ratio.max().item():<7.2f}"
              f"{elapsed:>9.1f}")
    print("\nmean error: largest |sample mean - analytic conditional mean| in conditional standard deviations;"
          "\nvariance ratio: sample / analytic conditional variance (1 = exact).")
    return 0 if worst < 0.25 else 1
