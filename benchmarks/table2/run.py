"""Reproduce the paper's Table 2 (AVDiT with MoNL against MM-Diffusion, on Landscape and AIST++) from local videos.

    python benchmarks/table2/run.py --dataset landscape --videos ~/data/landscape \\
        --i3d i3d_pretrained_400.pt --vggish vggish-10086976.pth --audioclip AudioCLIP-Full-Training.pt \\
        [--codecs CODECS] \\
        [--nproc-per-node 8 --fsdp] [--out runs/table2] [--docs docs/results]

Per dataset (run it once for ``landscape`` and once for ``aist++``, with the same settings):

1. ``avdit prepare`` the folder at the paper's geometry (``--geometry landscape`` / ``aist++``: 64x64, 10 fps,
   21 frames, 16 kHz; with ``--codecs``, at the sample rate and frame count those codecs take) into
   OUT/DATASET/prepared;
2. codecs: the folder given with ``--codecs`` (ours from ``avdit train-codec``, or pretrained ones from
   ``avdit codec import``), or both of avdit's codecs trained on the prepared clips into OUT/DATASET/codecs;
3. ``avdit encode`` the training clips into OUT/DATASET/latents;
4. ``avdit train`` the preset (default ``paper``) with MoNL into OUT/DATASET/run, under torchrun when
   ``--nproc-per-node`` > 1 or ``--fsdp`` (FSDP2, for ``paper``);
5. ``avdit evaluate`` joint, a2v and v2a on held-out clips with MM-Diffusion's measures: FVD and KVD from I3D, FAD
   from AudioCLIP (``--audioclip``, MM-Diffusion's and the paper's FAD, x 1e4) and from VGGish beside it, AV-align
   on Landscape;

then writes DOCS/table2.md beside the paper's Table 2 and MM-Diffusion's figures, with every difference between
MM-Diffusion's evaluator and ours. Every step is skipped when done and resumes when interrupted (prepare, codec
training, encoding, training and evaluation each resume by rerunning); rerun the same command. What each finished
dataset gave is recorded in DOCS/table2.json, which refuses results made with other settings.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from avdit.utils.atomic import atomic_path, write_json
from avdit.codecs.digest import codec_digest
from avdit.codecs.interface import describe_geometry, load_codecs, recorded_geometry
from avdit.codecs.shards import SHARD_INDEX, encode_dataset
from avdit.train.codecs import CodecTrainSettings, train_codec
from avdit.data.prepare import INDEX, PrepareSettings, prepare_folder, summary
from avdit.diffusion.conditioning import DEFAULT_GUIDANCE
from avdit.eval.evaluate import EvalSettings, evaluate
from avdit.eval.features.log_mel import SAMPLE_RATE as VGGISH_RATE
from avdit.layout import get_geometry
from avdit.utils.resume import differences
from avdit.train.config import TrainConfig
from avdit.train.loop import train
from avdit.diffusion import SamplingConfig


def _load(name: str, path: Path):
    """A module of benchmarks/ by path, under its own name (Table 1's and Table 2's report.py would collide)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load("table2_report", Path(__file__).parent / "report.py")
training_minutes = _load("table1_report", Path(__file__).parent.parent / "table1" / "report.py").training_minutes

DATASETS = ("landscape", "aist++")
TASKS = ("joint", "a2v", "v2a")
# the training settings the runner sets (the rest are avdit train's defaults), each passed as --<name with dashes>
TRAINED = ("preset", "model", "noise_levels", "steps", "batch_size", "lr", "warmup", "prediction", "loss_weighting",
           "self_condition_rate", "precision", "seed", "checkpoint_every", "compile", "fsdp")
# what makes a recorded dataset comparable with a new run: the runner reuses a record only if all of these match
EXPERIMENT = ("preset", "model", "steps", "batch_size", "lr", "warmup", "prediction", "loss_weighting",
              "self_condition_rate", "precision", "seed", "hop", "test_fraction", "codecs", "codec_steps",
              "codec_latent_channels", "num", "eval_steps", "eval_batch_size", "guidance", "i3d", "vggish", "audioclip",
              "panns", "imagebind", "synchformer")
WEIGHTS = ("i3d", "vggish", "audioclip", "panns", "imagebind", "synchformer")  # recorded by their files' digests


def file_digest(path: str | None) -> str | None:
    """sha256 (16 hex) of a weights file, so a record names the feature network, not where it lay."""
    if path is None:
        return None
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()[:16]


def experiment_of(args: argparse.Namespace) -> dict:
    values = {key: getattr(args, key) for key in EXPERIMENT if key not in ("codecs", *WEIGHTS)}
    values["codecs"] = codec_digest(args.codecs) if args.codecs else None  # None: trained per dataset
    if args.codecs:  # codec training settings mean nothing when the codecs are given
        values["codec_steps"] = values["codec_latent_channels"] = None
    values.update({key: file_digest(getattr(args, key)) for key in WEIGHTS})
    return values


def load_record(path: Path, experiment: dict) -> dict:
    """The datasets already finished for ``experiment`` (DOCS/table2.json), or an empty record. It travels with the
    page, so a later checkout continues where this one stopped; results of other settings are refused."""
    if not path.exists():
        return {"experiment": experiment, "datasets": {}}
    saved = json.loads(path.read_text())
    if saved.get("experiment") != experiment:
        raise SystemExit(f"{path} holds the results of another experiment "
                         f"({differences(saved.get('experiment') or {}, experiment)}). Rerun with the settings it "
                         f"was made with to continue it, or choose another --docs to start a new table.")
    return saved


def reproducing_command(argv: list[str]) -> str:
    return " ".join(["python benchmarks/table2/run.py", *map(shlex.quote, argv)])


# -- the steps, each skipped when done --------------------------------------------------------------------------
def clip_settings(args: argparse.Namespace) -> PrepareSettings:
    """The dataset's geometry (64x64, 10 fps, 21 frames, 16 kHz); with --codecs, the clip those codecs take (as
    recorded in their folder), which must have the dataset's frame rate and size: a pretrained audio codec reads
    its own sample rate, LTX-Video takes 1 + 8k frames."""
    changes = {"hop": args.hop, "test_fraction": args.test_fraction}
    record = recorded_geometry(json.loads((Path(args.codecs) / "video.json").read_text())) if args.codecs else None
    if record is not None:
        g = get_geometry(args.dataset)
        if (record["fps"], list(record["size"])) != (g.fps, [g.height, g.width]):
            raise SystemExit(f"the codecs in {args.codecs} take {describe_geometry(record)}; {args.dataset} is "
                             f"{g.height}x{g.width} at {g.fps} fps: give codecs made for that")
        changes.update(sample_rate=record["sample_rate"], duration=record["frames"] / record["fps"])
    return PrepareSettings.from_geometry(args.dataset, **changes)


def prepare(args: argparse.Namespace, prepared: Path) -> dict:
    if (prepared / INDEX).exists():  # not re-indexed: a grown folder would change the clips under finished steps
        print(f"== prepare: {prepared} indexed before", flush=True)
    else:
        print(summary(prepare_folder(args.videos, prepared, clip_settings(args))), flush=True)
    return json.loads((prepared / INDEX).read_text())


def codecs_folder(args: argparse.Namespace, prepared: Path, folder: Path) -> Path:
    if args.codecs:
        return Path(args.codecs)
    for kind in ("video", "audio"):  # a finished codec is its <kind>.json; train_codec resumes an unfinished one
        if not (folder / f"{kind}.json").exists():
            print(f"== codecs: training the {kind} codec in {folder}", flush=True)
            train_codec(CodecTrainSettings(kind, data=str(prepared), steps=args.codec_steps,
                                           latent_channels=args.codec_latent_channels), folder)
    return folder


def encode(prepared: Path, codecs: Path, latents: Path, workers: int) -> None:
    index = latents / SHARD_INDEX
    if index.exists() and json.loads(index.read_text()).get("complete"):
        print(f"== encode: {latents} written before", flush=True)
        return
    encode_dataset(prepared, load_codecs(codecs), codecs, latents, workers=workers)


def train_config(args: argparse.Namespace, latents: Path) -> TrainConfig:
    return TrainConfig(preset=args.preset, model=args.model, data=str(latents), noise_levels="monl", steps=args.steps,
                       batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, prediction=args.prediction,
                       loss_weighting=args.loss_weighting, self_condition_rate=args.self_condition_rate,
                       precision=args.precision, seed=args.seed, checkpoint_every=args.checkpoint_every,
                       compile=args.compile, fsdp=args.fsdp)


def torchrun_command(config: TrainConfig, run: Path, nproc: int) -> list[str]:
    """``torchrun --standalone --nproc-per-node N -m avdit.cli train ...`` with this config's settings as flags."""
    flags = []
    for name in TRAINED:
        value = getattr(config, name)
        if isinstance(value, bool):
            flags += [f"--{name.replace('_', '-')}"] if value else []
        elif value != "":
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "-m", "avdit.cli", "train", "--data", config.data, "--out", str(run), *flags]


def trained_steps(run: Path) -> int:
    """Steps of the run's last checkpoint (0 when none)."""
    path = run / "model.json"
    return json.loads(path.read_text()).get("step", 0) if path.exists() else 0


def train_model(args: argparse.Namespace, latents: Path, run: Path) -> None:
    config = train_config(args, latents)
    if trained_steps(run) >= config.steps:
        print(f"== train: {run} trained {config.steps} steps before", flush=True)
        return
    if args.nproc_per_node > 1 or args.fsdp:
        command = torchrun_command(config, run, args.nproc_per_node)
        print("== train: " + " ".join(map(shlex.quote, command)), flush=True)
        subprocess.run(command, check=True)
    else:
        print(f"== train: {config.steps} steps of {config.preset} with MoNL in {run}", flush=True)
        train(config, run)


def eval_settings(args: argparse.Namespace, prepared: Path, run: Path) -> EvalSettings:
    """joint, a2v and v2a with I3D, VGGish (audio resampled to its 16 kHz), AudioCLIP when given (resampled to its
    44.1 kHz) and AV-align where the paper reports it."""
    return EvalSettings(tasks=TASKS, data=str(prepared), num=args.num,
                        sampling=SamplingConfig.preset("paper").replace(steps=args.eval_steps, guidance=args.guidance),
                        batch_size=args.eval_batch_size, av_align=args.dataset in report.AV_ALIGN_DATASETS,
                        i3d=args.i3d, vggish=args.vggish, audioclip=args.audioclip, panns=args.panns,
                        imagebind=args.imagebind, synchformer=args.synchformer,
                        checkpoint=str(run), codecs=None, device=args.device)


def evaluate_model(settings: EvalSettings, out: Path) -> dict:
    """The evaluation's results: read back when a finished one used these settings, else run (it resumes)."""
    done = out / "results.json"
    if done.exists():
        results = json.loads(done.read_text())
        if results["settings"] == json.loads(json.dumps(asdict(settings))):
            print(f"== evaluate: {out} finished before", flush=True)
            return results
    print(f"== evaluate: {', '.join(settings.tasks)} on {settings.num} held-out clips", flush=True)
    return evaluate(settings, out)


def clip_counts(index: dict) -> dict:
    counts = {"train": 0, "test": 0}
    for entry in index["files"].values():
        counts[entry["split"]] += len(entry["starts"])
    return {**counts, "files": len(index["files"]), "skipped": len(index["skipped"])}


def run_dataset(args: argparse.Namespace) -> dict:
    """Every step for ``args.dataset``; returns what its record holds."""
    root = Path(args.out) / args.dataset
    prepared, run = root / "prepared", root / "run"
    index = prepare(args, prepared)
    codecs = codecs_folder(args, prepared, root / "codecs")
    encode(prepared, codecs, root / "latents", args.workers)
    start = time.perf_counter()
    train_model(args, root / "latents", run)
    wall = (time.perf_counter() - start) / 60
    clip = index["settings"]
    results = evaluate_model(eval_settings(args, prepared, run), root / "eval")
    minutes = training_minutes(run)  # the logged windows (Table 1's reader); this call's wall time if none
    return {"results": results, "videos": str(Path(args.videos).resolve()), "clips": clip_counts(index), "clip": clip,
            "codecs": {"folder": str(codecs), "digest": codec_digest(codecs),
                       "trained": None if args.codecs else {"steps": args.codec_steps,
                                                            "latent_channels": args.codec_latent_channels}},
            "training_minutes": wall if math.isnan(minutes) else minutes,
            "ranks": args.nproc_per_node, "fsdp": args.fsdp}


def write_page(docs: Path, record: dict) -> None:
    """DOCS/table2.md from every finished dataset; datasets still to run are named as such."""
    e, done, commands = record["experiment"], record["datasets"], record.get("commands", {})
    pending = [d for d in DATASETS if d not in done]
    status = (f"\n**Not run yet: {', '.join(pending)}.** Run a finished dataset's command with `--dataset {pending[0]} "
              "--videos FOLDER` (every other setting the same) to add it.\n" if pending else "")
    network = f"`{e['preset']}`" + (f" with `--model {e['model']}`" if e["model"] else "")
    codecs = (f"the codec folder with digest `{e['codecs']}`, given with `--codecs`" if e["codecs"] else
              "avdit's own codecs trained on each dataset's clips (`avdit train-codec`, "
              + ("its recipes)" if e["codec_steps"] is None else f"{e['codec_steps']} steps each)"))
    sections = []
    for dataset in DATASETS:
        entry = done.get(dataset)
        if entry:
            c, clip = entry["clips"], entry["clip"]
            frames = round(clip["duration"] * clip["fps"])
            fad = ("" if clip["sample_rate"] == VGGISH_RATE else
                   f" VGGish FAD on the audio resampled from {clip['sample_rate']} Hz to {VGGISH_RATE} Hz.")
            where = (f"{c['files']} files ({c['skipped']} skipped) from `{entry['videos']}`: {c['train']} training "
                     f"clips, {c['test']} held-out, each {frames} frames at {clip['fps']} fps ({clip['duration']:g} s), "
                     f"{clip['size'][0]}x{clip['size'][1]}, {clip['sample_rate']} Hz.{fad} "
                     f"Codecs `{entry['codecs']['digest']}`. Trained on "
                     f"{entry['ranks']} process(es){' with FSDP' if entry['fsdp'] else ''} in "
                     f"{report.fmt_minutes(entry['training_minutes'])}; evaluated in "
                     f"{report.fmt_minutes(entry['results'].get('seconds', math.nan) / 60)}.\n\n"
                     f"Command: `{commands.get(dataset, '—')}`\n")
        else:
            where = "Not run yet.\n"
        title = "Landscape" if dataset == "landscape" else "AIST++"
        table = report.dataset_table(dataset, entry["results"] if entry else None,
                                     "given codecs" if e["codecs"] else "codecs trained here")
        sections.append(f"## {title}\n\n{where}\n{table}\n")
    fad_note = ("Our FAD AudioCLIP column is MM-Diffusion's FAD (the same network, audio span and ×1e4), computed "
                "on our clips; VGGish FAD is another number on another scale." if e.get("audioclip") else
                "**No AudioCLIP weights were given (`--audioclip`), so the paper's FAD column is empty for us; VGGish "
                "FAD is another number on another scale and does not compare with it.**")
    page = f"""# Table 2: AVDiT with MoNL against MM-Diffusion on Landscape and AIST++

- The paper: {report.AVDIT}, Table 2.
- MM-Diffusion: {report.MMD}.
- Ours: {network} trained with MoNL, {e['steps']} steps at batch {e['batch_size']}, lr {e['lr']:g} after
  {e['warmup']} warm-up steps, prediction `{e['prediction']}`, loss weighting `{e['loss_weighting']}`,
  self-conditioning rate {e['self_condition_rate']:g}, {e['precision']}, seed {e['seed']}.
- Data: clips every {e['hop']:g} s (each dataset's geometry below), on {codecs}.
- Evaluation: {e['num']} held-out clips per task, {e['eval_steps']} DDIM steps, guidance {e['guidance']:g}; I3D
  weights `{e['i3d']}`, VGGish weights `{e['vggish']}`, AudioCLIP weights `{e.get('audioclip')}`; today's
  metrics (not in the paper): PANNs `{e.get('panns')}`, ImageBind `{e.get('imagebind')}`, Synchformer
  `{e.get('synchformer')}` (sha256).
{status}
Where the published figures come from: the paper's Table 2 as printed on its NeurIPS 2024 poster
([the paper's notes](../paper.md#table-2)), which has Reconstruction, A2V and V2A rows; "MM-Diffusion (AVDiT's Table 2)" is MM-Diffusion as
the AVDiT authors measured it there. That table has no Joint row, so the paper's Joint cells are "—". MM-Diffusion's
own published figures (its CVPR 2023 paper) are not in the material this project holds, so their cells are "—" too:
none is filled in from memory. "—" in an A2V FAD or a V2A FVD cell: the task gives that modality, which is then not
scored (as in the paper). {fad_note}

{chr(10).join(sections)}
## MM-Diffusion's evaluator and ours

The paper computes FAD, FVD and KVD with MM-Diffusion's code (`mm_diffusion/evaluator.py`, `py_scripts/eval.py`,
`evaluations/fvd/fvd.py`, read at commit 7250222). Where `avdit evaluate` allows, we follow it. Each difference:

{report.protocol(e, next(iter(done.values()))["clip"] if done else None)}
"""
    docs.mkdir(parents=True, exist_ok=True)
    with atomic_path(docs / "table2.md", ".md") as tmp:
        Path(tmp).write_text(page)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, required=True,
                        help="which of the paper's Table-2 datasets the videos are (its geometry: 64x64, 10 fps, "
                             "21 frames)")
    parser.add_argument("--videos", required=True, help="folder of the dataset's videos with sound (scanned "
                                                        "recursively, as `avdit prepare` does)")
    parser.add_argument("--i3d", required=True, help="local Kinetics-400 I3D weights for FVD and KVD (as `avdit "
                                                     "evaluate --i3d`)")
    parser.add_argument("--vggish", required=True, help="local VGGish weights for FAD (as `avdit evaluate --vggish`)")
    parser.add_argument("--audioclip", default=None,
                        help="local AudioCLIP weights (AudioCLIP-Full-Training.pt, the file MM-Diffusion's evaluator "
                             "loads) for the paper's FAD (as `avdit evaluate --audioclip`); without them that column "
                             "is empty and the page says so")
    for name, metric in (("panns", "FD-PANNs"), ("imagebind", "AV-IB"), ("synchformer", "DeSync")):
        parser.add_argument(f"--{name}", default=None, help=f"local weights for {metric}, a metric of today's papers "
                                                            f"beside the paper's (as `avdit evaluate --{name}`)")
    parser.add_argument("--codecs", default=None,
                        help="codec folder at this geometry (from `avdit train-codec`, or `avdit codec import` for "
                             "pretrained codecs); default: train avdit's codecs on the prepared clips")
    parser.add_argument("--codec-steps", type=int, default=None,
                        help="steps of each codec when they are trained here (default: train-codec's recipes)")
    parser.add_argument("--codec-latent-channels", type=int, default=0,
                        help="latent channels of codecs trained here (default 0: the codecs' own)")
    parser.add_argument("--hop", type=float, default=0.5,
                        help="seconds between clip starts when preparing (default 0.5: overlapping 2.1-s clips)")
    parser.add_argument("--test-fraction", type=float, default=0.1,
                        help="fraction of files held out for evaluation (default 0.1)")
    parser.add_argument("--preset", default="paper", help="model preset (default paper: 24 layers, width 1024)")
    parser.add_argument("--model", default="", help="network overrides, as `avdit train --model` (default none)")
    parser.add_argument("--steps", type=int, default=350_000, help="training steps (default 350000, the paper's)")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch (default 256, the paper's)")
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4, the paper's)")
    parser.add_argument("--warmup", type=int, default=5000, help="warm-up steps (default 5000, the paper's)")
    parser.add_argument("--prediction", default="eps", choices=("eps", "v"),
                        help="what the network predicts (default eps, the paper's)")
    parser.add_argument("--loss-weighting", default="eps", help="loss weighting (default eps: the paper's plain "
                                                                "epsilon MSE)")
    parser.add_argument("--self-condition-rate", type=float, default=0.9,
                        help="fraction of examples trained with self-conditioning (default 0.9, the paper's)")
    parser.add_argument("--precision", default=d.precision, choices=("bf16", "fp32"),
                        help=f"autocast precision (default {d.precision})")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"training seed (default {d.seed})")
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                        help=f"checkpoint every N steps (default {d.checkpoint_every})")
    parser.add_argument("--compile", action="store_true", help="train under torch.compile")
    parser.add_argument("--nproc-per-node", type=int, default=1,
                        help="training processes (GPUs) on this machine; > 1 trains under torchrun (default 1)")
    parser.add_argument("--fsdp", action="store_true",
                        help="shard model, EMA and optimizer over the processes (FSDP2; trains under torchrun even "
                             "with one process); for the paper preset")
    parser.add_argument("--workers", type=int, default=0, help="decoding processes while encoding (default 0)")
    parser.add_argument("--num", type=int, default=report.MMD_CLIPS,
                        help=f"held-out clips per task (default {report.MMD_CLIPS}, MM-Diffusion's)")
    parser.add_argument("--eval-steps", type=int, default=250, help="DDIM steps when evaluating (default 250, the "
                                                                    "paper's)")
    parser.add_argument("--eval-batch-size", type=int, default=EvalSettings.batch_size,
                        help=f"clips sampled at once (seeds follow batches; default {EvalSettings.batch_size})")
    parser.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                        help=f"guidance scale of the conditional tasks (default {DEFAULT_GUIDANCE}, avdit's)")
    parser.add_argument("--device", default=None, help="where the evaluation samples (default: a GPU when there "
                                                       "is one)")
    parser.add_argument("--out", default="runs/table2", help="data, codecs, runs, evaluations (default runs/table2)")
    parser.add_argument("--docs", default="docs/results", help="where table2.md goes (default docs/results)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    docs = Path(args.docs)
    record = load_record(docs / "table2.json", experiment_of(args))
    if not args.audioclip:
        print("note: no --audioclip: the paper's FAD (AudioCLIP) is not measured; VGGish FAD is", flush=True)
    if args.dataset in record["datasets"]:
        print(f"== {args.dataset}: finished before (in {docs / 'table2.json'})", flush=True)
    else:
        record["datasets"][args.dataset] = run_dataset(args)
        record.setdefault("commands", {})[args.dataset] = reproducing_command(argv)
        write_json(docs / "table2.json", record)
    write_page(docs, record)
    print(f"wrote {docs / 'table2.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
