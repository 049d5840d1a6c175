"""``avdit data bouncing-tones`` and ``avdit prepare``: the clips a run trains and evaluates on."""

from __future__ import annotations

import argparse

from avdit.cli.common import given, library_defaults
from avdit.layout import GEOMETRIES


def _data_bouncing_tones(args: argparse.Namespace) -> int:
    from avdit.data.bt_files import write_bouncing_tones

    path = write_bouncing_tones(args.out, args.n, **given(args, ("seed", "split")))
    print(f"wrote {args.n} Bouncing Tones clips to {path.parent} and {path}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from avdit.data.prepare import PrepareSettings, prepare_folder, summary

    flags = {name: tuple(value) if name == "size" else value
             for name, value in given(args, PrepareSettings.__dataclass_fields__).items()}
    if args.geometry:
        settings = PrepareSettings.from_geometry(args.geometry, **flags)
    else:
        missing = [flag for flag, name in (("--fps", "fps"), ("--size", "size"), ("--duration", "duration"))
                   if name not in flags]
        if missing:
            raise ValueError(f"give --geometry ({', '.join(GEOMETRIES)}) or the clip geometry: {', '.join(missing)} "
                             "missing")
        settings = PrepareSettings(**{"hop": flags["duration"], **flags})
    index = prepare_folder(args.src, args.out, settings)
    print(summary(index))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from avdit.data.bt_files import write_bouncing_tones
    from avdit.data.prepare import PrepareSettings

    w = library_defaults(write_bouncing_tones)
    data = sub.add_parser("data", help="make built-in datasets")
    data_sub = data.add_subparsers(dest="dataset", required=True)
    tones = data_sub.add_parser("bouncing-tones", help="write N Bouncing Tones clips as mp4 plus metadata.json")
    tones.add_argument("out", help="output folder")
    tones.add_argument("--n", type=int, required=True, help="number of clips")
    tones.add_argument("--seed", type=int, help=f"dataset seed (default {w.seed})")
    tones.add_argument("--split", choices=["train", "test"],
                       help=f"train or held-out test clips (independent streams; default {w.split})")
    tones.set_defaults(func=_data_bouncing_tones)

    p = library_defaults(PrepareSettings)
    prepare = sub.add_parser("prepare", help="index a folder of videos as fixed-length clips with a train/test split")
    prepare.add_argument("src", help="folder of video files (scanned recursively)")
    prepare.add_argument("out", help="output folder for index.json")
    prepare.add_argument("--geometry", choices=list(GEOMETRIES), default=None,
                         help="a named clip geometry: " + "; ".join(
                             f"{name}: {g.height}x{g.width}, {g.fps} fps, {g.frames} frames" for name, g in
                             GEOMETRIES.items()) + " (flags below override its values)")
    prepare.add_argument("--fps", type=int, help="video frame rate of the clips")
    prepare.add_argument("--sample-rate", type=int, help=f"audio sample rate (default {p.sample_rate})")
    prepare.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                         help="frame size after centre crop and resize")
    prepare.add_argument("--duration", type=float,
                         help="clip length in seconds: 1 + 4k frames at --fps (e.g. 2.1 at 10 fps, 2.125 at 8)")
    prepare.add_argument("--hop", type=float, help="seconds between clip starts (default: --duration)")
    prepare.add_argument("--test-fraction", type=float,
                         help=f"fraction of files held out for test, chosen by a hash of their path "
                              f"(default {p.test_fraction:g})")
    prepare.set_defaults(func=_prepare)
