"""The ``avdit`` command line. Thin: every subcommand parses its flags and calls the library."""

from __future__ import annotations

import argparse
import sys


def _info(args: argparse.Namespace) -> int:
    from avdit.model import PRESETS, AVDiT

    import torch

    print(f"{'preset':<10} {'params':>12} {'video tokens':>13} {'audio tokens':>13} {'grid':>6}  latents")
    for name, config in PRESETS.items():
        with torch.device("meta"):
            params = AVDiT(config).num_parameters()
        layout = config.layout
        print(f"{name:<10} {params:>12,} {config.num_video_tokens:>13} {config.num_audio_tokens:>13} "
              f"{'2x' + str(layout.num_segments):>6}  video {layout.video_latent_shape(config.video_channels)}, "
              f"audio {layout.audio_latent_shape(config.audio_channels)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from avdit.toy import run_toy_demo

    return run_toy_demo(num=args.num, steps=args.steps, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avdit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="list the model presets with their sizes and latent layouts")
    info.set_defaults(func=_info)

    demo = sub.add_parser(
        "demo", help="run every task preset through the MoNL samplers on Gaussian latents with a known answer"
    )
    demo.add_argument("--num", type=int, default=1000, help="samples per task (default 1000)")
    demo.add_argument("--steps", type=int, default=100, help="DDIM steps (default 100)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
