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
    assert config_of("--recipe", "bundled").steps == 19200 and config_of("--recipe", "bundled").batch_size == 64
    finetune = config_of("--recipe", "bundled-finetune", "--init", "runs/long")
    assert (finetune.init, finetune.lr, finetune.model) == ("runs/long", 2e-4, recipe["model"])


def test_every_recipe_builds_and_an_unknown_one_is_named():
    for name in RECIPES:
        TrainConfig.from_recipe(name)
    with pytest.raises(ValueError, match="unknown recipe 'fast'; recipes: 30-minute, bundled, bundled-finetune"):
        TrainConfig.from_recipe("fast")


def test_codec_settings_take_their_kinds_recipe_in_python_as_on_the_command_line():
    from avdit.train.codecs import RECIPES as CODEC_RECIPES
    from avdit.train.codecs import CodecTrainSettings

    for kind in ("video", "audio"):
        settings = CodecTrainSettings(kind=kind)
        assert {name: getattr(settings, name) for name in CODEC_RECIPES[kind]} == CODEC_RECIPES[kind]
        args = build_parser().parse_args(["train-codec", kind, "--out", "c"])
        assert CodecTrainSettings(**{k: v for k, v in vars(args).items()
                                     if k in CodecTrainSettings.__dataclass_fields__ and v is not None}) == settings
    assert CodecTrainSettings(kind="video", steps=5).steps == 5


def test_both_trainers_share_one_learning_rate_schedule():
    import math

    from avdit.train.codecs import CodecTrainSettings, _lr
    from avdit.utils.lr import warmup_cosine
    from avdit.train.loop import learning_rate

    assert [warmup_cosine(s, 1.0, 4, 12) for s in (0, 3)] == [0.25, 1.0]  # warm-up ends at the peak
    assert warmup_cosine(8, 1.0, 4, 12) == 0.5 * (1 + math.cos(math.pi * 0.5)) and warmup_cosine(20, 1.0, 4, 12) == 0
    config = TrainConfig(lr=2e-3, warmup=10, steps=100)
    assert all(learning_rate(s, config) == warmup_cosine(s, 2e-3, 10, 100) for s in range(120))
    codec = CodecTrainSettings(kind="video", steps=50, warmup=5, decoder_steps=20, lr=1e-3, decoder_lr=4e-4)
    assert all(_lr(s, codec) == warmup_cosine(s, 1e-3, 5, 50) for s in range(50))
    assert [_lr(50 + s, codec) for s in range(20)] == [warmup_cosine(s, 4e-4, 0, 20) for s in range(20)]
