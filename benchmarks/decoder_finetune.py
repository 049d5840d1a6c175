"""A study, not a recipe: fine-tune the video decoder on latents the model made, so it decodes the model's own
errors to the clip they stand for; then measure windows and streams with ``--codecs OUT``.

    python benchmarks/decoder_finetune.py --out runs/made_decoder [--checkpoint DIR] [--num 2048] [--steps 1500]
                                          [--highest 500] [--clean 0.25] [--loss codec]

Pairs: training Bouncing Tones clips, their latents, and latents the model makes of them: the made cells start from
the clip's own latents noised to a level drawn in 1..``--highest`` (SDEdit) and go to 0 in 6 DDIM steps (guidance 1),
on the av_continue grid (segments 0-1 given) or with every cell made, half each. Up to level 500 the bounce is still
the clip's, so the clip is what the made latents stand for; what differs is the model's own error (a disc made 5-10 %
too large or small, frame to frame). A share ``--clean`` of the pairs are the clip's own latents, so plain
reconstruction is kept. Each epoch draws new levels. The decoder is trained on the codec's loss (contrast-weighted
L2 and SSIM); the encoder, and so the latents and every model made with them, stay as they are (the codec digest
leaves the decoder out). ``--loss mse`` trains on plain MSE instead: the codec's loss weighs a missed disc pixel
more than a painted background one, so where the made latents leave the disc's edge uncertain it paints a larger disc.
Writes a codec folder: the bundled audio codec and the tuned video codec.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from avdit.codecs.interface import bundled_codecs_dir, save_codec
from avdit.codecs.losses import video_loss
from avdit.data import bouncing_tones as bt
from avdit.diffusion import DEFAULT_SCHEDULE, SAMPLERS, conditioned_denoiser, eps_denoiser, initial_latents
from avdit.latents import AV
from avdit.pipeline import Pipeline
from avdit.tasks import get_task

sys.path.insert(0, str(Path(__file__).parent))
from anchored_finetune import encode  # noqa: E402


@torch.no_grad()
def made_latents(pipe: Pipeline, latents: AV, given: torch.Tensor, start: torch.Tensor, steps: int,
                 generator: torch.Generator) -> AV:
    """The made cells of grids ``given`` (B, M, N) from ``latents`` noised to per-example levels ``start`` (B,),
    ``steps`` DDIM steps to 0, guidance 1; given cells are ``latents``'."""
    fraction = torch.linspace(1, 0, steps + 1).view(-1, 1)  # (S + 1, 1)
    levels = (fraction * start.view(1, -1).float()).round().long().view(steps + 1, -1, 1, 1)  # (S + 1, B, 1, 1)
    matrix = torch.where(given.unsqueeze(0), torch.zeros_like(levels), levels)  # (S + 1, B, M, N)
    schedule = DEFAULT_SCHEDULE
    x = initial_latents(latents, matrix[0], pipe.layout, schedule, generator)
    denoiser = conditioned_denoiser(eps_denoiser(pipe.model, pipe.layout, schedule), given, latents, pipe.layout,
                                    "clean", 1.0, schedule, generator)
    return SAMPLERS["ddim"](denoiser, x, matrix, pipe.layout, schedule, generator=generator, self_condition=False,
                            progress=False)


def make_pairs(pipe: Pipeline, latents: AV, highest: int, clean: float, generator: torch.Generator,
               batch: int = 64) -> torch.Tensor:
    """(B, C, T, h, w) video latents to decode: made from ``latents`` (see the module), or the clip's own."""
    n = pipe.layout.num_segments
    grids = torch.stack([get_task("av_continue", n).given, torch.zeros(2, n, dtype=torch.bool)])  # (2, M, N)
    out = []
    for i in range(0, latents.batch_size, batch):
        part = AV(latents.video[i:i + batch], latents.audio[i:i + batch])
        b = part.batch_size
        given = grids[torch.randint(0, 2, (b,), generator=generator)]  # (b, M, N)
        start = torch.randint(1, highest + 1, (b,), generator=generator)
        made = made_latents(pipe, part, given, start, 6, generator).video
        keep = (torch.rand(b, generator=generator) < clean).view(-1, 1, 1, 1, 1)
        out.append(torch.where(keep, part.video, made))
    return torch.cat(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="codec folder to write")
    parser.add_argument("--checkpoint", default=None, help="the model that makes the latents (default: bundled)")
    parser.add_argument("--num", type=int, default=2048, help="training clips (default 2048)")
    parser.add_argument("--steps", type=int, default=1500, help="decoder steps (default 1500)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--lr", type=float, default=2e-4, help="learning rate, cosine to 0 (default 2e-4)")
    parser.add_argument("--highest", type=int, default=500, help="highest level the made cells start from")
    parser.add_argument("--clean", type=float, default=0.25, help="share of pairs that are the clip's own latents")
    parser.add_argument("--loss", choices=("codec", "mse"), default="codec",
                        help="the codec's loss (contrast-weighted L2 and SSIM) or plain MSE (default codec)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    pipe = Pipeline.from_pretrained(args.checkpoint)
    began = time.perf_counter()
    clips = [bt.make_clip(0, i, "train") for i in range(args.num)]
    video = torch.from_numpy(np.stack([c.video for c in clips]))  # (num, 17, 64, 64, 3) uint8
    with torch.no_grad():
        latents = encode(pipe, [(c.video, c.audio) for c in clips])
    print(f"encoded {args.num} clips in {time.perf_counter() - began:.0f} s", flush=True)

    codec = copy.deepcopy(pipe.codecs.video).train()
    decoder = codec.net.decoder
    codec.requires_grad_(False)
    decoder.requires_grad_(True)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=args.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    per_epoch = args.num // args.batch
    began, pairs, order = time.perf_counter(), None, None
    for step in range(args.steps):
        if step % per_epoch == 0:  # new made latents each epoch
            pairs = make_pairs(pipe, latents, args.highest, args.clean, generator)
            order = torch.randperm(args.num, generator=generator)
            print(f"pairs made, {time.perf_counter() - began:.0f} s", flush=True)
        index = order[(step % per_epoch) * args.batch:(step % per_epoch + 1) * args.batch]
        target = codec.to_pixels(video[index])  # (b, 3, T, H, W) in [-1, 1]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            recon = decoder(codec.denormalise(pairs[index])).float()
        if args.loss == "codec":
            loss, parts = video_loss(recon, target, torch.zeros(1), latent_weight=0.0)
        else:
            loss = ((recon - target) ** 2).mean()
            parts = {"l2": loss.item()}
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f} (l2 {parts['l2']:.5f}), "
                  f"{time.perf_counter() - began:.0f} s", flush=True)
    out = Path(args.out)
    recorded = json.loads((bundled_codecs_dir() / "video.json").read_text())  # its clips' geometry, its training
    save_codec(codec.eval(), out, {k: v for k, v in recorded.items() if k not in codec.describe()}
               | {"tuned": f"benchmarks/decoder_finetune.py {vars(args)}"})
    for name in ("audio.json", "audio.safetensors"):
        shutil.copy(bundled_codecs_dir() / name, out / name)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
