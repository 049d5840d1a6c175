"""The ``avdit`` command line. Thin: every subcommand parses its flags and calls the library, whose settings
dataclasses and function signatures hold every default (a flag left out passes nothing)."""

from __future__ import annotations

import argparse
import re
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


def flag_terms(message: str, parser: argparse.ArgumentParser, command: str) -> str:
    """A library message in flag terms: each ``name=`` the library says of a parameter becomes ``--name `` where the
    command has that flag (library errors speak in Python terms, the command line's in its flags)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = set(sub._option_string_actions)

    def flag(match: re.Match) -> str:
        name, value = "--" + match.group(1).replace("_", "-"), match.group(2) or ""
        if name not in flags:
            return match.group(0)
        switch = isinstance(sub._option_string_actions[name], argparse._StoreTrueAction) and value == "True"
        bare = match.end() == len(message) or message[match.end()] in " ,;:)"  # "give init= and ..."
        return name if switch or (bare and not value) else f"{name} {value}"

    return re.sub(r"(?<![\w.-])([a-z][a-z0-9_]*)=(?!=)(True\b)?", flag, message)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input: say what and stop, without a traceback
        print(f"avdit {args.command}: error: {flag_terms(str(err), parser, args.command)}", file=sys.stderr)
        return 2
