"""A task is a boolean grid over (modality, segment): True = given (clean), False = generated.

Named tasks are presets; any grid is allowed, written for the command line as e.g. ``video:0-1,audio:0-1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch

from avdit.layout import AUDIO, MODALITIES, VIDEO, M


class TaskError(ValueError):
    """A task name or grid that cannot be used."""


@dataclass(frozen=True)
class Task:
    """Which cells are given. ``given`` is a bool tensor (M, N)."""

    name: str
    given: torch.Tensor  # (M, N) bool

    @property
    def num_segments(self) -> int:
        return self.given.shape[1]

    @property
    def generated(self) -> torch.Tensor:
        return ~self.given  # (M, N)

    def generated_modalities(self) -> list[int]:
        """Modalities with at least one generated cell."""
        return [m for m in range(M) if bool(self.generated[m].any())]

    def spec(self) -> str:
        """The grid written in the parser's syntax (``joint`` gives nothing)."""
        parts = []
        for m, modality in enumerate(MODALITIES):
            segments = [n for n in range(self.num_segments) if self.given[m, n]]
            if segments:
                parts.append(f"{modality}:" + "+".join(str(n) for n in segments))
        return ",".join(parts) or "joint"

    def __str__(self) -> str:
        rows = []
        for m, modality in enumerate(MODALITIES):
            cells = " ".join("G" if self.given[m, n] else "." for n in range(self.num_segments))
            rows.append(f"{modality:>5} {cells}")
        return f"{self.name} (G = given, . = generated)\n" + "\n".join(rows)


def _grid(num_segments: int, cells: list[tuple[int, int]]) -> torch.Tensor:
    given = torch.zeros(M, num_segments, dtype=torch.bool)
    for m, n in cells:
        given[m, n] = True
    return given


def _both(*segments: int) -> list[tuple[int, int]]:
    return [(m, n) for m in range(M) for n in segments]


# name -> (description, cells given as a function of N)
TASK_PRESETS: dict[str, tuple[str, Callable[[int], list[tuple[int, int]]]]] = {
    "joint": ("generate video and audio together, nothing given", lambda n: []),
    "a2v": ("audio given, generate the video", lambda n: [(AUDIO, s) for s in range(n)]),
    "v2a": ("video given, generate the audio", lambda n: [(VIDEO, s) for s in range(n)]),
    "av_continue": ("segments 0-1 of both given, generate the rest", lambda n: _both(0, 1)),
    "av_inpaint": ("first and last segment of both given, generate the middle", lambda n: _both(0, n - 1)),
    "av_continue_2s": ("segment 0 (the first frame) of both given, generate the rest", lambda n: _both(0)),
}

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def preset(name: str, num_segments: int) -> Task:
    if name not in TASK_PRESETS:
        raise TaskError(f"unknown task {name!r}; presets: {', '.join(TASK_PRESETS)}, or a grid like 'video:0-1,audio:0-1'")
    if num_segments < 3:
        raise TaskError(f"the task presets need at least 3 segments, the layout has {num_segments}")
    return Task(name, _grid(num_segments, TASK_PRESETS[name][1](num_segments)))


def parse_grid(spec: str, num_segments: int) -> Task:
    """Parse ``MOD:SEGS[,MOD:SEGS...]`` where SEGS is ``all``, ``n``, ``a-b`` or several joined by ``+``.

    Example: ``video:0-1,audio:0-1`` gives the first two segments of both modalities.
    """
    hint = "write e.g. 'video:0-1,audio:0-1' (segments are 0-based, ranges inclusive, '+' joins, 'all')"
    if not spec or not spec.strip():
        raise TaskError(f"empty task grid; {hint}")
    cells: list[tuple[int, int]] = []
    for part in spec.split(","):
        if ":" not in part:
            raise TaskError(f"malformed task grid {spec!r}: {part.strip()!r} has no ':'; {hint}")
        modality, segments = (s.strip() for s in part.split(":", 1))
        if modality not in MODALITIES:
            raise TaskError(f"unknown modality {modality!r} in task grid {spec!r}; use one of {', '.join(MODALITIES)}")
        m = MODALITIES.index(modality)
        for item in segments.split("+"):
            item = item.strip()
            if item == "all":
                cells += [(m, n) for n in range(num_segments)]
                continue
            match = _RANGE.match(item)
            if not match:
                raise TaskError(f"malformed segments {item!r} in task grid {spec!r}; {hint}")
            lo = int(match.group(1))
            hi = int(match.group(2)) if match.group(2) is not None else lo
            if lo > hi:
                raise TaskError(f"empty segment range {item!r} in task grid {spec!r} (start > end)")
            if hi >= num_segments:
                raise TaskError(
                    f"segment {hi} out of range in task grid {spec!r}: this layout has segments 0-{num_segments - 1}"
                )
            cells += [(m, n) for n in range(lo, hi + 1)]
    return Task(spec, _grid(num_segments, cells))


def get_task(name_or_spec: str, num_segments: int) -> Task:
    """A preset by name, or a grid in the parser's syntax. A grid that gives every cell is refused."""
    is_grid = ":" in name_or_spec or not name_or_spec.strip()
    task = parse_grid(name_or_spec, num_segments) if is_grid else preset(name_or_spec, num_segments)
    if bool(task.given.all()):
        raise TaskError(f"task {name_or_spec!r} gives every cell: there is nothing left to generate")
    return task
