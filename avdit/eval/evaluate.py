"""``avdit evaluate``: generate clips for every task from held-out clips and score them, as one table.

Per task: Fréchet distances (BT-FVD, BT-FAD from the bundled Bouncing Tones nets; FVD, FAD, FAD-AudioCLIP and
FD-PANNs when the user gives I3D, VGGish, AudioCLIP and PANNs weights), KVD (polynomial MMD on the same video
features), AV-align (avdit's robust score, ``AV-align-robust``, with the paper's formula beside it as ``AV-align``),
AV-IB and DeSync when the user gives ImageBind and Synchformer weights (means over clips, whole clips as made), and on
Bouncing Tones the exact measures read from the decoded clips. Given frames and audio are excluded from the feature
metrics as the paper does: they are blanked in reference and generated clips alike (``blank_given``), and a modality
a task gives entirely has no score there. The first row scores codec reconstructions of the references. Fixed seeds: a
rerun gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avdit.diffusion.sampling import SAMPLER_NAMES, SamplingConfig, order_runs
from avdit.eval.av_align import REFERENCE, ROBUST, av_align_scores
from avdit.eval.features import FeatureExtractor, PairedScorer, load_extractors, load_paired
from avdit.eval.features.bt_nets import blank_given
from avdit.eval.measures import class_mix, clip_measures, summarise
from avdit.eval.metrics import StreamingStats, frechet_from_stats, polynomial_mmd2
from avdit.layout import AUDIO, BOUNCING_TONES, VIDEO, ClipLayout, same_geometry
from avdit.tasks import TASK_PRESETS, Task, get_task
from avdit.utils.atomic import atomic_path, write_json

ALL_TASKS = ("joint", "a2v", "v2a", "av_continue", "av_inpaint")
RECONSTRUCTION = "reconstruction"


@dataclass
class EvalSettings:
    tasks: tuple[str, ...] = ALL_TASKS
    data: str = "bouncing-tones"
    num: int = 200  # clips per task
    # how: None is the preset the checkpoint is made for, as generation ("default"; "distilled" for a student of
    # `avdit distill`); "paper" for the paper's
    sampling: SamplingConfig | None = None
    seed: int = 0
    batch_size: int = 32
    av_align: bool = True
    bt_features: str | None = None  # folder with other BT feature nets; None: the bundled ones
    i3d: str | None = None  # local I3D weights -> FVD/KVD
    vggish: str | None = None  # local VGGish weights -> FAD
    audioclip: str | None = None  # local AudioCLIP weights -> FAD-AudioCLIP (MM-Diffusion's FAD, x 1e4)
    panns: str | None = None  # local PANNs Cnn14 (16 kHz) weights -> FD-PANNs (av-benchmark's)
    imagebind: str | None = None  # local ImageBind (huge) weights -> AV-IB (JavisBench's)
    synchformer: str | None = None  # local Synchformer weights -> DeSync (av-benchmark's, JavisBench's)
    checkpoint: str | None = None
    codecs: str | None = None  # codec folder (None: the ones the checkpoint names)
    device: str | None = None  # where the model samples and the feature networks run (None: a GPU when there is one)


def parse_tasks(text: str) -> tuple[str, ...]:
    if text == "all":
        return ALL_TASKS
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    for name in names:
        if name not in TASK_PRESETS and ":" not in name:  # grids are checked against the model's layout
            get_task(name, 3)  # a clear error for an unknown task
    if not names:
        raise ValueError("tasks= is empty: give 'all' or a comma-separated list such as 'a2v,av_continue'")
    return names


def held_out(data: str, num: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``num`` clips of the test split: video (num, T, H, W, 3) uint8, audio (num, S), classes (BT only)."""
    from avdit.data.datasets import open_dataset

    dataset = open_dataset(data, split="test", size=num, seed=seed)
    if len(dataset) < num:
        raise ValueError(f"{data} has {len(dataset)} held-out clips; ask for at most that many with num=")
    items = [dataset[i] for i in tqdm(range(num), desc="held-out clips", leave=False)]
    classes = np.array([item["k"] for item in items]) if "k" in items[0] else None
    return (np.stack([item["video"].numpy() for item in items]), np.stack([item["audio"].numpy() for item in items]),
            classes)


def feature_scores(extractors: list[FeatureExtractor], given: np.ndarray, ref_video, ref_audio, video, audio,
                   ref_cache: dict, layout: ClipLayout) -> dict[str, float]:
    """Fréchet distance per extractor (and KVD on video features) over the generated parts only."""
    scores = {}
    blanked_ref = blank_given(ref_video, ref_audio, given, layout)
    blanked = blank_given(video, audio, given, layout)
    for extractor in extractors:
        m = extractor.modality
        if given[m].all():
            continue  # the task gives this modality: nothing generated to score
        key = (extractor.metric, given.tobytes())
        if key not in ref_cache:
            ref_cache[key] = extractor(blanked_ref[m], layout.sample_rate)
        real, fake = ref_cache[key], extractor(blanked[m], layout.sample_rate)
        stats = []
        for features in (real, fake):
            s = StreamingStats(features.shape[-1])
            s.update(features.reshape(-1, features.shape[-1]))
            stats.append(s)
        scores[extractor.metric] = extractor.scale * frechet_from_stats(*stats)
        if m == VIDEO:
            kvd = extractor.metric.replace("FVD", "KVD")
            scores[kvd] = polynomial_mmd2(real.mean(axis=1), fake.mean(axis=1))
    return scores


def bt_scores(video: np.ndarray, audio: np.ndarray, given: np.ndarray, classes: np.ndarray | None) -> dict:
    """The Bouncing Tones measures, how often each generated modality keeps the reference's class, and where nothing
    is given (joint), how like the reference's the mix of classes drawn is."""
    measures = [clip_measures(v, a) for v, a in zip(video, audio)]
    summary = summarise(measures)
    summary.pop("clips")
    if classes is not None and given.any():
        kept = []
        for m, key in ((VIDEO, "colour"), (AUDIO, "pitch")):
            if not given[m].all():
                kept.append([measure[key] == k for measure, k in zip(measures, classes)])
        summary["class_kept"] = float(np.mean(kept)) if kept else math.nan
    if classes is not None and not given.any():
        summary["class_mix"] = class_mix(np.array([measure["colour"] for measure in measures]), classes)
    return summary


def evaluate(settings: EvalSettings, out: str | Path, progress: bool = True) -> dict:
    """Run the evaluation; write OUT/results.json and OUT/results.md atomically; return the results."""
    from avdit.pipeline import Pipeline

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out={out} is a file; give a folder")
    if settings.num < 2:
        raise ValueError(f"num={settings.num}: give at least 2 (the distances need two clips per side)")
    start = time.perf_counter()
    pipe = Pipeline.from_pretrained(settings.checkpoint, codecs=settings.codecs, device=settings.device)
    if settings.sampling is None:
        settings = dataclasses.replace(settings, sampling=pipe.default_sampling)
    layout = pipe.layout
    tasks = {name: get_task(name, layout.num_segments) for name in settings.tasks}  # bad grids fail before any work
    bt_layout = same_geometry(layout, BOUNCING_TONES)
    extractors = load_extractors(settings.bt_features, settings.i3d, settings.vggish, settings.audioclip,
                                 settings.panns)
    paired = load_paired(settings.imagebind, settings.synchformer)
    if not bt_layout:  # the Bouncing Tones nets read 17 frames of 64x64 at 16 kHz only
        extractors = [e for e in extractors if not e.metric.startswith("BT-")]
    for scorer in (*extractors, *paired):  # the feature networks run where the model samples
        scorer.net.to(pipe.device)
    ref_video, ref_audio, classes = held_out(settings.data, settings.num, settings.seed)
    if ref_video.shape[1:4] != (layout.frames, layout.height, layout.width) or ref_audio.shape[1] != layout.num_samples:
        raise ValueError(f"{settings.data} holds clips of {ref_video.shape[1]} frames of {ref_video.shape[2]}x"
                         f"{ref_video.shape[3]} and {ref_audio.shape[1]} samples; the model takes {layout.frames} "
                         f"frames of {layout.height}x{layout.width} at {layout.fps} fps and {layout.num_samples} "
                         f"samples: prepare the data with the model's geometry")
    weights = pipe.weights_digest()
    rows, earlier_seconds = _finished_rows(out, settings, weights, progress)
    ref_cache = {}
    jobs = [name for name in (RECONSTRUCTION, *settings.tasks) if name not in rows]
    for name in tqdm(jobs, desc="evaluate", disable=not progress):
        if name == RECONSTRUCTION:
            task_given = np.zeros((2, layout.num_segments), dtype=bool)
            video, audio = reconstruct(pipe, ref_video, ref_audio, settings.batch_size)
        else:
            task = tasks[name]
            task_given = task.given.numpy()
            video, audio = generate(pipe, task, ref_video, ref_audio, settings)
        row = feature_scores(extractors, task_given, ref_video, ref_audio, video, audio, ref_cache, layout)
        if settings.av_align:
            row.update(av_align_means(video, audio, layout))
        row.update(paired_means(paired, video, audio, layout))
        if bt_layout and classes is not None:
            row.update(bt_scores(video, audio, task_given, classes))
        rows[name] = row
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / PROGRESS, {"settings": asdict(settings), "weights": weights, "rows": rows,
                                    "seconds": earlier_seconds + time.perf_counter() - start})
    rows = {name: rows[name] for name in (RECONSTRUCTION, *settings.tasks)}  # the table's order
    reference = av_align_means(ref_video, ref_audio, layout) if settings.av_align else {}
    reference.update(paired_means(paired, ref_video, ref_audio, layout))
    results = {"settings": asdict(settings), "rows": rows, "ground_truth": reference,
               "seconds": round(earlier_seconds + time.perf_counter() - start, 1)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    with atomic_path(out / "results.md", ".md") as tmp:
        Path(tmp).write_text(markdown_table(results))
    (out / PROGRESS).unlink(missing_ok=True)
    return results


def av_align_means(video: np.ndarray, audio: np.ndarray, layout: ClipLayout) -> dict[str, float]:
    """Mean robust and published AV-align over clips: video (N, T, H, W, 3) uint8, audio (N, S)."""
    scores = [av_align_scores(v, a, layout.fps, layout.sample_rate) for v, a in zip(video, audio)]
    return {key: float(np.mean([s[key] for s in scores])) for key in (ROBUST, REFERENCE)}


def paired_means(scorers: list[PairedScorer], video: np.ndarray, audio: np.ndarray,
                 layout: ClipLayout) -> dict[str, float]:
    """Mean AV-IB / DeSync over clips, whole clips as made (given parts included, as the harnesses score them)."""
    return {s.metric: float(np.mean(s(video, audio, layout.fps, layout.sample_rate))) for s in scorers}


PROGRESS = "progress.json"  # the rows finished so far, so an interrupted evaluation resumes


def _finished_rows(out: Path, settings: EvalSettings, weights: str, progress: bool) -> tuple[dict, float]:
    """Rows an interrupted run of these very settings and weights (``Pipeline.weights_digest``) finished (and its
    seconds); says whether it resumes."""
    path = out / PROGRESS
    if not path.exists():
        if progress and (out / "results.json").exists():
            print(f"avdit evaluate: {out} holds a finished evaluation; evaluating again (its results are replaced "
                  "at the end)", flush=True)
        return {}, 0.0
    saved = json.loads(path.read_text())
    if saved["settings"] != json.loads(json.dumps(asdict(settings))):
        if progress:
            print(f"avdit evaluate: {path} was made with other settings; starting over", flush=True)
        return {}, 0.0
    if saved.get("weights") != weights:
        if progress:
            print(f"avdit evaluate: {path} was made with other weights than the model and codecs loaded now; "
                  "starting over", flush=True)
        return {}, 0.0
    if progress:
        print(f"avdit evaluate: resuming in {out}: {', '.join(saved['rows'])} already done", flush=True)
    return saved["rows"], saved["seconds"]


@torch.no_grad()
def reconstruct(pipe, video: np.ndarray, audio: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    outs_v, outs_a = [], []
    for i in range(0, len(video), batch_size):
        latents = pipe.codecs.encode(torch.from_numpy(video[i:i + batch_size]), torch.from_numpy(audio[i:i + batch_size]))
        v, a = pipe.codecs.decode(latents)
        outs_v.append(v.numpy())
        outs_a.append(a.numpy())
    return np.concatenate(outs_v), np.concatenate(outs_a)


def generate(pipe, task: Task, video: np.ndarray, audio: np.ndarray, settings: EvalSettings):
    """One generated clip per held-out clip; batch b uses seed + b, so results do not depend on timing."""
    outs_v, outs_a = [], []
    for b, i in enumerate(range(0, len(video), settings.batch_size)):
        v, a = video[i:i + settings.batch_size], audio[i:i + settings.batch_size]
        result = pipe(task, v, a, num=len(v), seed=settings.seed + b, sampling=settings.sampling)
        outs_v.append(result.video)
        outs_a.append(result.audio)
    return np.concatenate(outs_v), np.concatenate(outs_a)


COLUMNS = (  # key, header, format; lower is better for distances
    ("BT-FVD", "BT-FVD ↓", "{:.1f}"), ("BT-KVD", "BT-KVD ↓", "{:.2f}"), ("BT-FAD", "BT-FAD ↓", "{:.2f}"),
    ("FVD", "FVD ↓", "{:.1f}"), ("KVD", "KVD ↓", "{:.2f}"), ("FAD", "FAD ↓", "{:.2f}"),
    ("FAD-AudioCLIP", "FAD AudioCLIP ×1e4 ↓", "{:.2f}"), ("FD-PANNs", "FD-PANNs ↓", "{:.2f}"),
    ("AV-IB", "AV-IB ↑", "{:.3f}"), ("DeSync", "DeSync s ↓", "{:.3f}"),
    (ROBUST, "AV-align robust ↑", "{:.3f}"), (REFERENCE, "AV-align (paper) ↑", "{:.3f}"),
    ("identity_agreement", "colour = pitch ↑", "{:.0%}"), ("class_kept", "class kept ↑", "{:.0%}"),
    ("class_mix", "class mix ↑", "{:.2f}"),
    ("identity_consistency", "one class ↑", "{:.0%}"), ("one_disc", "one disc ↑", "{:.0%}"),
    ("sync_error_ms", "sync impact→onset ms ↓", "{:.0f}"), ("onset_sync_error_ms", "sync onset→impact ms ↓", "{:.0f}"),
    ("onset_precision", "onset precision ↑", "{:.2f}"), ("onset_recall", "onset recall ↑", "{:.2f}"),
    ("onset_f1", "onset F1 ↑", "{:.2f}"),
    ("trajectory_rms_px", "trajectory rms px ↓", "{:.2f}"),
)


def markdown_table(results: dict) -> str:
    rows = results["rows"]
    used = [c for c in COLUMNS if any(c[0] in row for row in rows.values())]
    lines = ["| task | " + " | ".join(header for _, header, _ in used) + " |",
             "|---|" + "---:|" * len(used)]
    for name, row in rows.items():
        cells = [fmt.format(row[key]) if key in row and not _nan(row[key]) else "—" for key, _, fmt in used]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    s = results["settings"]
    sampling = s.get("sampling", s)  # results of earlier versions kept the sampling fields at the top
    order, lag = sampling.get("order", "together"), sampling.get("pyramid_lag", 0)
    runs = len(order_runs(order))
    ordered = "" if not runs else f" (where both modalities are generated: {order}, {runs} times the steps)"
    ordered += f", pyramid lag {lag}" if lag else ""
    sampler = SAMPLER_NAMES.get(sampling["sampler"], sampling["sampler"])
    notes = [f"\n{s['num']} held-out clips per task from {s['data']}, {sampling['steps']} {sampler} steps"
             f"{ordered}, guidance {sampling['guidance']}, {sampling['mode']} conditioning, seed {s['seed']}; "
             f"{results['seconds']:.0f} s.",
             "Given frames and audio are blanked in reference and generated clips before the feature metrics; "
             "— : not applicable (the task gives that modality) or not measured."]
    truth = results.get("ground_truth") or {}
    if ROBUST in truth:
        notes.append(f"AV-align of the reference clips themselves: robust {truth[ROBUST]:.3f}, paper "
                     f"{truth[REFERENCE]:.3f}. AV-align robust: one-to-one peak matches above their chance level; "
                     "AV-align (paper): the published formula, which a flickering video games (docs/studies.md).")
    paired = {key: truth[key] for key in ("AV-IB", "DeSync") if key in truth}
    if paired:
        notes.append("Of the reference clips themselves: " + ", ".join(f"{k} {v:.3f}" for k, v in paired.items()) + ".")
    return "\n".join(lines + notes) + "\n"


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
