"""One frozen settings object for sampling: its presets, its checks, and the command line's flags and the web page's
controls made from its fields."""

import dataclasses
import inspect

import pytest

from avdit.cli import build_parser, flag_terms
from avdit.cli.common import sampling_from_flags
from avdit.diffusion import DEFAULT_SAMPLING, SamplingConfig
from avdit.pipeline import Pipeline


def test_the_presets():
    assert SamplingConfig.preset("default") is DEFAULT_SAMPLING == SamplingConfig()
    default = DEFAULT_SAMPLING
    assert (default.sampler, default.steps, default.level_spacing) == ("dpmpp2m", 12, "lambda")
    assert DEFAULT_SAMPLING.runs == (0, 1, 0, 1, 0)  # video, audio, video, audio, video
    assert default.describe() == "DPM-Solver++(2M), 12 steps x 5 runs, guidance 1, up to 2 audio draws a rolled window"
    assert default.replace(audio_candidates=1).describe() == "DPM-Solver++(2M), 12 steps x 5 runs, guidance 1"
    assert default.replace(audio_redraw="always").describe().endswith("guidance 1, 2 audio draws a rolled window")
    paper = SamplingConfig.preset("paper")
    assert (paper.sampler, paper.steps, paper.order, paper.level_spacing) == ("ddim", 250, "together", "uniform")
    assert paper.runs == ()
    with pytest.raises(ValueError, match="unknown sampling preset 'fast'; choose from default, paper"):
        SamplingConfig.preset("fast")


def test_it_is_frozen_and_checked_whenever_made():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_SAMPLING.steps = 3
    assert DEFAULT_SAMPLING.replace(steps=3).steps == 3 and DEFAULT_SAMPLING.steps == 12
    bad = [({"steps": 0}, "steps must be an integer >= 1"), ({"steps": 2.5}, "steps must be an integer"),
           ({"sampler": "euler"}, "unknown sampler 'euler'"), ({"order": "sideways"}, "unknown order"),
           ({"guidance": (1.0, 2.0, 3.0)}, "one scale or two"), ({"mode": "noisy"}, "mode must be"),
           ({"history_level": 1000}, r"history_level must be in \[0, 1000\)"), ({"eta": -1}, "eta must be >= 0"),
           ({"spacing": "log"}, "unknown spacing"), ({"pyramid_lag": -1}, "pyramid_lag must be >= 0"),
           ({"audio_candidates": 0}, "audio_candidates must be an integer >= 1"),
           ({"audio_candidates": True}, "audio_candidates must be an integer"),
           ({"audio_redraw": "never"}, "unknown audio_redraw 'never'; choose from unlike, always")]
    for changes, message in bad:
        with pytest.raises(ValueError, match=message):
            DEFAULT_SAMPLING.replace(**changes)
    assert SamplingConfig(guidance=[2, 3]).guidance == (2.0, 3.0)  # any sequence: a tuple of floats, hashable
    assert hash(SamplingConfig(guidance=[2, 3])) == hash(SamplingConfig(guidance=(2.0, 3.0)))


def test_the_pipeline_takes_it_whole_in_a_handful_of_parameters():
    parameters = inspect.signature(Pipeline.__call__).parameters
    assert len(parameters) <= 8 and "sampling" in parameters  # self included
    assert parameters["sampling"].default is None  # the preset the checkpoint is made for:
    assert Pipeline.from_pretrained(device="cpu").default_sampling is DEFAULT_SAMPLING  # the bundled model's default
    stream = inspect.signature(Pipeline.stream).parameters
    assert not set(stream) & {f.name for f in dataclasses.fields(SamplingConfig)}  # no field declared again

    class Fake:
        layout = None

    with pytest.raises(TypeError, match="sampling must be a SamplingConfig"):
        next(Pipeline.stream(Fake(), "joint", sampling={"steps": 2}))


def sub_parser(command: str):
    parser = build_parser()
    return parser, next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
                        ).choices[command]


@pytest.mark.parametrize("command", ["generate", "evaluate", "demo"])
def test_every_field_is_a_flag_and_a_flag_left_out_keeps_the_preset(command):
    _, parser = sub_parser(command)
    flags = set(parser._option_string_actions)
    for f in dataclasses.fields(SamplingConfig):
        flag = f"--{f.name.replace('_', '-')}"
        assert flag in flags or f"--no-{f.name.replace('_', '-')}" in flags, flag
    base = ["--out", "x"] if command != "demo" else []
    assert sampling_from_flags(parser.parse_args(base)) == DEFAULT_SAMPLING
    paper = parser.parse_args([*base, "--sampling", "paper", "--steps", "25", "--guidance-audio", "2"])
    assert sampling_from_flags(paper) == SamplingConfig.preset("paper").replace(steps=25, guidance=(1.0, 2.0))
    off = parser.parse_args([*base, "--no-anchor-spread", "--order", "video-first"])
    assert sampling_from_flags(off) == DEFAULT_SAMPLING.replace(anchor_spread=False, order="video-first")
    both = parser.parse_args([*base, "--guidance", "2", "--guidance-video", "1"])
    with pytest.raises(ValueError, match="not both"):
        sampling_from_flags(both)


def test_the_page_controls_are_the_presets_fields():
    from avdit.apps.serve import SAMPLING_CONTROLS, on_sampling_preset, sampling_from_controls

    for name, preset in SamplingConfig.PRESETS.items():
        values = on_sampling_preset(name)
        assert len(values) == len(SAMPLING_CONTROLS)
        assert sampling_from_controls(name, *values) == preset  # what the page shows is the preset, exactly
    changed = sampling_from_controls("paper", "dpmpp2m", 8.0, 1.0, 3.0, "together")
    assert changed == SamplingConfig.preset("paper").replace(sampler="dpmpp2m", steps=8, guidance=(1.0, 3.0))


def test_library_errors_say_parameters_and_the_command_line_says_flags():
    parser = build_parser()
    message = "the given audio lasts 3.00 s from offset=0: ask for at most duration=2.12; num=3, x==y, sampling=a"
    assert flag_terms(message, parser, "generate") == ("the given audio lasts 3.00 s from --offset 0: ask for at most "
                                                       "--duration 2.12; --num 3, x==y, --sampling a")
    assert flag_terms("batch_size=32 must be divisible", parser, "train") == "--batch-size 32 must be divisible"
    assert flag_terms("offset=2", parser, "info") == "offset=2"  # a command without that flag keeps the name
