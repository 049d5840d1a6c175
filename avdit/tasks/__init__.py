"""Tasks as boolean grids of given cells."""

from avdit.tasks.grid import PRESETS, Task, TaskError, get_task, parse_grid, preset

__all__ = ["PRESETS", "Task", "TaskError", "get_task", "parse_grid", "preset"]
