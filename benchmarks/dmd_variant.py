"""A DMD stage's variant, measured against the stage it branches from: the same student, fake network, optimisers
and seeds from a saved DMD state (``RUN/dmd/state.pt``), the DMD settings changed (e.g. DMD2's GAN term), run on to
``--steps``. Where the settings are the original's, it makes exactly what ``avdit distill --dmd-steps`` resumed to
that step makes, so the two differ by the change alone.

    python benchmarks/dmd_variant.py --stage runs/distill2/student --out runs/gan1 --steps 2600 --set gan=1 ema_decay=0.995

``--pairs`` goes on with other pairs (``benchmarks/grid_pairs.py``: the stage's own and more). Writes OUT (the
stage's starting checkpoint and a link to its pairs), OUT/dmd (the variant's checkpoint, state and
metrics; with ``ema_decay`` the checkpoint is the average) and, with ``ema_decay``, OUT/raw: the student's own
weights at the end. A rerun resumes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from avdit.model import AVDiT
from avdit.train.dmd import DMDSettings, dmd_finetune
from avdit.utils.atomic import atomic_path

sys.path.insert(0, str(Path(__file__).parent))
from common import field_changes  # noqa: E402


def branch(stage: Path, out: Path, state: dict, settings: DMDSettings, pairs: Path) -> None:
    """OUT starts as STAGE/dmd stood: its checkpoint, its ``state`` with ``settings`` recorded (written last and
    atomically, so a rerun after a crash branches again), and ``pairs`` (a link)."""
    (out / "dmd").mkdir(parents=True, exist_ok=True)
    for name in ("model.json", "model.safetensors"):
        shutil.copy(stage / "dmd" / name, out / name)
    if not (out / "pairs").exists():
        (out / "pairs").symlink_to(pairs.resolve())
    shutil.copy(stage / "dmd" / "metrics.jsonl", out / "dmd" / "metrics.jsonl")
    with atomic_path(out / "dmd" / "state.pt", ".pt") as tmp:
        torch.save({**state, "settings": asdict(settings)}, tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", required=True, help="the `avdit distill` run whose DMD stage (RUN/dmd) to branch")
    parser.add_argument("--out", required=True, help="folder of the variant")
    parser.add_argument("--steps", type=int, required=True, help="DMD steps to run to (the stage's own count and on)")
    parser.add_argument("--pairs", default=None, help="the pairs to go on with (default: the stage's own, "
                        "STAGE/pairs; e.g. benchmarks/grid_pairs.py's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="DMDSettings changed")
    args = parser.parse_args(argv)
    stage, out = Path(args.stage), Path(args.out)
    made = torch.load(stage / "dmd" / "state.pt", weights_only=True, map_location="cpu")
    changes = field_changes(args.set, DMDSettings(), "--set")
    settings = DMDSettings(**{**made["settings"], **changes, "steps": args.steps})
    if not (out / "dmd" / "state.pt").exists():
        branch(stage, out, made, settings, Path(args.pairs) if args.pairs else stage / "pairs")
    print(dmd_finetune(out, settings))
    if settings.ema_decay > 0:
        state = torch.load(out / "dmd" / "state.pt", weights_only=True)
        student = AVDiT.from_pretrained(out / "dmd")
        student.load_state_dict(state["student"])
        info = AVDiT.load_info(out / "dmd")
        info.pop("model", None)
        student.save_pretrained(out / "raw", info)
        print(f"{out}/dmd: the average of the student's weights; {out}/raw: the student's own")
    return 0


if __name__ == "__main__":
    sys.exit(main())
