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


def add_sampling_flags(parser: argparse.ArgumentParser, preset: str) -> None:
    """``--sampling PRESET`` and a flag per ``SamplingConfig`` field (``--steps``, ``--sampler``, ``--guidance``,
    ``--guidance-video`` / ``--guidance-audio``, ...), help from the field's own; a flag left out keeps the preset's
    value (``sampling_from_flags``). ``preset``: the command's own (named in its help)."""
    from avdit.diffusion.sampling import AUDIO_REDRAWS, ORDERS, SAMPLERS, SPACINGS, SamplingConfig, order_runs

    def order(name: str) -> str:
        try:
            order_runs(name)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return name

    shown = SamplingConfig.preset(preset)
    group = parser.add_argument_group("sampling", f"how generated cells are sampled: a preset, then any of its fields "
                                                  f"changed (this command's preset: {preset}; docs/sampling.md)")
    presets = "; ".join(f"{name}: {config.describe()}" for name, config in SamplingConfig.PRESETS.items())
    group.add_argument("--sampling", choices=list(SamplingConfig.PRESETS), default=None,
                       help=f"the preset: {presets} (default {preset}; distilled for a checkpoint of `avdit distill`)")
    special = {"sampler": dict(choices=list(SAMPLERS)), "spacing": dict(choices=list(SPACINGS)),
               "order": dict(type=order), "mode": dict(choices=["clean", "replace"]),
               "audio_redraw": dict(choices=list(AUDIO_REDRAWS))}
    for f in fields(SamplingConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "guidance":
            group.add_argument(flag, type=float, help=f"{f.metadata['help']} (default {shown.guidance})")
            for side in ("video", "audio"):
                group.add_argument(f"--guidance-{side}", type=float, help=f"guidance scale of generated {side} only")
        elif f.type in (bool, "bool"):
            group.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_false", default=None,
                               help=f"turn off: {f.metadata['help']} (on in the preset)" if getattr(shown, f.name)
                               else f.metadata["help"])
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            options = special.get(f.name, dict(type=kind))
            value = getattr(shown, f.name)
            default = "the sampler's own" if value is None else value
            named = f"; named ones: {', '.join(ORDERS)}" if f.name == "order" else ""
            group.add_argument(flag, **options, help=f"{f.metadata['help']}{named} (default {default})")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)


def sampling_from_flags(args: argparse.Namespace):
    """The ``SamplingConfig`` of ``--sampling`` (left out: the one ``--checkpoint`` is made for, and
    ``args.sampling`` is set to its name) with the fields the user gave changed."""
    from avdit.diffusion.sampling import SamplingConfig
    from avdit.pipeline import checkpoint_sampling_preset

    if args.sampling is None:
        args.sampling = checkpoint_sampling_preset(getattr(args, "checkpoint", None))
    changes = {f.name: getattr(args, f.name) for f in fields(SamplingConfig) if getattr(args, f.name, None) is not None}
    per_modality = (args.guidance_video, args.guidance_audio)
    if per_modality != (None, None):
        if args.guidance is not None:
            raise ValueError("give --guidance, or --guidance-video / --guidance-audio, not both")
        base = SamplingConfig.preset(args.sampling).guidance_pair
        changes["guidance"] = tuple(b if s is None else s for b, s in zip(base, per_modality))
    return SamplingConfig.preset(args.sampling).replace(**changes)
