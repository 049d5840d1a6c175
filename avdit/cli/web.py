"""``avdit demo`` (an HTML page of every task) and ``avdit serve`` (the web page to try them)."""

from __future__ import annotations

import argparse
import sys

from avdit.cli.common import DEVICE_HELP, add_sampling_flags, given, library_defaults, sampling_from_flags


def _demo(args: argparse.Namespace) -> int:
    from avdit.pipeline import bundled_model_dir

    if args.checkpoint is None and not (bundled_model_dir() / "model.json").exists() and not args.toy:
        print("avdit demo: no Bouncing Tones model is bundled with this version yet (train one with `avdit train` "
              "and pass --checkpoint); running the exact-Gaussian demonstration instead.\n", file=sys.stderr)
        args.toy = True
    if args.toy:
        from avdit.apps.toy import run_toy_demo

        return run_toy_demo(**given(args, ("num", "steps", "seed")))
    from avdit.apps.demo import run_demo

    sampling = sampling_from_flags(args)
    print(f"sampling: {args.sampling} preset, {sampling.describe()}", file=sys.stderr)
    page = run_demo(**given(args, ("out", "clips", "seed", "checkpoint", "device")), sampling=sampling)
    print(f"open {page}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from avdit.apps.serve import serve

    serve(**given(args, ("checkpoint", "host", "port", "max_upload_mb", "device", "auth", "max_streams")))
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from avdit.apps.demo import run_demo
    from avdit.apps.toy import run_toy_demo

    d, toy = library_defaults(run_demo), library_defaults(run_toy_demo)
    demo = sub.add_parser("demo", help="every task on held-out Bouncing Tones clips with the bundled model: an HTML "
                                       "page")
    demo.add_argument("--out", help=f"output folder (default {d.out})")
    demo.add_argument("--clips", type=int, help=f"held-out clips per task (default {d.clips})")
    demo.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    demo.add_argument("--checkpoint", help="checkpoint folder (default: the bundled model)")
    add_sampling_flags(demo, "default")
    demo.add_argument("--toy", action="store_true",
                      help="instead: every task through the samplers on Gaussian latents with a known answer (--steps: "
                           f"its DDIM steps, default {toy.steps})")
    demo.add_argument("--num", type=int, help=f"--toy: samples per task (default {toy.num})")
    demo.set_defaults(func=_demo)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from avdit.apps.serve import serve

    d = library_defaults(serve)
    srv = sub.add_parser("serve", help="a web page (Gradio) to try every task in the browser")
    srv.add_argument("--checkpoint", help="checkpoint folder (default: the bundled model)")
    srv.add_argument("--device", help=DEVICE_HELP)
    srv.add_argument("--host", help=f"address to bind (default {d.host}: this machine only; 0.0.0.0 to share)")
    srv.add_argument("--port", type=int, help=f"port (default {d.port})")
    srv.add_argument("--max-upload-mb", type=int, help=f"largest upload accepted, MB (default {d.max_upload_mb})")
    srv.add_argument("--auth", metavar="USER:PASSWORD",
                     help="login the page asks for (default: none; anyone who reaches it can use it)")
    srv.add_argument("--max-streams", type=int,
                     help=f"live streams at once; a further viewer is told to wait (default {d.max_streams}: two "
                          "CPU cores keep one stream ahead of playback)")
    srv.set_defaults(func=_serve)


def register(sub: argparse._SubParsersAction) -> None:
    _add_demo(sub)
    _add_serve(sub)
