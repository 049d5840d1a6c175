"""Quality against sampler steps: the bundled model on every task, DDIM and DPM-Solver++(2M), one table and a plot.

    python benchmarks/sampler_steps.py [--grid ddim:12,dpmpp2m:12,ddim:25,ddim:50] [--num 200]
                                       [--out runs/sampler_steps] [--docs docs/results]

Each SAMPLER:STEPS of the grid is ``avdit evaluate --num NUM --tasks all --no-av-align --sampler SAMPLER --steps
STEPS`` into OUT/SAMPLER_STEPS (the same held-out clips and noise for every setting; an evaluation resumes where it
stopped, a finished one is read back). Writes DOCS/sampler_steps.md (per task: colour = pitch, the two-way sync,
onset F1, BT-FVD and BT-FAD of each setting, and the issue's bar checked against 50 DDIM steps: colour = pitch
within 2 points, sync within 5 ms, BT-FVD within 10 %) and DOCS/sampler_steps.svg (each measure against steps).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from avdit.utils.atomic import atomic_path
from avdit.eval.evaluate import ALL_TASKS, EvalSettings, evaluate
from avdit.diffusion import SamplingConfig

REFERENCE = ("ddim", 50)
MEASURES = (("identity_agreement", "colour = pitch", "{:.1%}", 1), ("sync_error_ms", "impact→onset ms", "{:.1f}", -1),
            ("onset_sync_error_ms", "onset→impact ms", "{:.1f}", -1), ("onset_f1", "onset F1", "{:.2f}", 1),
            ("BT-FVD", "BT-FVD", "{:.1f}", -1), ("BT-FAD", "BT-FAD", "{:.0f}", -1))


def parse_grid(text: str) -> list[tuple[str, int]]:
    grid = []
    for item in text.split(","):
        sampler, _, steps = item.partition(":")
        if not steps.isdigit():
            raise SystemExit(f"--grid takes SAMPLER:STEPS items such as ddim:12, got {item!r}")
        grid.append((sampler, int(steps)))
    return grid


def holds(row: dict, reference: dict) -> str:
    """The issue's bar against 50 DDIM steps: colour = pitch within 2 points, sync within 5 ms (both ways), BT-FVD
    within 10 %: 'yes', or what fails."""
    failed = []
    if row["identity_agreement"] < reference["identity_agreement"] - 0.02:
        failed.append(f"colour = pitch {100 * (row['identity_agreement'] - reference['identity_agreement']):+.1f} pt")
    for key in ("sync_error_ms", "onset_sync_error_ms"):
        if row[key] > reference[key] + 5:
            failed.append(f"{key.removesuffix('_ms').replace('_', ' ')} {row[key] - reference[key]:+.1f} ms")
    if "BT-FVD" in row and row["BT-FVD"] > 1.1 * reference["BT-FVD"]:
        failed.append(f"BT-FVD {100 * (row['BT-FVD'] / reference['BT-FVD'] - 1):+.0f} %")
    return "yes" if not failed else "no: " + ", ".join(failed)


def page(results: dict[tuple[str, int], dict], command: str, num: int) -> str:
    lines = ["# Quality against sampler steps", "",
             f"The bundled model on {num} held-out Bouncing Tones clips per task (the same clips and noise for every "
             "setting; guidance 1, clean conditioning). Made by", "", f"    {command}", "",
             "![each measure against steps](sampler_steps.svg)", ""]
    reference = results.get(REFERENCE)
    for task in ALL_TASKS:
        lines += [f"## {task}", "", "| sampler | steps | " + " | ".join(t for _, t, _, _ in MEASURES)
                  + (" | holds the 50-step bar |" if reference else " |"),
                  "|---|---:|" + "---:|" * len(MEASURES) + ("---|" if reference else "")]
        for (sampler, steps), result in sorted(results.items()):
            row = result["rows"][task]
            cells = [fmt.format(row[key]) if key in row and not math.isnan(row[key]) else "—"
                     for key, _, fmt, _ in MEASURES]
            bar = f" {holds(row, reference['rows'][task])} |" if reference else ""
            lines.append(f"| {sampler} | {steps} | " + " | ".join(cells) + " |" + bar)
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[tuple[str, int], dict], path: Path) -> None:
    """Small multiples: one panel per measure, steps on a log axis, a colour per task, a dash per sampler."""
    colours = dict(zip(ALL_TASKS, ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]))
    dashes = {"ddim": "", "dpmpp2m": "5,3", "ddpm": "2,2"}
    steps_all = sorted({s for _, s in results})
    w, h, pad = 260, 170, 36
    x_of = lambda s: pad + (w - 2 * pad) * (math.log(s / steps_all[0]) / max(math.log(steps_all[-1] / steps_all[0]), 1e-9))  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * w}" height="{2 * h + 40}" font-family="sans-serif" '
             'font-size="10">']
    for i, (key, title, _, _) in enumerate(MEASURES):
        ox, oy = (i % 3) * w, (i // 3) * h
        values = [r["rows"][t][key] for r in results.values() for t in ALL_TASKS
                  if key in r["rows"][t] and not math.isnan(r["rows"][t][key])]
        if not values:
            continue
        lo, hi = min(values), max(values)
        y_of = lambda v: oy + h - pad - (h - 2 * pad) * ((v - lo) / (hi - lo) if hi > lo else 0.5)  # noqa: E731
        parts.append(f'<text x="{ox + pad}" y="{oy + 14}">{title} ({lo:.3g} to {hi:.3g})</text>')
        parts.append(f'<line x1="{ox + pad}" y1="{oy + h - pad}" x2="{ox + w - pad}" y2="{oy + h - pad}" '
                     'stroke="#999"/>')
        for s in steps_all:
            parts.append(f'<text x="{ox + x_of(s) - 6}" y="{oy + h - pad + 12}">{s}</text>')
        for task in ALL_TASKS:
            for sampler in sorted({sm for sm, _ in results}):
                points = [(s, results[(sampler, s)]["rows"][task].get(key)) for s in steps_all
                          if (sampler, s) in results]
                points = [(s, v) for s, v in points if v is not None and not math.isnan(v)]
                if len(points) > 1:
                    path_d = " ".join(f"{ox + x_of(s):.1f},{y_of(v):.1f}" for s, v in points)
                    parts.append(f'<polyline points="{path_d}" fill="none" stroke="{colours[task]}" '
                                 f'stroke-dasharray="{dashes.get(sampler, "")}"><title>{task} {sampler}</title>'
                                 '</polyline>')
                for s, v in points:
                    parts.append(f'<circle cx="{ox + x_of(s):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{colours[task]}">'
                                 f'<title>{task} {sampler} {s}: {v:.3g}</title></circle>')
    legend = [f'<text x="{10 + 95 * j}" y="{2 * h + 25}" fill="{c}">{t}</text>' for j, (t, c) in
              enumerate(colours.items())]
    parts += legend + [f'<text x="{10 + 95 * 5}" y="{2 * h + 25}">solid: ddim, dashed: dpmpp2m</text>', "</svg>"]
    with atomic_path(path, ".svg") as tmp:
        Path(tmp).write_text("\n".join(parts))


def finished(settings: EvalSettings, out: Path) -> dict:
    """The results of ``evaluate(settings, out)``: read back when OUT/results.json holds them (with AV-align or
    without), else evaluated."""
    path = out / "results.json"
    if path.exists():
        saved, wanted = json.loads(path.read_text()), json.loads(json.dumps(asdict(settings)))
        if {**saved["settings"], "av_align": False} == wanted:  # AV-align is not on the page
            print(f"{out}: finished, read back", flush=True)
            return saved
    return evaluate(settings, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", default="ddim:12,dpmpp2m:12,ddim:25,ddim:50", help="SAMPLER:STEPS,... settings")
    parser.add_argument("--num", type=int, default=200, help="held-out clips per task (default 200)")
    parser.add_argument("--out", default="runs/sampler_steps", help="folder of the evaluations")
    parser.add_argument("--docs", default="docs/results", help="folder for sampler_steps.md and .svg")
    args = parser.parse_args(argv)
    results = {}
    for sampler, steps in parse_grid(args.grid):
        settings = EvalSettings(num=args.num, av_align=False,
                                sampling=SamplingConfig(sampler=sampler, steps=steps, order="together"))
        results[(sampler, steps)] = finished(settings, Path(args.out) / f"{sampler}_{steps}")
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/sampler_steps.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    with atomic_path(docs / "sampler_steps.md", ".md") as tmp:
        Path(tmp).write_text(page(results, command.strip(), args.num))
    plot(results, docs / "sampler_steps.svg")
    print(f"written to {docs / 'sampler_steps.md'} and {docs / 'sampler_steps.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
