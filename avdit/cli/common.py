"""What the subcommands share: flags whose defaults live in the library (written once there), and error output."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from types import SimpleNamespace
from typing import Any

DEVICE_HELP = "where the model runs: cpu or cuda (default: cuda when available)"


def library_defaults(target: type | Callable) -> SimpleNamespace:
    """The defaults a settings dataclass or a function declares, by name: help texts quote them from here, and a
    flag left out passes nothing, so the library's default applies (the command line and Python agree)."""
    if is_dataclass(target):
        values = {f.name: f.default for f in fields(target) if f.default is not MISSING}
    else:
        values = {name: p.default for name, p in inspect.signature(target).parameters.items()
                  if p.default is not inspect.Parameter.empty}
    return SimpleNamespace(**values)


def given(args: argparse.Namespace, names) -> dict[str, Any]:
    """The flags among ``names`` the user gave (argparse leaves the others None)."""
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def parameter_names(function: Callable) -> set[str]:
    return set(inspect.signature(function).parameters)


def add_sampling_flags(parser: argparse.ArgumentParser, defaults: SimpleNamespace) -> None:
    """--steps, --sampler, --order, --pyramid-lag, --mode and --device as ``generate`` and ``evaluate`` share them;
    ``defaults``: the library's (``Pipeline.__call__``'s or ``EvalSettings``')."""
    from avdit.diffusion import SAMPLERS
    from avdit.diffusion.generate import ORDERS, order_runs

    def order(name: str) -> str:
        try:
            order_runs(name)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return name

    parser.add_argument("--steps", type=int, help=f"sampler steps (default {defaults.steps})")
    parser.add_argument("--sampler", choices=list(SAMPLERS),
                        help=f"sampler (default {defaults.sampler}); dpmpp2m: DPM-Solver++(2M) on levels evenly spaced "
                             "in log-SNR, for 12 steps or fewer (docs/sampling.md)")
    parser.add_argument("--order", type=order,
                        help=f"where a task generates both modalities (joint, av_continue, av_inpaint): together, or "
                             f"one modality per sampler run, given the other's latest sample, runs joined by '-' "
                             f"(--steps each; e.g. {', '.join(ORDERS)}; default {defaults.order}; docs/sampling.md)")
    parser.add_argument("--pyramid-lag", type=int,
                        help="diffusion-forcing schedule: each later generated segment starts this many steps later "
                             f"(default {defaults.pyramid_lag})")
    parser.add_argument("--mode", choices=["clean", "replace"],
                        help=f"how given cells reach the model: clean (MoNL) or replace (a vanilla-trained model; "
                             f"default {defaults.mode})")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
