"""Few-step samplers against the exact answer: the Gaussian oracle's probability-flow ODE map, in closed form.

For x0 ~ N(mu, Sigma) (``GaussianOracle``), the probability-flow ODE from level T to 0 is a known linear map
(``GaussianOracle.ode_map``; with given cells, that of the conditional Gaussian of the generated elements).
Every deterministic sampler approximates this map, so its error at S steps is measured directly (RMS over
draws, relative to the RMS of the exact output).

    python benchmarks/samplers_oracle.py            # about a minute on one CPU core
"""

from __future__ import annotations

import dataclasses

import torch

from avdit.diffusion import DEFAULT_SCHEDULE, generate_latents, initial_latents
from avdit.diffusion.gaussian import GaussianOracle, random_gaussian
from avdit.layout import BOUNCING_TONES
from avdit.tasks import get_task
from avdit.diffusion import SamplingConfig

LAYOUT = dataclasses.replace(BOUNCING_TONES, height=8, width=8, audio_hop=2000)  # 1x1 video latents, 17 audio


def ode_error(sampler: str, steps: int, spacing: str, task: str = "joint", batch: int = 64, seed: int = 0,
              pyramid_lag: int = 0, guidance: float = 0.0) -> float:
    """Relative RMS distance of ``sampler``'s samples from the exact ODE map (same x_T), one Gaussian and task."""
    g = torch.Generator().manual_seed(seed)
    mean, cov = random_gaussian(LAYOUT, 1, 1, rank=4, generator=g)
    oracle = GaussianOracle(mean, cov, LAYOUT)
    given = get_task(task, LAYOUT.num_segments).given
    reference = oracle.sample(1, g).map(lambda p: p.expand(batch, *p.shape[1:]).clone())
    # the sampler's first latents (pure noise at T on generated cells), drawn as generate_latents draws them
    first = torch.where(given, 0, DEFAULT_SCHEDULE.T).expand(batch, -1, -1)  # (B, M, N)
    x_T = initial_latents(reference, first, LAYOUT, DEFAULT_SCHEDULE, torch.Generator().manual_seed(seed + 1))
    out = generate_latents(oracle, reference, given, LAYOUT,
                           SamplingConfig(sampler=sampler, steps=steps, spacing=spacing, guidance=guidance,
                                          order="together", pyramid_lag=pyramid_lag),
                           generator=torch.Generator().manual_seed(seed + 1)).flatten().double()
    given_elements = LAYOUT.cells_to_latents(given[None]).map(lambda m, p: m.expand_as(p), mean).flatten()[0]
    exact = oracle.ode_map(x_T.flatten(), given_elements, reference.flatten()[0][given_elements])
    diff = out[:, ~given_elements] - exact
    return (diff.pow(2).mean().sqrt() / exact.pow(2).mean().sqrt()).item()


def main() -> None:
    rows = [("ddim", s, "uniform") for s in (8, 10, 12, 25, 50)]
    rows += [("dpmpp2m", s, sp) for sp in ("uniform", "lambda", "karras") for s in (8, 10, 12)]
    tasks = ("joint", "a2v", "av_continue")
    print("| sampler | steps | spacing | " + " | ".join(tasks) + " |")
    print("|---|---:|---|" + "---:|" * len(tasks))
    for sampler, steps, spacing in rows:
        errors = [ode_error(sampler, steps, spacing, task) for task in tasks]
        print(f"| {sampler} | {steps} | {spacing} | " + " | ".join(f"{e:.4f}" for e in errors) + " |")


if __name__ == "__main__":
    main()
