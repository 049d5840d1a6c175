"""Reproduce the paper's Table 1 on Bouncing Tones: one model per training setting, every task, one table.

    python benchmarks/table1/run.py [--compile] [--steps 7200] [--num 200] [--out runs/table1] [--docs docs/results]

Trains ``bt-small`` (by default with ``--model video_patch=4,time_rope=true``) with each noise-level setting (MoNL,
Vanilla, Per-modality, Per-segment, Per-cell, task-specific conditional models for av_continue and a2v, and beyond
the paper a task-weighted MoNL, one model for the specialists' tasks too) on the same latents for the same number
of steps, evaluates each on joint, a2v, v2a, av_inpaint and av_continue (task-specific models on their own task;
Vanilla with the replacement method) from the same held-out clips with fixed seeds, and writes DOCS/table1.md with
the table, the paper's findings checked against ours, a plot and sample videos.

Resumable: rerun the same command and it continues the setting it stopped in (``avdit train`` resumes) and
skips the settings recorded as finished in DOCS/table1.json. That record is written after each setting and is
committed with the page, so a later checkout (another machine, a fresh clone) continues the table where this one
stopped; it refuses to mix in results of a run with other settings. ``--settings`` runs a subset now; the page
always shows every finished setting. With the defaults and --compile it takes about 5 hours on a 2-core CPU.
The defaults make the published docs/results/table1.md; docs/results/table1_v1/ is the first table (``bt-small``
as is, 7500 steps at batch 32), made with ``--model '' --batch-size 32 --steps 7500 --out runs/table1_v1
--docs docs/results/table1_v1``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import findings, plot, tables, training_minutes, wall_times  # noqa: E402

from avdit.utils.atomic import atomic_path, write_json
from avdit.codecs.interface import bundled_codecs_dir, load_codecs
from avdit.codecs.shards import SHARD_INDEX, encode_dataset
from avdit.eval.evaluate import ALL_TASKS, EvalSettings, evaluate
from avdit.model.config import PREDICTIONS
from avdit.train.config import TrainConfig
from avdit.utils.resume import differences
from avdit.train.loop import train
from avdit.diffusion import DEFAULT_SAMPLING, SamplingConfig

PAPER = SamplingConfig.preset("paper")  # the paper's sampler and order; its steps are --eval-steps

# name in the table -> (noise levels, tasks it is evaluated on, conditioning at sampling)
SETTINGS = {
    "MoNL": ("monl", ALL_TASKS, "clean"),
    "Vanilla": ("vanilla", ALL_TASKS, "replace"),
    "Per-modality": ("per-modality", ALL_TASKS, "clean"),
    "Per-segment": ("per-segment", ALL_TASKS, "clean"),
    "Per-cell": ("per-cell", ALL_TASKS, "clean"),
    "Task: av_continue": ("task:av_continue", ("av_continue",), "clean"),
    "Task: a2v": ("task:a2v", ("a2v",), "clean"),
    # one model for the specialists' tasks too (finding 3): MoNL with half its examples on their two tasks
    "Task-weighted MoNL": ("monl=0.5,task:a2v=0.25,task:av_continue=0.25", ALL_TASKS, "clean"),
}
ONE_MODEL = ("Task-weighted MoNL",)  # settings beyond the paper's: judged on their own (finding 3b)


def folder_name(setting: str) -> str:
    return setting.lower().replace("task: ", "task-").replace(" ", "-")


def sample_videos(run: Path, tasks: tuple[str, ...], mode: str, guidance: float, docs: Path, name: str) -> list[str]:
    """One clip per task on held-out clip 0 (the same input for every setting), as mp4 under DOCS/table1/."""
    from avdit.data import bouncing_tones as bt
    from avdit.media import write_mp4
    from avdit.pipeline import Pipeline

    pipe, clip, files = Pipeline.from_pretrained(run), bt.make_clip(0, 0, "test"), []
    for task in tasks:
        result = pipe(task, clip.video, clip.audio, seed=0,
                      sampling=DEFAULT_SAMPLING.replace(steps=25, mode=mode, guidance=guidance))
        path = docs / "table1" / f"{name}_{task}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(path, result.video[0], result.audio[0], result.fps, result.sample_rate)
        files.append(str(path.relative_to(docs)))
    return files


# what makes a recorded setting comparable with a new run of it: the runner reuses a record only if all match
EXPERIMENT = ("preset", "model", "steps", "batch_size", "loss_weighting", "prediction", "num_clips", "num",
              "eval_steps", "guidance", "codecs")


def load_record(path: Path, experiment: dict) -> dict:
    """The settings already finished for ``experiment`` (DOCS/table1.json), or an empty record. Kept beside the
    page, so it travels with the committed results: a later checkout continues where this one stopped."""
    if not path.exists():
        return {"experiment": experiment, "results": {}, "training_minutes": {}, "samples": {}}
    saved = json.loads(path.read_text())
    there = saved.get("experiment")
    if there != experiment:
        why = ("it was written before the runner recorded its settings" if there is None else
               differences(there, experiment))
        raise SystemExit(f"{path} holds the results of another experiment ({why}). Rerun with the settings it was "
                         f"made with to continue it, or choose another --docs to start a new table.")
    return saved


def reproducing_command(argv: list[str]) -> str:
    """This invocation's command without --settings: the one that makes (or continues) the whole table."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--settings="):
            skip = False
            continue
        skip = arg == "--settings"
        if not skip:
            kept.append(arg)
    return " ".join(["python benchmarks/table1/run.py", *map(shlex.quote, kept)])


def write_page(docs: Path, record: dict, command: str) -> None:
    """DOCS/table1.md and its plot from every finished setting, in the table's order; settings still to run are
    named as such."""
    args = argparse.Namespace(**record["experiment"])
    finished = [s for s in SETTINGS if s in record["results"]]
    results = {s: record["results"][s] for s in finished}
    minutes = {s: record["training_minutes"][s] for s in finished}
    plot(results, docs / "table1.svg")
    videos = "\n".join(f"- {s}: " + ", ".join(f"[{Path(f).stem}]({f})" for f in record["samples"][s])
                       for s in finished)
    task_of = {s: SETTINGS[s][1][0] for s in finished if SETTINGS[s][0].startswith("task:")}
    pending = [s for s in SETTINGS if s not in record["results"]]
    status = (f"\n**Not finished yet: {', '.join(pending)}.** Rerun the command to continue; the verdicts below "
              f"use the settings finished so far.\n" if pending else "")
    notes = docs / "table1_discussion.md"  # written by hand after reading the table: why, where we differ
    discussion = "\nWhy, where ours differs from the paper: [table1_discussion.md](table1_discussion.md).\n" \
        if notes.exists() else ""
    network = f"`{args.preset}`" + (f" with `--model {args.model}`" if args.model else "")
    page = f"""# Table 1 on Bouncing Tones

{network}, {args.steps} steps, batch {args.batch_size}, prediction `{args.prediction}`, loss weighting
`{args.loss_weighting}`, on the same {args.num_clips} training clips for every setting; {args.num} held-out clips
per task, {args.eval_steps} DDIM steps, fixed seeds. Given frames and audio are excluded from BT-FVD/BT-FAD
(blanked in reference and generated clips alike). Vanilla is sampled with the replacement method; task-specific
models are evaluated on their own task only.
{status}
Command: `{command}` (finished settings are not redone; a rerun continues the setting it stopped in).

Time per setting on the machine that ran it (training: the logged windows of `metrics.jsonl`, compilation and
checkpoint writes included; evaluation: all its tasks):

{wall_times(results, minutes)}

{tables(results)}

![colour = pitch per task and setting](table1.svg)

## The paper's findings against ours

{findings(results, task_of, ONE_MODEL)}
{discussion}

## Sample videos (held-out clip 0, the same input for every setting)

{videos}
"""
    with atomic_path(docs / "table1.md", ".md") as tmp:
        Path(tmp).write_text(page)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bt-small")
    parser.add_argument("--model", default="video_patch=4,time_rope=true",
                        help="network overrides of every setting, as avdit train --model (default "
                             "video_patch=4,time_rope=true: 4x4 video patches, rotary time; '' for the preset as is)")
    parser.add_argument("--steps", type=int, default=7200, help="training steps of every setting (default 7200)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of every setting (default 64)")
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
    return parser


def experiment_of(args: argparse.Namespace) -> dict:
    return {key: getattr(args, key) for key in EXPERIMENT}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = list(SETTINGS) if args.settings == "all" else [s.strip() for s in args.settings.split(",")]
    unknown = [s for s in chosen if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    out, docs = Path(args.out), Path(args.docs)
    argv = sys.argv[1:] if argv is None else argv
    record = load_record(docs / "table1.json", experiment_of(args))
    codecs_dir = Path(args.codecs) if args.codecs else bundled_codecs_dir()
    latents = out / "latents"  # one set of training latents for every setting
    for setting in chosen:
        if setting in record["results"]:
            print(f"== {setting}: finished before (in {docs / 'table1.json'})", flush=True)
            continue
        index = latents / SHARD_INDEX
        if not index.exists() or not json.loads(index.read_text()).get("complete", True):  # none, or interrupted
            encode_dataset("bouncing-tones", load_codecs(codecs_dir), codecs_dir, latents, num=args.num_clips)
        levels, tasks, mode = SETTINGS[setting]
        run = out / folder_name(setting)
        evaluation = run / "eval"
        settings = EvalSettings(tasks=tasks, num=args.num, checkpoint=str(run), sampling=PAPER.replace(
            steps=args.eval_steps, mode=mode, guidance=args.guidance))
        saved = (json.loads((evaluation / "results.json").read_text())["settings"]
                 if (evaluation / "results.json").exists() else None)
        if saved is None or any(saved[key] != getattr(settings, key) for key in ("num", "guidance")):
            print(f"== {setting}: training {args.steps} steps ({levels}) in {run}", flush=True)
            train(TrainConfig(preset=args.preset, model=args.model, data=str(latents), codecs=args.codecs,
                              noise_levels=levels, loss_weighting=args.loss_weighting, prediction=args.prediction,
                              steps=args.steps, batch_size=args.batch_size, checkpoint_every=250,
                              compile=args.compile), run)
            print(f"== {setting}: evaluating {', '.join(tasks)} on {args.num} held-out clips", flush=True)
            evaluate(settings, evaluation)
        record["results"][setting] = json.loads((evaluation / "results.json").read_text())
        record["training_minutes"][setting] = training_minutes(run)
        record["samples"][setting] = sample_videos(run, tasks, mode, args.guidance, docs, folder_name(setting))
        write_json(docs / "table1.json", record)  # after each setting, so a stop loses at most the one running
        write_page(docs, record, reproducing_command(argv))
    docs.mkdir(parents=True, exist_ok=True)
    write_page(docs, record, reproducing_command(argv))
    print(f"wrote {docs / 'table1.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
