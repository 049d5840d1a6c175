"""The Table-2 page: our figures beside the paper's Table 2 and MM-Diffusion's, and how our protocol differs.

Published figures are written here once, with where each comes from; a figure we do not hold is None and shows
as "—" (never filled in from memory).
"""

from __future__ import annotations

import math

from avdit.eval.av_align import REFERENCE, ROBUST
from avdit.eval.features.audioclip import SAMPLE_RATE as MMD_AUDIO_RATE
from avdit.eval.features.audioclip import SECONDS as MMD_AUDIO_SECONDS

AVDIT = ("Kim et al., \"A Versatile Diffusion Transformer with Mixture of Noise Levels for Audiovisual Generation\", "
         "NeurIPS 2024, arXiv 2405.13762")
MMD = ("Ruan et al., \"MM-Diffusion: Learning Multi-Modal Diffusion Models for Joint Audio and Video Generation\", "
       "CVPR 2023, arXiv 2212.09478; code github.com/researchmm/MM-Diffusion")

TASKS = ("reconstruction", "joint", "a2v", "v2a")
TASK_NAMES = {"reconstruction": "Reconstruction", "joint": "Joint", "a2v": "A2V", "v2a": "V2A"}
# (key in our results, header, format); "FAD-AudioCLIP" is the paper's and MM-Diffusion's FAD (given --audioclip)
COLUMNS = (("FAD-AudioCLIP", "FAD AudioCLIP ×1e4 ↓", "{:.2f}"), ("FAD", "FAD VGGish ↓", "{:.2f}"),
           ("FVD", "FVD ↓", "{:.2f}"), ("KVD", "KVD ↓", "{:.2f}"), (REFERENCE, "AV-align ↑", "{:.2f}"),
           (ROBUST, "AV-align robust ↑", "{:.3f}"))
AV_ALIGN_DATASETS = ("landscape",)  # the paper reports AV-align on Landscape only; so do we
# today's papers' metrics (av-benchmark, JavisBench), shown when measured (--panns, --imagebind, --synchformer)
MODERN = (("FD-PANNs", "FD-PANNs ↓", "{:.2f}"), ("AV-IB", "AV-IB ↑", "{:.3f}"), ("DeSync", "DeSync s ↓", "{:.3f}"))

# The paper's Table 2 as printed on its poster (docs/paper.md, Table 2): dataset -> (task, model) -> figures.
# "MM-Diffusion" rows are MM-Diffusion as the AVDiT authors measured it there. The table holds Reconstruction, A2V
# and V2A only.
PAPER = {
    "aist++": {
        ("reconstruction", "AVDiT"): {"FAD-AudioCLIP": 0.90, "FVD": 11.72, "KVD": 0.96},
        ("a2v", "MM-Diffusion"): {"FVD": 184.45, "KVD": 33.91},
        ("a2v", "AVDiT"): {"FVD": 38.04, "KVD": 5.27},
        ("v2a", "MM-Diffusion"): {"FAD-AudioCLIP": 13.30},
        ("v2a", "AVDiT"): {"FAD-AudioCLIP": 1.11},
    },
    "landscape": {
        ("reconstruction", "AVDiT"): {"FAD-AudioCLIP": 0.76, "FVD": 16.41, "KVD": -0.25, REFERENCE: 0.60},
        ("a2v", "MM-Diffusion"): {"FVD": 238.33, "KVD": 15.14, REFERENCE: 0.54},
        ("a2v", "AVDiT"): {"FVD": 86.79, "KVD": 4.30, REFERENCE: 0.57},
        ("v2a", "MM-Diffusion"): {"FAD-AudioCLIP": 13.60, REFERENCE: 0.50},
        ("v2a", "AVDiT"): {"FAD-AudioCLIP": 0.78, REFERENCE: 0.51},
    },
}
# MM-Diffusion's own published figures (its CVPR 2023 paper) are not in the material this project holds: None.
MMD_OWN: dict[str, dict] = {"aist++": {}, "landscape": {}}

# MM-Diffusion's evaluator (mm_diffusion/evaluator.py, py_scripts/eval.py, evaluations/fvd/fvd.py at commit 7250222);
# its audio rate and span are those avdit's AudioCLIP FAD reads (avdit.eval.features.audioclip)
MMD_CLIPS, MMD_FRAMES = 2048, 16


def columns(dataset: str, result: dict | None = None) -> tuple:
    """The paper's columns (AV-align where it reports it), then today's metrics that ``result`` holds."""
    rows = list(result["rows"].values()) if result else []
    return (tuple(c for c in COLUMNS if dataset in AV_ALIGN_DATASETS or c[0] not in (REFERENCE, ROBUST))
            + tuple(c for c in MODERN if any(c[0] in row for row in rows)))


def _cell(row: dict | None, key: str, fmt: str, ours: bool) -> str:
    if ours and key == "FAD-AudioCLIP" and row and "FAD" in row and key not in row:  # audio scored, no AudioCLIP
        return "no --audioclip"
    if row is None or key not in row or (isinstance(row[key], float) and math.isnan(row[key])):
        return "—"
    return fmt.format(row[key])


def dataset_table(dataset: str, result: dict | None, codecs: str) -> str:
    """One dataset's rows in the paper's order: per task, MM-Diffusion's own paper, MM-Diffusion in AVDiT's Table
    2, the AVDiT paper, ours; then the held-out clips' own AV-align."""
    used = columns(dataset, result)
    lines = ["| task | model | " + " | ".join(header for _, header, _ in used) + " |",
             "|---|---|" + "---:|" * len(used)]
    paper = PAPER[dataset]
    for task in TASKS:
        sources = []
        if task != "reconstruction":
            sources.append(("MM-Diffusion (its paper)", MMD_OWN[dataset].get(task), False))
            sources.append(("MM-Diffusion (AVDiT's Table 2)", paper.get((task, "MM-Diffusion")), False))
        sources.append(("AVDiT (paper)" + (", its codecs" if task == "reconstruction" else ""),
                        paper.get((task, "AVDiT")), False))
        ours = result["rows"].get(task) if result else None
        sources.append(("ours" + (f", {codecs}" if task == "reconstruction" else "") +
                        ("" if result else " (not run yet)"), ours, True))
        for name, row, is_ours in sources:
            cells = [_cell(row, key, fmt, is_ours and result is not None) for key, _, fmt in used]
            lines.append(f"| {TASK_NAMES[task]} | {name} | " + " | ".join(cells) + " |")
    if result and result.get("ground_truth"):
        truth = result["ground_truth"]
        cells = ["—" if key not in truth else fmt.format(truth[key]) for key, _, fmt in used]
        lines.append("| held-out clips themselves | — | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def protocol(experiment: dict, clip: dict | None) -> str:
    """Each difference between MM-Diffusion's evaluator (which the paper's Table 2 uses) and ours, as a list;
    ``clip``: the prepared clips' settings (None: the paper's geometry, 21 frames at 10 fps, 16 kHz)."""
    e = experiment
    fps, seconds, rate = (10, 2.1, 16000) if clip is None else (clip["fps"], clip["duration"], clip["sample_rate"])
    frames = round(seconds * fps)
    items = (
        (f"**Clips.** MM-Diffusion: {MMD_CLIPS} generated clips against {MMD_CLIPS} real ones. Ours: {e['num']} "
         "held-out clips per task; the conditional tasks condition on them, and every task is scored against them "
         "(a2v and v2a keep the given modality, so each is scored on the other one only, as in the paper)."),
        ("**Reference set.** MM-Diffusion scores against its training set (its README: \"We only use the training set "
         "for training and evaluation\"; `ref_dir` = `landscape/train`). Ours: the test split of `avdit prepare` "
         f"(files chosen by a hash of their path, --test-fraction {e['test_fraction']:g}), never trained on."),
        ("**Which clips.** MM-Diffusion: every 16-frame window at a stride of one frame (torchvision `VideoClips`, "
         "`frames_between_clips=1`, resampled to 10 fps), shuffled without a seed, the first 2048 taken. Ours: clips "
         f"every {e['hop']:g} s from each held-out file (`avdit prepare --hop`), {e['num']} of them drawn with seed 0."),
        (f"**Frames for FVD/KVD.** MM-Diffusion: {MMD_FRAMES} frames (1.6 s at 10 fps). Ours: all {frames} frames "
         f"({seconds:g} s at {fps} fps) the model makes (1 + 4k frames for a causal video codec). Both: 64x64 clips upsampled bilinearly to "
         "224x224, scaled to [-1, 1], the time-averaged 400 Kinetics logits of I3D; FVD the Fréchet distance of those "
         "logits; KVD the unbiased polynomial MMD² with sklearn's default kernel (degree 3, gamma 1/400, coef0 1): "
         "the same formulas."),
        ("**64x64 frames.** MM-Diffusion resizes keeping the aspect ratio (bicubic) and pads to a square; "
         "`avdit prepare` crops the centre square and resizes. I3D weights: MM-Diffusion's `i3d_pretrained_400.pt`; "
         "ours any Kinetics-400 I3D converted to PyTorch (`--i3d`; pytorch-i3d's `rgb_imagenet.pt` loads as is)."),
        (f"**FAD.** MM-Diffusion's (and so the paper's) FAD is the Fréchet distance of AudioCLIP's (ESResNeXt-FBSP) "
         f"raw 1024-d audio embeddings of the first {MMD_AUDIO_SECONDS:g} s of audio read at {MMD_AUDIO_RATE} Hz "
         "(first channel, zero-padded), times 1e4. With `--audioclip` ours is the same: the same network "
         "(`avdit/eval/features/audioclip.py`, held to AudioCLIP's own code on fixed weights by a test), the same "
         "audio span, input scale and ×1e4; our clips' audio is resampled from "
         + (f"{rate} Hz" if rate != MMD_AUDIO_RATE else "the prepared rate") + f" to {MMD_AUDIO_RATE} Hz first"
         + (" (nothing above 8 kHz then, in generated and reference clips alike, where MM-Diffusion reads the files' "
            "own 44.1-kHz sound)" if rate < MMD_AUDIO_RATE else "") + ". Beside it, VGGish FAD (`FAD VGGish`): 128-d "
         "embeddings of each whole 0.96 s of 16 kHz audio (two per 2.1-s clip, each a sample), not scaled: another "
         "number on another scale" + ("." if rate == 16000 else f"; our clips are resampled from {rate} Hz to 16 kHz "
                                                                "for it.")),
        ("**Today's metrics** (not in the paper, so never beside a published figure): FD-PANNs (`--panns`), "
         "av-benchmark's Fréchet distance of PANNs Cnn14 embeddings of the first 8 s at 16 kHz; AV-IB "
         "(`--imagebind`), JavisBench's cosine similarity of ImageBind's video and audio embeddings; DeSync "
         "(`--synchformer`), the absolute audio-video offset in seconds Synchformer predicts, as av-benchmark and "
         "JavisBench compute it. AV-IB and DeSync score whole clips, the given modality included, as those "
         "harnesses do; each network is held to its reference code on fixed weights by a test."),
        ("**AV-align** (Yariv et al.'s formula, `AV-align`) on Landscape only, as the paper reports it; beside it "
         "avdit's `AV-align-robust` (one-to-one peak matching minus its chance level), which a flickering video "
         "cannot game (docs/studies.md)."),
        (f"**Sampling.** Ours: DDIM, {e['eval_steps']} steps (the paper: 250), guidance {e['guidance']:g} (avdit's "
         f"free guidance from MoNL), seeds fixed per batch of {e['eval_batch_size']} clips."),
    )
    return "\n".join(f"- {item}" for item in items)


def fmt_minutes(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0f} min"
