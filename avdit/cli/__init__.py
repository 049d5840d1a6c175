"""The ``avdit`` command line. Thin: every subcommand parses its flags and calls the library, whose settings
dataclasses and function signatures hold every default (a flag left out passes nothing)."""

from __future__ import annotations

import argparse
import sys

from avdit.cli import codec, data, evaluate, generate, info, train, web

COMMAND_GROUPS = (info, web, data, codec, train, generate, evaluate)  # the order of `avdit --help`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avdit", description="avdit: one audio-video diffusion transformer for every "
                                     "task (MoNL training; generation, continuation, inpainting, a2v, v2a)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input: say what and stop, without a traceback
        print(f"avdit {args.command}: error: {err}", file=sys.stderr)
        return 2
