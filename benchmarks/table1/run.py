"""Reproduce the paper's Table 1 on Bouncing Tones: one model per training setting, every task, one table.

    python benchmarks/table1/run.py [--steps 7500] [--num 200] [--out runs/table1] [--docs docs/results]

Trains ``bt-small`` with each noise-level setting (MoNL, Vanilla, Per-modality, Per-segment, Per-cell, and
task-specific conditional models for av_continue and a2v) on the same latents for the same number of steps,
evaluates each on joint, a2v, v2a, av_inpaint and av_continue (task-specific models on their own task; Vanilla
with the replacement method) from the same held-out clips with fixed seeds, and writes
DOCS/table1.md with the table, the paper's findings checked against ours, a plot and sample videos.

Resumable: rerun the same command and it continues the setting it stopped in (``avdit train`` resumes) and
skips settings whose evaluation is already written. With the defaults it takes about 8 hours on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from avdit.atomic import atomic_path, write_json
from avdit.codecs.interface import bundled_codecs_dir, load_codecs
from avdit.codecs.shards import SHARD_INDEX, encode_dataset
from avdit.eval.evaluate import ALL_TASKS, EvalSettings, evaluate
from avdit.model.config import PREDICTIONS
from avdit.train.config import TrainConfig
from avdit.train.loop import train

# name in the table -> (noise levels, tasks it is evaluated on, conditioning at sampling)
SETTINGS = {
    "MoNL": ("monl", ALL_TASKS, "clean"),
    "Vanilla": ("vanilla", ALL_TASKS, "replace"),
    "Per-modality": ("per-modality", ALL_TASKS, "clean"),
    "Per-segment": ("per-segment", ALL_TASKS, "clean"),
    "Per-cell": ("per-cell", ALL_TASKS, "clean"),
    "Task: av_continue": ("task:av_continue", ("av_continue",), "clean"),
    "Task: a2v": ("task:a2v", ("a2v",), "clean"),
}
FEATURE_METRICS = (("BT-FVD", "{:.1f}"), ("BT-FAD", "{:.1f}"), ("AV-align", "{:.3f}"))
BT_METRICS = (("identity_agreement", "colour = pitch", "{:.0%}"), ("class_kept", "class kept", "{:.0%}"),
              ("sync_error_ms", "sync ms", "{:.0f}"))


def folder_name(setting: str) -> str:
    return setting.lower().replace("task: ", "task-").replace(" ", "-")


def average(rows: dict, key: str) -> float:
    values = [row[key] for row in rows.values() if key in row and not math.isnan(row[key])]
    return float(np.mean(values)) if values else math.nan


def cell(row: dict | None, key: str, fmt: str) -> str:
    if row is None or key not in row or math.isnan(row[key]):
        return "—"
    return fmt.format(row[key])


def tables(results: dict[str, dict]) -> str:
    """Two markdown tables in the paper's layout: rows = settings, columns = tasks x metrics, then averages."""
    out = []
    for title, metrics in (("Feature distances and AV-align (BT-FVD, BT-FAD lower is better)",
                            [(k, k, f) for k, f in FEATURE_METRICS]),
                           ("Exact Bouncing Tones measures (sync error lower is better)", list(BT_METRICS))):
        header = ["setting"] + [f"{task} {label}" for task in ALL_TASKS for _, label, _ in metrics] + \
                 [f"avg {label}" for _, label, _ in metrics]
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        for setting, res in results.items():
            rows = res["rows"]
            cells = [cell(rows.get(task), key, fmt) for task in ALL_TASKS for key, _, fmt in metrics]
            tasks_only = {t: r for t, r in rows.items() if t in ALL_TASKS}
            cells += [cell({key: average(tasks_only, key)}, key, fmt) for key, _, fmt in metrics]
            lines.append(f"| {setting} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def findings(results: dict[str, dict]) -> str:
    """The paper's four findings, each checked against our numbers (computed, not written by hand)."""
    def value(setting, task, key):
        row = results.get(setting, {}).get("rows", {}).get(task)
        return row.get(key, math.nan) if row else math.nan

    general = [s for s in results if not s.startswith("Task")]
    lines = []
    if general:
        fvd_avg = {s: average({t: r for t, r in results[s]["rows"].items() if t in ALL_TASKS}, "BT-FVD")
                   for s in general}
        ranked = sorted(general, key=lambda s: fvd_avg[s])
        lines.append(f"1. *MoNL is best or near best on average.* Ours: by average BT-FVD over tasks the order is "
                     f"{', '.join(f'{s} ({fvd_avg[s]:.1f})' for s in ranked)}.")
    if {"MoNL", "Vanilla"} <= set(results):
        parts = [f"{t}: BT-FVD {value('MoNL', t, 'BT-FVD'):.1f} vs {value('Vanilla', t, 'BT-FVD'):.1f}, class kept "
                 f"{value('MoNL', t, 'class_kept'):.0%} vs {value('Vanilla', t, 'class_kept'):.0%}"
                 for t in ("av_continue", "av_inpaint")]
        lines.append("2. *MoNL is far ahead of Vanilla on av_continue and av_inpaint.* Ours (MoNL vs Vanilla): "
                     + "; ".join(parts) + ".")
    specific = [(s, SETTINGS[s][1][0]) for s in results if s.startswith("Task")]
    if specific and "MoNL" in results:
        parts = [f"{t}: BT-FVD {value('MoNL', t, 'BT-FVD'):.1f} (MoNL) vs {value(s, t, 'BT-FVD'):.1f} ({s}), class "
                 f"kept {value('MoNL', t, 'class_kept'):.0%} vs {value(s, t, 'class_kept'):.0%}" for s, t in specific]
        lines.append("3. *MoNL is on par with task-specific models on their own task.* Ours: " + "; ".join(parts) + ".")
    if {"Per-modality", "MoNL"} <= set(results):
        parts = [f"{t}: class kept {value('Per-modality', t, 'class_kept'):.0%} (Per-modality) vs "
                 f"{value('MoNL', t, 'class_kept'):.0%} (MoNL)" for t in ("a2v", "v2a", "av_continue")]
        lines.append("4. *Per-modality is strong on a2v/v2a and weak on continuation.* Ours: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def plot(results: dict[str, dict], path: Path) -> None:
    """An SVG bar chart: cross-modal identity agreement (colour = pitch) per task and setting."""
    settings, width, height, bar = list(results), 900, 300, 14
    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]
    group = bar * len(settings) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 80}" font-family="sans-serif" '
             f'font-size="11"><text x="10" y="15">colour = pitch (cross-modal identity agreement) per task</text>']
    for i, task in enumerate(ALL_TASKS):
        x0 = 40 + i * group
        parts.append(f'<text x="{x0}" y="{height + 30}">{task}</text>')
        for j, setting in enumerate(settings):
            row = results[setting]["rows"].get(task)
            v = row.get("identity_agreement", math.nan) if row else math.nan
            if not math.isnan(v):
                h = v * (height - 40)
                parts.append(f'<rect x="{x0 + j * bar}" y="{height - h}" width="{bar - 2}" height="{h}" '
                             f'fill="{colours[j % len(colours)]}"><title>{setting}: {v:.0%}</title></rect>')
    for j, setting in enumerate(settings):
        parts.append(f'<rect x="{10 + j * 125}" y="{height + 50}" width="10" height="10" fill="{colours[j % 7]}"/>'
                     f'<text x="{24 + j * 125}" y="{height + 59}">{setting}</text>')
    parts.append("</svg>")
    with atomic_path(path, ".svg") as tmp:
        Path(tmp).write_text("\n".join(parts))


def sample_videos(run: Path, tasks: tuple[str, ...], mode: str, guidance: float, docs: Path, name: str) -> list[str]:
    """One clip per task on held-out clip 0 (the same input for every setting), as mp4 under DOCS/table1/."""
    from avdit.data import bouncing_tones as bt
    from avdit.media import write_mp4
    from avdit.pipeline import Pipeline

    pipe, clip, files = Pipeline.from_pretrained(run), bt.make_clip(0, 0, "test"), []
    for task in tasks:
        result = pipe(task=task, video=clip.video, audio=clip.audio, steps=25, mode=mode, guidance=guidance, seed=0)
        path = docs / "table1" / f"{name}_{task}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(path, result.video[0], result.audio[0], result.fps, result.sample_rate)
        files.append(str(path.relative_to(docs)))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bt-small")
    parser.add_argument("--steps", type=int, default=7500, help="training steps of every setting (default 7500)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--loss-weighting", default=TrainConfig.loss_weighting,
                        help=f"the loss weighting of every setting (default {TrainConfig.loss_weighting}, avdit train's)")
    parser.add_argument("--prediction", default=TrainConfig.prediction, choices=PREDICTIONS,
                        help=f"what every setting's network predicts (default {TrainConfig.prediction}, avdit train's)")
    parser.add_argument("--num-clips", type=int, default=4096, help="Bouncing Tones training clips (default 4096)")
    parser.add_argument("--num", type=int, default=200, help="held-out clips per task (default 200)")
    parser.add_argument("--eval-steps", type=int, default=25, help="DDIM steps when evaluating (default 25)")
    parser.add_argument("--guidance", type=float, default=0.0,
                        help="guidance scale of every evaluation (default 0: the task-specific models never see the "
                             "unconditional input that guidance feeds them, so the comparison is unguided)")
    parser.add_argument("--codecs", default=None, help="codec folder (default: the bundled ones)")
    parser.add_argument("--settings", default="all", help="'all' or a comma-separated subset of: "
                                                          + ", ".join(SETTINGS))
    parser.add_argument("--compile", action="store_true",
                        help="train under torch.compile (about 1.2x faster here; resumes either way)")
    parser.add_argument("--out", default="runs/table1", help="runs and evaluations (default runs/table1)")
    parser.add_argument("--docs", default="docs/results", help="where table1.md goes (default docs/results)")
    args = parser.parse_args(argv)
    chosen = list(SETTINGS) if args.settings == "all" else [s.strip() for s in args.settings.split(",")]
    unknown = [s for s in chosen if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    out, docs = Path(args.out), Path(args.docs)
    codecs_dir = Path(args.codecs) if args.codecs else bundled_codecs_dir()
    start = time.perf_counter()
    latents = out / "latents"  # one set of training latents for every setting
    if not (latents / SHARD_INDEX).exists():
        encode_dataset("bouncing-tones", load_codecs(codecs_dir), codecs_dir, latents, num=args.num_clips)
    results, samples = {}, {}
    for setting in chosen:
        levels, tasks, mode = SETTINGS[setting]
        run = out / folder_name(setting)
        evaluation = run / "eval"
        settings = EvalSettings(tasks=tasks, num=args.num, steps=args.eval_steps, mode=mode, checkpoint=str(run),
                                guidance=args.guidance)
        saved = (json.loads((evaluation / "results.json").read_text())["settings"]
                 if (evaluation / "results.json").exists() else None)
        done = saved is not None and all(saved[key] == getattr(settings, key) for key in ("num", "guidance"))
        if not done:
            print(f"== {setting}: training {args.steps} steps ({levels}) in {run}", flush=True)
            train(TrainConfig(preset=args.preset, data=str(latents), codecs=str(codecs_dir), noise_levels=levels,
                              loss_weighting=args.loss_weighting, prediction=args.prediction, steps=args.steps,
                              batch_size=args.batch_size, checkpoint_every=250, compile=args.compile), run)
            print(f"== {setting}: evaluating {', '.join(tasks)} on {args.num} held-out clips", flush=True)
            evaluate(settings, evaluation)
        results[setting] = json.loads((evaluation / "results.json").read_text())
        samples[setting] = sample_videos(run, tasks, mode, args.guidance, docs, folder_name(setting))
    docs.mkdir(parents=True, exist_ok=True)
    plot(results, docs / "table1.svg")
    hours = (time.perf_counter() - start) / 3600
    command = "python benchmarks/table1/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    videos = "\n".join(f"- {s}: " + ", ".join(f"[{Path(f).stem}]({f})" for f in files) for s, files in samples.items())
    page = f"""# Table 1 on Bouncing Tones

`{args.preset}`, {args.steps} steps, batch {args.batch_size}, prediction `{args.prediction}`, loss weighting
`{args.loss_weighting}`, on the same {args.num_clips} training clips for every setting; {args.num} held-out clips
per task, {args.eval_steps} DDIM steps, fixed seeds. Given frames and audio are excluded from BT-FVD/BT-FAD
(blanked in reference and generated clips alike). Vanilla is sampled with the replacement method; task-specific
models are evaluated on their own task only.

Command: `{command}` (this invocation: {hours:.2f} h; finished settings are not redone).

{tables(results)}

![colour = pitch per task and setting](table1.svg)

## The paper's findings against ours

{findings(results)}

## Sample videos (held-out clip 0, the same input for every setting)

{videos}
"""
    with atomic_path(docs / "table1.md", ".md") as tmp:
        Path(tmp).write_text(page)
    write_json(docs / "table1.json", {"command": command, "results": results})
    print(f"wrote {docs / 'table1.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
