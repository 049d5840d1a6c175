"""``avdit info``: the model presets, clip geometries and training recipes."""

from __future__ import annotations

import argparse


def _info(args: argparse.Namespace) -> int:
    import torch

    from avdit.layout import GEOMETRIES
    from avdit.model import PRESETS, AVDiT
    from avdit.train.config import RECIPES

    print(f"{'preset':<10} {'params':>12} {'video tokens':>13} {'audio tokens':>13} {'grid':>6}  latents")
    for name, config in PRESETS.items():
        with torch.device("meta"):
            params = AVDiT(config).num_parameters()
        layout = config.layout
        print(f"{name:<10} {params:>12,} {config.num_video_tokens:>13} {config.num_audio_tokens:>13} "
              f"{'2x' + str(layout.num_segments):>6}  video {layout.video_latent_shape(config.video_channels)}, "
              f"audio {layout.audio_latent_shape(config.audio_channels)}")
    print(f"\n{'geometry':<15} clip (`avdit prepare --geometry`)")
    for name, g in GEOMETRIES.items():
        print(f"{name:<15} {g.height}x{g.width}, {g.fps} fps, {g.frames} frames ({float(g.duration):g} s), "
              f"{g.sample_rate} Hz audio, {g.num_segments} segments")
    print(f"\n{'recipe':<15} `avdit train --recipe`")
    for name, (text, _) in RECIPES.items():
        print(f"{name:<15} {text}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="list the model presets (sizes, latent layouts), clip geometries and recipes")
    info.set_defaults(func=_info)
