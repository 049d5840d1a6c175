"""Tasks as boolean grids of given cells."""

from avdit.tasks.grid import TASK_PRESETS, Task, TaskError, get_task, parse_grid, preset

__all__ = ["TASK_PRESETS", "Task", "TaskError", "get_task", "parse_grid", "preset"]
