"""Does a student keep the teacher's bars? Two ``avdit evaluate`` results (same clips: same ``--num`` and ``--seed``),
each task's colour = pitch, sync both ways and onset F1 against the teacher's less 1 point, plus 5 ms, less 0.03
(the distillation goal, docs/distillation.md), joint's class mix against the teacher's less 0.05 (colour = pitch
alone passes a student that draws a few of the eight classes only) and the share of frames with one disc against the
teacher's less 1 point (nor does it see a second disc beside the first).

    python benchmarks/student_bars.py runs/distill/eval [more students] --teacher runs/teacher_eval [more of its]

Prints one table per student: its figure, the bar, and ``ok`` or ``MISS``; exits 1 if any student misses a bar.
The teacher's results must hold every task a student's do, on the same clips (their settings' seed and num agree).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# (results key, label, tolerance, direction): a student keeps a bar when its figure is at most `tolerance` worse.
BARS = (("identity_agreement", "colour = pitch", 0.01, "higher"),
        ("sync_error_ms", "impact→onset ms", 5.0, "lower"),
        ("onset_sync_error_ms", "onset→impact ms", 5.0, "lower"),
        ("onset_f1", "onset F1", 0.03, "higher"),
        ("class_mix", "class mix", 0.05, "higher"),
        ("one_disc", "one disc", 0.01, "higher"))
SHARES = ("identity_agreement", "one_disc")  # shown in %


def load(path: str) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no such results file (give an `avdit evaluate --out` folder or its results.json)")
    return json.loads(path.read_text())


def merged(results: list[dict]) -> dict:
    """One teacher's results from several evaluations of the same clips, a later one's rows over an earlier's."""
    first = results[0]
    for other in results[1:]:
        check_same_clips(other, first)
    return {"settings": first["settings"], "rows": {k: v for r in results for k, v in r["rows"].items()}}


def check_same_clips(a: dict, b: dict) -> None:
    same = ("seed", "num", "data")
    if any(a["settings"].get(k) != b["settings"].get(k) for k in same):
        raise SystemExit("results on different clips: "
                         + ", ".join(f"{k} {a['settings'].get(k)} vs {b['settings'].get(k)}" for k in same))


def bar(teacher: float, tolerance: float, direction: str) -> float:
    return teacher - tolerance if direction == "higher" else teacher + tolerance


def kept(value: float, limit: float, direction: str) -> bool:
    return value >= limit - 1e-9 if direction == "higher" else value <= limit + 1e-9


def compare(student: dict, teacher: dict) -> tuple[list[str], int]:
    """Markdown rows (task, measure, student, bar, verdict) and the number of bars missed."""
    check_same_clips(student, teacher)
    rows, missed = [], 0
    for task, figures in student["rows"].items():
        if task == "reconstruction":
            continue
        if task not in teacher["rows"]:
            raise SystemExit(f"the teacher's results have no {task!r} row: evaluate the teacher on it too")
        for key, label, tolerance, direction in BARS:
            if key not in figures and key not in teacher["rows"][task]:
                continue  # not a measure of this task (class kept and mix: where cells are given, or none)
            if key not in teacher["rows"][task]:
                raise SystemExit(f"the teacher's {task!r} row has no {key}: evaluate it again with this avdit")
            limit = bar(teacher["rows"][task][key], tolerance, direction)
            scale, fmt = (100, ".1f") if key in SHARES else (1, ".0f" if "ms" in key else ".3f")
            if key not in figures:  # evaluated by an avdit without that measure: not shown kept
                missed += 1
                rows.append(f"| {task} | {label} | — | {limit * scale:{fmt}} | NOT MEASURED (evaluate again) |")
                continue
            ok = kept(figures[key], limit, direction)
            missed += not ok
            rows.append(f"| {task} | {label} | {figures[key] * scale:{fmt}} | {limit * scale:{fmt}} | "
                        f"{'ok' if ok else 'MISS'} |")
    return rows, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("students", nargs="+", help="results.json (or its folder) of `avdit evaluate --checkpoint`")
    parser.add_argument("--teacher", required=True, nargs="+",
                        help="the teacher's results.json (or folder) on the same clips; several are merged, a later "
                             "one's rows over an earlier one's (tasks evaluated apart)")
    args = parser.parse_args(argv)
    teacher, missed = merged([load(path) for path in args.teacher]), 0
    for path in args.students:
        rows, misses = compare(load(path), teacher)
        missed += misses
        print(f"\n{path}: {misses} bar(s) missed\n\n| task | measure | student | bar | |\n|---|---|---:|---:|---|")
        print("\n".join(rows))
    return int(missed > 0)


if __name__ == "__main__":
    raise SystemExit(main())
