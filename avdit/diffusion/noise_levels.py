"""MoNL: how the timestep grid t (B, M, N) is drawn during training (Sec. 3.2, Alg. 1 of the paper).

A reference grid t_ref has every element i.i.d. U{1..T}; each strategy ties elements of it:
vanilla t[m, n] = t_ref[0, 0]; per-modality t[m, n] = t_ref[m, 0]; per-segment t[m, n] = t_ref[0, n];
per-cell t[m, n] = t_ref[m, n]. The MoNL mixture picks one strategy per example.

Beyond the paper, a mixture may also hold tasks (``task:<name>``): such an example is drawn as the task-specific
conditional baseline, its given cells clean (t = 0, no loss) and its generated cells at one vanilla level, which
is exactly what the model sees when it is asked that task at inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
# ``tasks`` in a mixture: these, with equal shares of its weight (the grid's conditional tasks)
MIXTURE_TASKS = ("a2v", "v2a", "av_continue", "av_inpaint")
TASK_PREFIX = "task:"


class NoiseLevelError(ValueError):
    """A noise-level specification that cannot be parsed."""


@dataclass(frozen=True, eq=False)
class NoiseLevelSampler:
    """Draws t (B, M, N) in [0, T] from a weighted mixture of components, one per example.

    A component is a strategy name (t in [1, T]) or ``task:<task>``: that task's given cells at t = 0 (clean, no
    loss) and its generated cells at one level in [1, T] (the task-specific conditional baseline).
    """

    strategies: tuple[str, ...]
    weights: tuple[float, ...]
    num_segments: int
    timesteps: int = 1000
    _given: dict[str, torch.Tensor] = field(init=False, repr=False)  # task component -> (M, N) bool

    def __post_init__(self) -> None:
        given = {}
        for name in self.strategies:
            if name.startswith(TASK_PREFIX):
                try:
                    given[name] = get_task(name[len(TASK_PREFIX):], self.num_segments).given
                except TaskError as err:
                    raise NoiseLevelError(f"in noise levels component {name!r}: {err}") from None
            elif name not in STRATEGIES:
                raise NoiseLevelError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)} or task:<task>")
        object.__setattr__(self, "_given", given)
        if len(self.strategies) != len(self.weights) or not self.strategies:
            raise NoiseLevelError("need one weight per strategy and at least one strategy")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise NoiseLevelError(f"weights must be >= 0 with a positive sum, got {self.weights}")

    def _component(self, name: str, t_ref: torch.Tensor) -> torch.Tensor:
        if name in self._given:
            return _vanilla(t_ref).masked_fill(self._given[name].to(t_ref.device), 0)
        return STRATEGIES[name](t_ref)

    def __call__(
        self, batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return t (B, M, N) long and the component index of each example (B,) long."""
        shape = (batch, M, self.num_segments)
        t_ref = torch.randint(1, self.timesteps + 1, shape, generator=generator, device=device)  # (B, M, N)
        probs = torch.tensor(self.weights, dtype=torch.float64, device=device)
        choice = torch.multinomial(probs / probs.sum(), batch, replacement=True, generator=generator)  # (B,)
        candidates = torch.stack([self._component(s, t_ref) for s in self.strategies], dim=1)  # (B, K, M, N)
        return candidates[torch.arange(batch, device=device), choice], choice  # (B, M, N), (B,)


def _expand(name: str, weight: float) -> list[tuple[str, float]]:
    """One mixture entry -> its components: ``monl`` and ``tasks`` share their weight equally."""
    if name == "monl":
        return [(s, weight / len(STRATEGIES)) for s in STRATEGIES]
    if name == "tasks":
        return [(TASK_PREFIX + task, weight / len(MIXTURE_TASKS)) for task in MIXTURE_TASKS]
    return [(name, weight)]


def parse_noise_levels(spec: str, num_segments: int, timesteps: int = 1000) -> NoiseLevelSampler:
    """``monl`` (uniform mixture of the four), a strategy, ``task:<task>``, or a weighted mixture of those.

    A mixture is ``name=w,name=w,...``, where a name is a strategy, ``task:<task>``, ``monl`` (the four strategies,
    equal shares of w) or ``tasks`` (a2v, v2a, av_continue and av_inpaint, equal shares of w); a weight left out
    is 1. ``task:<task>`` alone is the task-specific conditional baseline; it may name any grid
    (``task:video:0-1,audio:0-1``), while a task inside a mixture must be written without commas.
    """
    spec = spec.strip()
    parts = [part.strip() for part in spec.split(",")]
    mixture_names = (*STRATEGIES, "monl", "tasks")
    if spec.startswith(TASK_PREFIX) and "=" not in spec and not any(
            part in mixture_names or part.startswith(TASK_PREFIX) for part in parts[1:]):
        return NoiseLevelSampler((spec,), (1.0,), num_segments, timesteps)  # one task, any grid
    merged: dict[str, float] = {}
    for part in parts:
        name, _, weight = part.partition("=")
        if name not in mixture_names and not name.startswith(TASK_PREFIX):
            raise NoiseLevelError(
                f"unknown noise-level strategy {name!r} in {spec!r}; use monl, tasks, task:<task>, one of "
                f"{', '.join(STRATEGIES)}, or a weighted mixture such as 'vanilla=0.25,per-cell=0.75'"
            )
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise NoiseLevelError(f"weight {weight!r} of {name!r} in {spec!r} is not a number") from None
        if value < 0:
            raise NoiseLevelError(f"weights must be >= 0, got {name}={weight} in {spec!r}")
        for component, share in _expand(name, value):
            merged[component] = merged.get(component, 0.0) + share
    return NoiseLevelSampler(tuple(merged), tuple(merged.values()), num_segments, timesteps)
