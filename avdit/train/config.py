"""The resolved settings of a diffusion training run, saved as RUN_DIR/config.json."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

from avdit.diffusion.loss import parse_loss_weighting
from avdit.diffusion.samplers import ddim_levels
from avdit.model.config import PREDICTIONS, parse_model_overrides
from avdit.model.lora import parse_targets


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "bt-small"
    model: str = ""  # overrides of the preset's fields, e.g. 'video_patch=4,depth=6' (see model.config.OVERRIDABLE)
    data: str = "bouncing-tones"  # 'bouncing-tones' (encoded once into RUN_DIR/latents) or a shard folder
    codecs: str | None = None  # codec folder; None = those the latents were made with (bundled for Bouncing Tones)
    init: str | None = None  # a checkpoint folder whose weights the run starts from (same network, layout, codecs)
    lora: int = 0  # > 0: train LoRA adapters of this rank on init's frozen weights, published alone (avdit.model.lora)
    lora_targets: str = "attention,mlp"  # which projections of every block get adapters: attention, mlp, adaln
    num_clips: int = 4096  # Bouncing Tones clips encoded for training when data = 'bouncing-tones'
    noise_levels: str = "monl"
    noise_levels_final: str = ""  # a mixture the noise levels move to, linearly over the run ('' = they stay)
    # '' : MoNL training. Step counts such as '1,2,4,8': distillation on the teacher pairs in data (``avdit distill``,
    # avdit.train.distill), at the levels uniform DDIM samplers of those step counts visit; noise_levels is unused
    student_steps: str = ""
    loss_weighting: str = "v"  # 'v' (the v MSE), 'eps' (the paper's epsilon MSE), 'min-snr-G' or 'trunc-snr-K'
    prediction: str = "v"  # what the network's head predicts: 'v', or 'eps' (the paper's)
    steps: int = 10000
    batch_size: int = 32  # global, over all ranks and accumulation steps
    accumulation: int = 1
    lr: float = 1e-3  # the paper's: 5e-4
    warmup: int = 500
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    self_condition_rate: float = 0.0
    precision: str = "bf16"  # bf16 autocast or fp32
    compile: bool = False
    fsdp: bool = False  # shard model, EMA and optimizer over ranks (FSDP2) instead of replicating them (DDP)
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    sample_every: int = 0  # 0 = never
    sample_steps: int = 25

    def __post_init__(self) -> None:
        parse_loss_weighting(self.loss_weighting)
        parse_model_overrides(self.model)
        if self.student_steps:
            ddim_levels(self.student_steps)  # checks them
        if self.lora:
            parse_targets(self.lora_targets)
            if self.lora < 0 or not self.init:
                raise ValueError(f"lora={self.lora}: LoRA trains adapters of a checkpoint: give init= and a rank >= 1")
            if self.fsdp:
                raise ValueError("lora= trains a small share of the weights: run it data-parallel, without fsdp=")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be bf16 or fp32, got {self.precision!r}")
        if self.steps < 1 or self.batch_size < 1 or self.accumulation < 1:
            raise ValueError(f"steps={self.steps}, batch_size={self.batch_size} and accumulation={self.accumulation} "
                             "must all be >= 1")
        if not 0 <= self.self_condition_rate <= 1:
            raise ValueError(f"self_condition_rate={self.self_condition_rate} must be in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay} must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def fields(cls) -> set[str]:
        return {field.name for field in dataclasses.fields(cls)}

    @classmethod
    def from_recipe(cls, recipe: str | None = None, **settings) -> "TrainConfig":
        """A recipe's settings (``RECIPES``; none: the defaults) with ``settings`` over them."""
        if recipe is not None and recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}")
        return cls(**{**(RECIPES[recipe][1] if recipe else {}), **settings})

    # settings that may change when a run is resumed (the rest must match)
    RESUMABLE = ("steps", "log_every", "checkpoint_every", "sample_every", "sample_steps", "compile", "fsdp")


# Whole-run recipes as named data (``avdit train --recipe NAME``): what each is for, and its settings. Their
# figures and how they were chosen: docs/studies.md.
RECIPES: dict[str, tuple[str, dict]] = {
    "30-minute": ("rotary time, 4x4 video patches and a 10 % a2v share: every bar of the earlier bundled model in "
                  "about 30 minutes on a 2-core CPU (on Bouncing Tones latents from `avdit encode`)",
                  {"preset": "bt-small", "model": "video_patch=4,time_rope=true", "batch_size": 64, "steps": 6400,
                   "seed": 1, "noise_levels": "monl=0.9,task:a2v=0.1", "compile": True}),
}
RECIPES["bundled"] = ("the bundled model's first stage: the 30-minute recipe for 19,200 steps (1.23M samples; about "
                      "70 min on a 2-core CPU), on 16,384 clips", {**RECIPES["30-minute"][1], "steps": 19200})
RECIPES["bundled-finetune"] = ("the bundled model's fine-tunes (give --init with the stage before): 4000 steps at a "
                               "lower rate with av_continue and av_inpaint shares",
                               {**RECIPES["30-minute"][1], "steps": 4000, "lr": 2e-4, "warmup": 200,
                                "noise_levels": "monl=0.6,task:av_continue=0.25,task:av_inpaint=0.15"})
