"""``avdit evaluate`` (every task scored on held-out clips) and ``avdit train-features`` (its Bouncing Tones nets)."""

from __future__ import annotations

import argparse

from avdit.cli.common import add_sampling_flags, given, library_defaults, sampling_from_flags


def _evaluate(args: argparse.Namespace) -> int:
    from avdit.eval.evaluate import EvalSettings, evaluate, markdown_table, parse_tasks

    flags = given(args, EvalSettings.__dataclass_fields__.keys() - {"tasks", "av_align", "sampling"})
    settings = EvalSettings(**flags, **({"tasks": parse_tasks(args.tasks)} if args.tasks else {}),
                            **({"av_align": False} if args.no_av_align else {}), sampling=sampling_from_flags(args))
    print(f"sampling: {args.sampling} preset, {settings.sampling.describe()}", flush=True)
    results = evaluate(settings, args.out)
    print(markdown_table(results))
    print(f"written to {args.out}/results.md and {args.out}/results.json")
    return 0


def _train_features(args: argparse.Namespace) -> int:
    from avdit.eval.features.bt_train import train_features

    info = train_features(args.out, **given(args, ("steps", "batch_size", "clips", "seed")))
    scores = ", ".join(f"{k} {v:.1%}" for k, v in info["held_out"].items())
    print(f"Bouncing Tones feature nets in {args.out} ({info['seconds']:.0f} s); held out: {scores}")
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from avdit.eval.evaluate import EvalSettings

    d = library_defaults(EvalSettings)
    ev = sub.add_parser("evaluate", help="generate from held-out clips for each task and score them: a table")
    ev.add_argument("--checkpoint", help="checkpoint folder (default: the bundled model)")
    ev.add_argument("--codecs", help="codec folder (default: the ones the checkpoint names)")
    ev.add_argument("--tasks", help=f"'all' (the default: {','.join(d.tasks)}) or a list")
    ev.add_argument("--data", help=f"held-out clips: '{d.data}' (the default: test split, made in memory) or a "
                                   "folder from `avdit data` / `avdit prepare` (its test split)")
    ev.add_argument("--num", type=int, help=f"clips per task (default {d.num})")
    add_sampling_flags(ev, "default")
    ev.add_argument("--seed", type=int, help=f"seed of the held-out clips and of sampling (default {d.seed})")
    ev.add_argument("--batch-size", type=int, help=f"clips per sampling batch (default {d.batch_size})")
    ev.add_argument("--no-av-align", action="store_true", help="skip AV-align (optical flow + onsets per clip)")
    ev.add_argument("--bt-features", help="Bouncing Tones feature nets (default: the bundled ones)")
    ev.add_argument("--i3d", help="local I3D weights (.pt/.safetensors) to report FVD and KVD")
    ev.add_argument("--vggish", help="local VGGish weights (.pth/.safetensors) to report FAD")
    ev.add_argument("--audioclip", help="local AudioCLIP weights (AudioCLIP-Full-Training.pt) to report "
                                        "FAD-AudioCLIP, MM-Diffusion's and the paper's FAD (x 1e4)")
    ev.add_argument("--panns", help="local PANNs weights (Cnn14_16k_mAP=0.438.pth) to report FD-PANNs, "
                                    "av-benchmark's Fréchet distance")
    ev.add_argument("--imagebind", help="local ImageBind weights (imagebind_huge.pth) to report AV-IB, the "
                                        "audio-video similarity of JavisBench and av-benchmark")
    ev.add_argument("--synchformer", help="local Synchformer weights (synchformer_state_dict.pth) to report DeSync, "
                                          "the predicted audio-video offset in seconds")
    ev.add_argument("--out", required=True, help="folder for results.md and results.json")
    ev.set_defaults(func=_evaluate)


def _add_train_features(sub: argparse._SubParsersAction) -> None:
    from avdit.eval.features.bt_train import train_features

    d = library_defaults(train_features)
    features = sub.add_parser("train-features", help="train the Bouncing Tones feature nets behind BT-FVD and BT-FAD")
    features.add_argument("--out", required=True, help="folder for bt_video/bt_audio.safetensors and bt_features.json")
    features.add_argument("--steps", type=int, help=f"optimizer steps (default {d.steps})")
    features.add_argument("--batch-size", type=int, help=f"clips per step (default {d.batch_size})")
    features.add_argument("--clips", type=int, help=f"training clips made up front (default {d.clips})")
    features.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    features.set_defaults(func=_train_features)


def register(sub: argparse._SubParsersAction) -> None:
    _add_evaluate(sub)
    _add_train_features(sub)
