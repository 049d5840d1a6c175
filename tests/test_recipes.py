"""`avdit train`'s settings live once, in TrainConfig; a --recipe replaces its defaults and flags win over both."""

import pytest

from avdit.cli import build_parser
from avdit.train.config import RECIPES, TrainConfig


def config_of(*argv: str) -> TrainConfig:
    args = build_parser().parse_args(["train", "--out", "run", *argv])
    return TrainConfig.from_recipe(args.recipe, **{name: value for name, value in vars(args).items()
                                                   if name in TrainConfig.fields() and value is not None})


def test_no_flag_gives_the_dataclass_defaults():
    assert config_of() == TrainConfig()


def test_a_recipe_replaces_defaults_and_flags_win():
    recipe = RECIPES["30-minute"][1]
    config = config_of("--recipe", "30-minute", "--steps", "7", "--noise-levels", "monl")
    assert config.steps == 7 and config.noise_levels == "monl"  # the flags
    assert (config.model, config.batch_size, config.seed, config.compile) == (
        recipe["model"], recipe["batch_size"], recipe["seed"], recipe["compile"])  # the recipe
    assert config.lr == TrainConfig().lr  # neither: the default
    assert config_of("--recipe", "bundled").batch_size == 128


def test_every_recipe_builds_and_an_unknown_one_is_named():
    for name in RECIPES:
        TrainConfig.from_recipe(name)
    with pytest.raises(ValueError, match="unknown recipe 'fast'; recipes: bundled, 30-minute"):
        TrainConfig.from_recipe("fast")


def test_codec_settings_take_their_kinds_recipe_in_python_as_on_the_command_line():
    from avdit.codecs.train import RECIPES as CODEC_RECIPES
    from avdit.codecs.train import CodecTrainSettings

    for kind in ("video", "audio"):
        settings = CodecTrainSettings(kind=kind)
        assert {name: getattr(settings, name) for name in CODEC_RECIPES[kind]} == CODEC_RECIPES[kind]
        args = build_parser().parse_args(["train-codec", kind, "--out", "c"])
        assert CodecTrainSettings(**{k: v for k, v in vars(args).items()
                                     if k in CodecTrainSettings.__dataclass_fields__ and v is not None}) == settings
    assert CodecTrainSettings(kind="video", steps=5).steps == 5
