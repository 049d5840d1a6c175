"""LoRA against a full fine-tune of the bundled model on real videos: checkpoint size, step time, memory, held-out loss.

    python benchmarks/lora.py [--videos DIR] [--steps 200] [--batch-size 16] [--rank 8] [--out runs/lora_bench]

The videos (default: Debian's real videos, as the README's own-videos journey uses; install
golang-github-gabriel-vasile-mimetype-dev and forensics-samples-files) are prepared at the bundled model's geometry
(Bouncing Tones': 64x64, 8 fps, 17 frames; whole files held out for the test split) and encoded with the bundled codecs.
Then the bundled model is fine-tuned on them twice with the same settings and seed, each run in its own process: in
full, and with LoRA adapters of ``--rank`` on the attention and MLP projections (at ``--lora-lr``). Printed: what each
run publishes (bytes), seconds per step (wall time of the whole run, model loading included, over its steps), the peak
resident memory of its process, and the MoNL loss on the held-out clips' latents (the same levels and noise for every
model: lower fits the held-out videos better), with each figure's ratio to the full fine-tune's.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def child(args: list[str]) -> int:
    """Run ``avdit train`` in this process and print its peak memory (MB) as the last line."""
    from avdit.cli import main

    code = main(args)
    print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return code


def held_out_loss(folder: Path, latents, layout, draws: int = 8) -> float:
    """The MoNL loss of the model in ``folder`` on held-out latents, averaged over ``draws`` fixed draws."""
    from avdit.diffusion import diffusion_loss, parse_loss_weighting, parse_noise_levels, reduce_loss
    from avdit.model import AVDiT

    model = AVDiT.from_pretrained(folder)
    levels = parse_noise_levels("monl", layout.num_segments)
    weighting = parse_loss_weighting(model.config.prediction)
    total = 0.0
    with torch.no_grad():
        for k in range(draws):
            g = torch.Generator().manual_seed(k)
            t, _ = levels(latents.batch_size, g)
            per_element = diffusion_loss(model, latents, t, layout, generator=g)
            total += reduce_loss(per_element, t, layout, weighting).mean().item()
    return total / draws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", default=None, help="folder of videos (default: Debian's real videos)")
    parser.add_argument("--steps", type=int, default=200, help="training steps of each run (default 200)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per step (default 16)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate of the full fine-tune (default 1e-4)")
    parser.add_argument("--lora-lr", type=float, default=1e-3,
                        help="learning rate of the LoRA run (default 1e-3: adapters start at zero and take ~10x)")
    parser.add_argument("--out", default="runs/lora_bench", help="work folder (default runs/lora_bench)")
    args = parser.parse_args(argv)

    from avdit.codecs.interface import bundled_codecs_dir, load_codecs
    from avdit.codecs.shards import SHARD_INDEX, encode_dataset, load_shards
    from avdit.data.prepare import INDEX, PrepareSettings, prepare_folder
    from avdit.pipeline import bundled_model_dir

    out = Path(args.out)
    videos = Path(args.videos) if args.videos else out / "videos"
    if args.videos is None:
        sys.path.insert(0, str(ROOT))
        from tests.real_files import real_videos

        found = real_videos()
        if not found:
            raise SystemExit("no videos: give --videos DIR, or install Debian's "
                             "golang-github-gabriel-vasile-mimetype-dev and forensics-samples-files")
        videos.mkdir(parents=True, exist_ok=True)
        for path in found:  # one folder of them, under unique names
            target = videos / f"{path.parent.name}-{path.name}"
            if not target.exists():
                shutil.copy(path, target)
    data, codecs_dir = out / "data", bundled_codecs_dir()
    if not (data / INDEX).exists():
        prepare_folder(videos, data, PrepareSettings.from_geometry("bouncing-tones", hop=0.5), progress=False)
    codecs = load_codecs(codecs_dir)
    for split in ("train", "test"):
        if not (out / f"latents-{split}" / SHARD_INDEX).exists():
            encode_dataset(data, codecs, codecs_dir, out / f"latents-{split}", split=split, progress=False)
    train_clips = json.loads((out / "latents-train" / SHARD_INDEX).read_text())["clips"]
    held_out, _ = load_shards(out / "latents-test")
    print(f"{videos}: {train_clips} training clips, {held_out.batch_size} held-out clips at the bundled geometry",
          flush=True)

    base = bundled_model_dir()
    common = ["train", "--init", str(base), "--data", str(out / "latents-train"), "--steps", str(args.steps),
              "--batch-size", str(args.batch_size), "--warmup", "0", "--precision", "fp32",
              "--checkpoint-every", str(args.steps), "--preset", "bt-small", "--model",
              "video_patch=4,time_rope=true"]
    rows = {}
    for name, extra in (("full", ["--lr", str(args.lr)]),
                        (f"lora r{args.rank}", ["--lora", str(args.rank), "--lr", str(args.lora_lr)])):
        run = out / name.replace(" ", "_")
        shutil.rmtree(run, ignore_errors=True)
        began = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", *common, *extra, "--out", str(run)],
                              capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - began
        published = sum(f.stat().st_size for f in run.glob("*.safetensors"))
        rows[name] = {"bytes": published, "s_per_step": seconds / args.steps,
                      "maxrss_mb": json.loads(done.stdout.strip().splitlines()[-1])["maxrss_mb"],
                      "held_out_loss": held_out_loss(run, held_out, codecs.layout)}
    base_loss = held_out_loss(base, held_out, codecs.layout)
    full = rows["full"]
    print(f"\n{args.steps} steps at batch {args.batch_size}, lr {args.lr:g} (LoRA {args.lora_lr:g}), from the bundled "
          "model "
          f"(held-out loss before fine-tuning: {base_loss:.4f})\n")
    print(f"{'run':<10}{'published':>14}{'vs full':>9}{'s/step':>9}{'vs full':>9}{'peak MB':>9}{'vs full':>9}"
          f"{'held-out loss':>15}{'vs full':>9}")
    for name, r in rows.items():
        print(f"{name:<10}{r['bytes'] / 1e6:>11.2f} MB{r['bytes'] / full['bytes']:>9.3f}{r['s_per_step']:>9.3f}"
              f"{r['s_per_step'] / full['s_per_step']:>9.2f}{r['maxrss_mb']:>9.0f}"
              f"{r['maxrss_mb'] / full['maxrss_mb']:>9.2f}"
              f"{r['held_out_loss']:>15.4f}{r['held_out_loss'] / full['held_out_loss']:>9.3f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2:]))
    sys.exit(main())
