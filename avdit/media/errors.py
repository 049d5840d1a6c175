"""One error type for every media problem, naming the file and what is wrong with it."""

from __future__ import annotations

import os


class MediaError(ValueError):
    """A file that cannot be read or written as asked; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")
