"""MoNL: how the timestep grid t (B, M, N) is drawn during training (Sec. 3.2, Alg. 1 of the paper).

A reference grid t_ref has every element i.i.d. U{1..T}; each strategy ties elements of it:
vanilla t[m, n] = t_ref[0, 0]; per-modality t[m, n] = t_ref[m, 0]; per-segment t[m, n] = t_ref[0, n];
per-cell t[m, n] = t_ref[m, n]. The MoNL mixture picks one strategy per example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from avdit.layout import M
from avdit.tasks import TaskError, get_task


def _vanilla(t_ref: torch.Tensor) -> torch.Tensor:
    return t_ref[:, :1, :1].expand_as(t_ref)


def _per_modality(t_ref: torch.Tensor) -> torch.Tensor:
    return t_ref[:, :, :1].expand_as(t_ref)


def _per_segment(t_ref: torch.Tensor) -> torch.Tensor:
    return t_ref[:, :1, :].expand_as(t_ref)


def _per_cell(t_ref: torch.Tensor) -> torch.Tensor:
    return t_ref


STRATEGIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "vanilla": _vanilla,
    "per-modality": _per_modality,
    "per-segment": _per_segment,
    "per-cell": _per_cell,
}


class NoiseLevelError(ValueError):
    """A noise-level specification that cannot be parsed."""


@dataclass(frozen=True, eq=False)
class NoiseLevelSampler:
    """Draws t (B, M, N) in [1, T] from a weighted mixture of strategies; given cells (if any) at 0.

    ``given`` (M, N) bool makes the task-specific conditional baseline: those cells are clean (t = 0).
    """

    strategies: tuple[str, ...]
    weights: tuple[float, ...]
    num_segments: int
    timesteps: int = 1000
    given: torch.Tensor | None = None  # (M, N) bool

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise NoiseLevelError(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
        if len(self.strategies) != len(self.weights) or not self.strategies:
            raise NoiseLevelError("need one weight per strategy and at least one strategy")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise NoiseLevelError(f"weights must be >= 0 with a positive sum, got {self.weights}")

    def __call__(
        self, batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return t (B, M, N) long and the strategy index of each example (B,) long."""
        shape = (batch, M, self.num_segments)
        t_ref = torch.randint(1, self.timesteps + 1, shape, generator=generator, device=device)  # (B, M, N)
        probs = torch.tensor(self.weights, dtype=torch.float64, device=device)
        choice = torch.multinomial(probs / probs.sum(), batch, replacement=True, generator=generator)  # (B,)
        candidates = torch.stack([STRATEGIES[s](t_ref) for s in self.strategies], dim=1)  # (B, K, M, N)
        t = candidates[torch.arange(batch, device=device), choice]  # (B, M, N)
        if self.given is not None:
            t = t.masked_fill(self.given.to(device), 0)
        return t, choice

    def describe(self) -> str:
        total = sum(self.weights)
        mix = ", ".join(f"{s}={w / total:.3g}" for s, w in zip(self.strategies, self.weights))
        return mix + (" with given cells clean" if self.given is not None else "")


def parse_noise_levels(spec: str, num_segments: int, timesteps: int = 1000) -> NoiseLevelSampler:
    """``monl`` (uniform mixture of the four), a strategy name, ``name=w,name=w`` or ``task:<task>``.

    ``task:<task>`` is the task-specific conditional baseline: the task's given cells at t = 0, the rest vanilla.
    """
    spec = spec.strip()
    names = ", ".join(STRATEGIES)
    if spec == "monl":
        return NoiseLevelSampler(tuple(STRATEGIES), (1.0,) * len(STRATEGIES), num_segments, timesteps)
    if spec.startswith("task:"):
        try:
            task = get_task(spec[len("task:"):], num_segments)
        except TaskError as err:
            raise NoiseLevelError(f"in noise levels {spec!r}: {err}") from None
        return NoiseLevelSampler(("vanilla",), (1.0,), num_segments, timesteps, given=task.given)
    strategies, weights = [], []
    for part in spec.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in STRATEGIES:
            raise NoiseLevelError(
                f"unknown noise-level strategy {name!r} in {spec!r}; use monl, task:<task>, one of {names}, "
                "or a weighted mixture such as 'vanilla=0.25,per-cell=0.75'"
            )
        try:
            strategies.append(name)
            weights.append(float(weight) if weight else 1.0)
        except ValueError:
            raise NoiseLevelError(f"weight {weight!r} of {name!r} in {spec!r} is not a number") from None
    return NoiseLevelSampler(tuple(strategies), tuple(weights), num_segments, timesteps)
