"""What every resumable avdit run checks before it goes on: the settings it was started with are the ones given now."""

from __future__ import annotations

import json
from pathlib import Path


def differences(there: dict, now: dict, ignore=()) -> str:
    """'key: old there, new now, ...' for every key of ``now`` whose value differs from ``there``'s; '' if none."""
    return ", ".join(f"{k}: {there.get(k)!r} there, {v!r} now" for k, v in sorted(now.items())
                     if k not in ignore and there.get(k) != v)


def check_same_settings(path: Path, now: dict, free=(), error: type = ValueError) -> None:
    """Refuse to resume the run whose settings are saved in ``path`` (JSON) with other settings ``now``; the keys in
    ``free`` may change."""
    if not path.exists():
        return
    details = differences(json.loads(path.read_text()), now, ignore=free)
    if details:
        raise error(f"{path.parent} holds a run made with other settings ({details}); rerun with the same settings "
                    "to resume (steps= may grow), or choose a new out=")
