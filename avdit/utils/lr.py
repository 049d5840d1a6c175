"""The learning-rate schedule every avdit trainer uses: linear warm-up, then cosine decay to zero."""

from __future__ import annotations

import math


def warmup_cosine(step: int, peak: float, warmup: int, total: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based): ``peak * (step + 1) / warmup`` while warming up, then
    a half cosine from ``peak`` to 0 over the remaining ``total - warmup`` steps (0 from ``total`` on). The paper
    trains with 5k warm-up steps and cosine decay (App. B)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * 0.5 * (1 + math.cos(math.pi * progress))
