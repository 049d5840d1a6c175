"""A study, not a recipe: fine-tune the bundled model on windows shaped like a stream's rolled windows, then measure
its streams with ``benchmarks/stream_drift.py --checkpoint OUT``.

    python benchmarks/anchored_finetune.py --out runs/anchored_ft [--init DIR] [--num 2048] [--steps 1500]
                                           [--anchored 0.5] [--recycle 0.5] [--recycle-level 500] [--grow 0]
                                           [--cosine] [--save-every N]

A rolled window is given, in segment 0, the first window's segment 0 (the anchor) and, in segment 1, the last 0.5 s
made; the bundled model never saw a segment 0 that is not the moment before segment 1. Here an anchored window is cut
from a longer Bouncing Tones clip (the same bounce for 10 s; ``make_clip``'s ``frames``): frame 0 and the first
0.125 s of audio from the clip's start, frames 1-16 and their audio from a random later point. Each step's batch
is ``--anchored`` of such windows, drawn as av_continue (segments 0-1 clean, 2-4 at one level), and the rest plain
training clips drawn from the bundled model's own mixture (``model.json``); v loss, AdamW, EMA 0.998, bf16. Writes
a checkpoint with the bundled codecs. docs/streams.md has what it gave.

``--recycle P`` (error recycling, ``avdit.train.error_recycling``): in a share P of the anchored windows, the
carried segment 1 is the model's own estimate of it from a level up to ``--recycle-level``, and the target the true
continuation. The bundled model's last stage is this with ``--recycle 0.5 --steps 3000``, from the model bundled before
it (``--init``: a folder with that model's files from git, docs/studies.md).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from avdit.data import bouncing_tones as bt
from avdit.diffusion.loss import LossWeighting, diffusion_loss, reduce_loss
from avdit.diffusion.noise_levels import parse_noise_levels
from avdit.latents import AV
from avdit.layout import BOUNCING_TONES
from avdit.model import AVDiT
from avdit.pipeline import Pipeline, bundled_model_dir
from avdit.train.error_recycling import recycle_carried_segment

LONG_FRAMES = bt.FRAMES + 64  # 10 s of one bounce: the later point is up to 8 s after the anchor
PER_FRAME = bt.SAMPLES_PER_FRAME
SEGMENT0 = BOUNCING_TONES.segment_frames(0).stop  # frames of segment 0 (1)


def anchored_window(index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames (17, 64, 64, 3) and audio (34000,) of one anchored window from long training clip ``index``."""
    clip = bt.make_clip(0, index, "train", frames=LONG_FRAMES)
    later = int(rng.integers(1, LONG_FRAMES - bt.FRAMES + 1))  # the window's frame 0 would be frame ``later``
    video = np.concatenate([clip.video[:SEGMENT0], clip.video[later + SEGMENT0:later + bt.FRAMES]])
    audio = np.concatenate([clip.audio[:SEGMENT0 * PER_FRAME],
                            clip.audio[(later + SEGMENT0) * PER_FRAME:(later + bt.FRAMES) * PER_FRAME]])
    return video, audio


def encode(pipe: Pipeline, pairs: list[tuple[np.ndarray, np.ndarray]], batch: int = 64) -> AV:
    parts = [pipe.codecs.encode(torch.from_numpy(np.stack([v for v, _ in pairs[i:i + batch]])),
                                torch.from_numpy(np.stack([a for _, a in pairs[i:i + batch]])).float())
             for i in range(0, len(pairs), batch)]
    return AV(torch.cat([p.video for p in parts]), torch.cat([p.audio for p in parts]))


def grown(model: AVDiT, blocks: int) -> AVDiT:
    """``model`` with ``blocks`` more transformer blocks after its last; adaLN-Zero starts each as the identity, so
    the grown model predicts exactly what ``model`` does until it is trained."""
    if blocks == 0:
        return model
    bigger = AVDiT(dataclasses.replace(model.config, depth=model.config.depth + blocks))
    missing, unexpected = bigger.load_state_dict(model.state_dict(), strict=False)
    new = {f"blocks.{model.config.depth + k}." for k in range(blocks)}
    if unexpected or not all(any(m.startswith(n) for n in new) for m in missing):
        raise RuntimeError(f"growing the model: missing {missing}, unexpected {unexpected}")
    return bigger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--init", default=None, help="checkpoint to start from (default: the bundled model)")
    parser.add_argument("--num", type=int, default=2048, help="plain and anchored windows each (default 2048)")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps (default 1500)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate after 100 warm-up steps (default 5e-5)")
    parser.add_argument("--anchored", type=float, default=0.5, help="share of each batch anchored (default 0.5)")
    parser.add_argument("--recycle", type=float, default=0.0,
                        help="share of anchored windows given the model's own carried segment (default 0)")
    parser.add_argument("--recycle-level", type=int, default=500,
                        help="highest level of the pass that makes it (default 500)")
    parser.add_argument("--cosine", action="store_true",
                        help="scale the learning rate by a cosine over the run, to 0 at the last step (default: constant)")
    parser.add_argument("--save-every", type=int, default=0,
                        help="also write the EMA model to OUT/step_N every N steps (default: only at the end)")
    parser.add_argument("--grow", type=int, default=0,
                        help="blocks added after the model's last, each starting as the identity (adaLN-Zero)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    pipe = Pipeline.from_pretrained(args.init)
    layout = pipe.layout
    began = time.perf_counter()
    rng = np.random.default_rng(0)
    plain = encode(pipe, [(c.video, c.audio) for c in (bt.make_clip(0, i, "train") for i in range(args.num))])
    anchored = encode(pipe, [anchored_window(500_000 + i, rng) for i in range(args.num)])
    print(f"encoded {args.num} plain and {args.num} anchored windows in {time.perf_counter() - began:.0f} s")

    info = AVDiT.load_info(Path(args.init) if args.init else bundled_model_dir())
    plain_levels = parse_noise_levels(info["train"]["noise_levels"], layout.num_segments)
    anchored_levels = parse_noise_levels("task:av_continue", layout.num_segments)
    model = grown(pipe.model, args.grow).float().train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, fused=True)
    weighting = LossWeighting("v")
    g = torch.Generator().manual_seed(1)
    num_anchored = round(args.batch * args.anchored)
    num_plain = args.batch - num_anchored
    info = {k: v for k, v in info.items() if k != "model"}
    exported = f"benchmarks/anchored_finetune.py {vars(args)}"
    began = time.perf_counter()
    for step in range(1, args.steps + 1):
        i, j = (torch.randint(0, args.num, (n,), generator=g) for n in (num_plain, num_anchored))
        windows = AV(anchored.video[j], anchored.audio[j])
        if args.recycle > 0:
            windows = recycle_carried_segment(model, windows, layout, args.recycle_level, args.recycle, g)
        x0 = AV(torch.cat([plain.video[i], windows.video]), torch.cat([plain.audio[i], windows.audio]))
        t = torch.cat([plain_levels(num_plain, g)[0], anchored_levels(num_anchored, g)[0]])  # (B, M, N)
        decay = 0.5 * (1 + math.cos(math.pi * step / args.steps)) if args.cosine else 1.0
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 100) * decay
        with torch.autocast("cpu", dtype=torch.bfloat16):
            per_element = diffusion_loss(model, x0, t, layout, generator=g, prediction=model.config.prediction)
        per_example = reduce_loss(per_element, t, layout, weighting)  # (B,)
        per_example.mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.lerp_(p, 1 - 0.998)
        if step % 50 == 0:
            print(f"step {step}: loss plain {per_example[:num_plain].mean():.4f}, anchored "
                  f"{per_example[num_plain:].mean():.4f}, {time.perf_counter() - began:.0f} s", flush=True)
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            ema.save_pretrained(Path(args.out) / f"step_{step}", {**info, "exported_from": f"{exported} at step {step}"})
    ema.save_pretrained(Path(args.out), {**info, "exported_from": exported})
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
