"""MoNL: how the timestep grid t (B, M, N) is drawn during training (Sec. 3.2, Alg. 1 of the paper).

A reference grid t_ref has every element i.i.d. U{1..T}; each strategy ties elements of it:
vanilla t[m, n] = t_ref[0, 0]; per-modality t[m, n] = t_ref[m, 0]; per-segment t[m, n] = t_ref[0, n];
per-cell t[m, n] = t_ref[m, n]. The MoNL mixture picks one strategy per example.

Beyond the paper, a mixture may also hold tasks (``task:<name>``): such an example is drawn as the task-specific
conditional baseline, its given cells clean (t = 0, no loss) and its generated cells at one vanilla level, which
is exactly what the model sees when it is asked that task at inference. A mixture may also move over a run: from
its weights at the start to ``final_weights`` at the end, linearly in the run's progress.
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
    loss) and its generated cells at one level in [1, T] (the task-specific conditional baseline). With
    ``final_weights`` the mixture moves linearly from ``weights`` (progress 0) to them (progress 1).
    """

    strategies: tuple[str, ...]
    weights: tuple[float, ...]
    num_segments: int
    timesteps: int = 1000
    final_weights: tuple[float, ...] | None = None
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
        if not self.strategies:
            raise NoiseLevelError("need at least one strategy")
        for weights in (self.weights, self.final_weights or self.weights):
            if len(weights) != len(self.strategies) or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise NoiseLevelError(f"need one weight >= 0 per strategy with a positive sum, got {weights}")

    def probabilities(self, progress: float = 0.0) -> torch.Tensor:
        """(K,) float64: each component's share of the examples at ``progress`` (0 = start, 1 = end of the run)."""
        start = torch.tensor(self.weights, dtype=torch.float64)
        start = start / start.sum()
        if self.final_weights is None:
            return start
        end = torch.tensor(self.final_weights, dtype=torch.float64)
        p = min(max(float(progress), 0.0), 1.0)
        return (1 - p) * start + p * end / end.sum()

    def _component(self, name: str, t_ref: torch.Tensor) -> torch.Tensor:
        if name in self._given:
            return _vanilla(t_ref).masked_fill(self._given[name].to(t_ref.device), 0)
        return STRATEGIES[name](t_ref)

    def __call__(
        self, batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
        progress: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return t (B, M, N) long and the component index of each example (B,) long, drawn with the mixture's
        shares at ``progress`` (the fraction of the run done)."""
        shape = (batch, M, self.num_segments)
        t_ref = torch.randint(1, self.timesteps + 1, shape, generator=generator, device=device)  # (B, M, N)
        probs = self.probabilities(progress).to(device)  # (K,)
        choice = torch.multinomial(probs, batch, replacement=True, generator=generator)  # (B,)
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


def parse_noise_level_curriculum(start: str, final: str | None, num_segments: int,
                                 timesteps: int = 1000) -> NoiseLevelSampler:
    """The mixture ``start`` at the beginning of a run, moving linearly to ``final`` at its end (None: fixed).

    E.g. start ``monl=0.7,task:a2v=0.3`` and final ``monl``: the a2v share falls from 30 % to 0 over the run.
    """
    first = parse_noise_levels(start, num_segments, timesteps)
    if final is None:
        return first
    last = parse_noise_levels(final, num_segments, timesteps)
    names = first.strategies + tuple(s for s in last.strategies if s not in first.strategies)

    def weights(sampler: NoiseLevelSampler) -> tuple[float, ...]:  # over ``names``, 0 where the sampler lacks one
        share = dict(zip(sampler.strategies, sampler.weights))
        return tuple(share.get(name, 0.0) for name in names)

    return NoiseLevelSampler(names, weights(first), num_segments, timesteps, final_weights=weights(last))
