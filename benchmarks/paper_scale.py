"""The ``paper`` preset with each pretrained codec pair at the paper's geometries: latent shapes, tokens, parameters,
FLOPs of a training step (counted by torch) and activation memory (measured on this CPU), for docs/paper-scale.md.

    python benchmarks/paper_scale.py [--memory ROWS|all] [--json OUT.json]

Latent shapes come from the codecs' strides: Wan 2.1, CogVideoX and HunyuanVideo VAEs 4x temporal, 8x spatial,
16 channels; LTX-Video 8x temporal, 32x spatial, 128 channels; Oobleck (Stable Audio Open) hop 2048 at 44.1 kHz,
64 channels; EnCodec 24 kHz hop 320, 128 channels (its continuous pre-quantiser latents). Beside them, the ``paper``
preset as avdit builds it (avdit's strides, SoundStream-sized 1024-channel audio latents at 40 Hz) and the paper's
own pair (MAGVIT-v2, 8 channels; SoundStream, 1024 channels at 50 Hz). LTX-Video takes 1 + 8k frames, and so does
CogVideoX (it decodes an odd number of latent frames only; docs/pretrained-codecs.md): 17 at both geometries (1.7 s
at 10 fps). ``fits``: whether ``ClipLayout`` takes the pair at that geometry; 2.125 s at 44.1 kHz
is no whole number of samples, so Oobleck at the Monologues geometry does not fit, and is counted with a stand-in
layout that skips the checks (``LooseLayout``): the network and its token counts are the real ones.

FLOPs: one training step (forward, and backward with the preset's gradient checkpointing) at batch 1, on the meta
device (no arithmetic), per sample; ``+sc`` is the no-grad self-conditioning pass the paper runs at rate 0.9 (``avdit
train --self-condition-rate 0.9``; off by default, and off in docs/gpu.md's measurement). Parameters are those of a
run without self-conditioning (with it, the input embeddings take twice the channels). ``--memory`` measures the
resident memory a fp32 training step adds on this CPU over weights, gradients and AdamW state, at batch 1 and 2 in
a process each, and reports the difference per sample (glibc is told to return every large block, so resident
memory follows live memory).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import count_flops

from avdit.diffusion import parse_noise_levels
from avdit.latents import AV
from avdit.layout import GEOMETRIES, ClipLayout
from avdit.model import AVDiT, get_preset

# docs/gpu.md, H200, benchmarks/train_speed.py: paper preset (405 tokens), batch 32, bf16 eager
H200_BF16_MATMUL = 785e12  # FLOP/s of an 8192^3 bf16 matmul in the same run
H200_FRACTION = 0.24  # of that rate the paper preset's training step reached
H200_STEP_S = 0.181  # its seconds per step at batch 32
H200_PEAK_GIB = {"bf16": 24.2, "fp32": 33.6}  # its peak allocated memory at batch 32 (weights, grads, AdamW, no EMA)
H200_BATCH = 32


@dataclass(frozen=True)
class LooseLayout(ClipLayout):
    """A ClipLayout without its checks: audio latents whose boundaries miss the segments' go to the segment their
    start falls in (for counting only)."""

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True)
class Codec:
    name: str
    channels: int
    temporal: int = 4  # video: frames per latent frame after the first
    spatial: int = 8  # video: pixels per latent pixel
    hop: int = 0  # audio: samples per latent
    sample_rate: int = 0  # audio
    frame_step: int = 0  # video: clips of 1 + frame_step * k frames (0: the temporal stride)


VIDEO = [Codec("Wan 2.1", 16), Codec("CogVideoX", 16, frame_step=8), Codec("HunyuanVideo", 16),
         Codec("LTX-Video", 128, temporal=8, spatial=32)]
AUDIO = [Codec("Oobleck", 64, hop=2048, sample_rate=44100), Codec("EnCodec 24k", 128, hop=320, sample_rate=24000)]
AVDIT_OWN = (Codec("avdit (paper preset)", 8), Codec("1024-ch at 40 Hz", 1024, hop=400, sample_rate=16000))
PAPERS_OWN = (Codec("MAGVIT-v2", 8), Codec("SoundStream", 1024, hop=320, sample_rate=16000))
PLACES = {"landscape": "Landscape/AIST++", "monologues": "Monologues"}  # aist++ has Landscape's geometry


def layout_of(geometry: str, video: Codec, audio: Codec) -> tuple[ClipLayout, bool]:
    """The clip layout of a codec pair at a named geometry, and whether ClipLayout itself accepts it."""
    g = GEOMETRIES[geometry]
    step = video.frame_step or video.temporal
    frames = g.frames if (g.frames - 1) % step == 0 else 1 + (g.frames - 1) // step * step
    fields = {"fps": g.fps, "frames": frames, "height": g.height, "width": g.width, "sample_rate": audio.sample_rate,
              "video_temporal_stride": video.temporal, "video_spatial_stride": video.spatial, "audio_hop": audio.hop}
    try:
        return ClipLayout(**fields), True
    except ValueError:
        return LooseLayout(**fields), False


def configurations() -> list[tuple[str, str, Codec, Codec]]:
    rows = [("monologues", "the paper preset as avdit builds it", *AVDIT_OWN),
            ("monologues", "the paper's own codecs", *PAPERS_OWN)]
    for geometry in PLACES:
        rows += [(geometry, f"{v.name} + {a.name}", v, a) for v in VIDEO for a in AUDIO]
    return rows


def build(geometry: str, video: Codec, audio: Codec, self_condition: bool, device: str = "meta") -> AVDiT:
    layout, _ = layout_of(geometry, video, audio)
    config = get_preset("paper", layout=layout, video_channels=video.channels, audio_channels=audio.channels,
                        audio_patch=1, self_condition=self_condition)
    with torch.device(device):
        return AVDiT(config)


def training_step(model: AVDiT, batch: int, self_condition: bool, device: str):
    """One training step's network work as a function: the no-grad self-conditioning pass when asked, the forward on
    noisy latents and per-cell noise levels, and the backward of a squared error (what train_speed.py times, with
    the loss's elementwise arithmetic, which FLOP counts leave out, reduced to a sum of squares)."""
    layout = model.config.layout
    t, _ = parse_noise_levels("monl", layout.num_segments)(batch, torch.Generator().manual_seed(0))  # (B, M, N)
    t = t.to(device)
    z_t = AV(torch.randn(batch, *model.video_shape, device=device), torch.randn(batch, *model.audio_shape, device=device))

    def step():
        self_cond = None
        if self_condition:
            with torch.no_grad():
                self_cond = model(z_t, t)
        eps = model(z_t, t, self_cond)
        (eps.video.square().sum() + eps.audio.square().sum()).backward()

    return step


def figures(geometry: str, name: str, video: Codec, audio: Codec) -> dict:
    layout, fits = layout_of(geometry, video, audio)
    model = build(geometry, video, audio, self_condition=False).train()
    flops = count_flops(training_step(model, 1, False, "meta"))
    with_sc = build(geometry, video, audio, self_condition=True).train()
    flops_sc = count_flops(training_step(with_sc, 1, True, "meta"))
    c = model.config
    return {"geometry": geometry, "pair": name, "fits_layout": fits, "frames": layout.frames,
            "video_latent": [video.channels, *layout.video_latent_shape(video.channels)[1:]],
            "audio_latent": [audio.channels, layout.audio_latents], "segments": layout.num_segments,
            "video_tokens": c.num_video_tokens, "audio_tokens": c.num_audio_tokens,
            "params": model.num_parameters(), "params_sc": with_sc.num_parameters(),
            "gflop": flops / 1e9, "gflop_sc": flops_sc / 1e9}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def activation_mib(geometry: str, video: Codec, audio: Codec, batch: int, counted: bool = False) -> float:
    """Resident memory a fp32 forward + backward at ``batch`` adds over weights, gradients and AdamW state (MiB);
    ``counted``: of that step under FlopCounterMode (as train_speed.py's FLOP count runs it)."""
    torch.manual_seed(0)
    model = build(geometry, video, audio, self_condition=False, device="cpu").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step = training_step(model, batch, False, "cpu")
    step()  # allocates the gradients ...
    optimizer.step()  # ... and AdamW's state
    optimizer.zero_grad(set_to_none=False)  # gradients stay allocated
    base = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current resident size
    count_flops(step) if counted else step()
    return (_rss_kib("VmHWM") - base) / 1024


def measure_in_process(index: int, batch: int, counted: bool = False) -> float:
    """``activation_mib`` in a process of its own (its peak is its own)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}  # large blocks go back to the system when freed
    out = subprocess.run([sys.executable, __file__, "--one", str(index), str(batch), str(int(counted))],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measured_activations(index: int) -> dict:
    """Per-sample and fixed activation memory (MiB) of configuration ``index`` from batches 1 and 2."""
    at = {batch: measure_in_process(index, batch) for batch in (1, 2)}
    return {"activation_mib_per_sample": at[2] - at[1], "activation_mib_fixed": 2 * at[1] - at[2]}


def h200_estimate(row: dict, activation_per_sample_gib: float | None, batch: int = H200_BATCH) -> dict:
    """Step time at ``batch`` per GPU from the FLOPs at the measured fraction of the bf16 matmul rate; memory from
    fp32 weights, gradients, AdamW (2) and EMA plus the activations, scaled to bf16 as measured on the H200."""
    seconds = row["gflop"] * 1e9 * batch / (H200_FRACTION * H200_BF16_MATMUL)
    states = 5 * 4 * row["params"] / 2**30
    memory = None if activation_per_sample_gib is None else states + batch * activation_per_sample_gib
    return {"s_per_step": seconds, "states_gib": states, "memory_gib": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory", default="", metavar="ROWS",
                        help="also measure activation memory on this CPU for these rows (comma-separated indices of "
                             "the table, or 'all'; slow: fp32 training steps at batch 1 and 2 per row)")
    parser.add_argument("--counted", type=int, default=None, metavar="ROW",
                        help="only compare the memory of row ROW's training step at batch 1 alone and under torch's "
                             "FlopCounterMode (as benchmarks/train_speed.py counts FLOPs before it times)")
    parser.add_argument("--json", default=None, help="write every figure to this file")
    parser.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = configurations()
    if args.one:
        geometry, _, video, audio = rows[args.one[0]]
        print(json.dumps(activation_mib(geometry, video, audio, args.one[1], bool(args.one[2]))))
        return
    if args.counted is not None:
        alone, counted = (measure_in_process(args.counted, 1, flag) for flag in (False, True))
        print(f"row {args.counted} ({rows[args.counted][1]}), fp32, batch 1: a training step adds {alone:.0f} MiB, "
              f"the same step under FlopCounterMode {counted:.0f} MiB")
        return
    measure = (set(range(len(rows))) if args.memory == "all" else
               {int(i) for i in args.memory.split(",") if i.strip()})
    results = []
    print(f"{'':>4}{'geometry':<11}{'pair':<38}{'fits':>5}{'video latent':>18}{'audio latent':>14}{'tokens':>10}"
          f"{'params':>14}{'GFLOP/sample':>14}{'+sc':>8}{'act MiB/sample':>16}")
    for i, (geometry, name, video, audio) in enumerate(rows):
        row = figures(geometry, name, video, audio)
        if i in measure:
            row.update(measured_activations(i))
        results.append(row)
        act = row.get("activation_mib_per_sample")
        print(f"{i:>3} {geometry:<11}{name:<38}{'yes' if row['fits_layout'] else 'no':>5}"
              f"{tuple(row['video_latent'])!s:>18}{tuple(row['audio_latent'])!s:>14}"
              f"{row['video_tokens']:>6}+{row['audio_tokens']:<3}{row['params']:>14,}{row['gflop']:>14.1f}"
              f"{row['gflop_sc'] - row['gflop']:>8.1f}{'—' if act is None else f'{act:.0f}':>16}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": results, "torch": torch.__version__,
                                               "threads": torch.get_num_threads()}, indent=1))


if __name__ == "__main__":
    main()
