"""How generation samples, in one frozen object: ``SamplingConfig``, with named presets.

Every part that samples takes a ``SamplingConfig`` whole: ``generate_latents``, ``Pipeline``, ``evaluate``, the web
page and the benchmarks; the command line's sampling flags and the page's controls are made from its fields. Change
one field with ``config.replace(steps=25)``.

Presets (``SamplingConfig.preset(name)``):

- ``default``: what ``generate``, ``evaluate``, ``serve`` and the Python API use. 12 DPM-Solver++(2M) steps on levels
  evenly spaced in log-SNR, and where both modalities are generated, five alternating sampler runs
  (video, audio, video, audio, video), each given the other modality's latest sample (docs/sampling.md).
- ``paper``: the paper's protocol (Sec. 3.3, App. D-E): 250 DDIM steps, every generated cell descending together.
- ``distilled``: for a student of ``avdit distill`` (its checkpoint names it): DDIM on uniform levels, no guidance
  pass; where both modalities are generated, four sampler runs of 2 steps (video, audio, video, audio), each given
  the other's latest sample: 8 network passes; where one is, one run of 2 steps: 2 passes (docs/distillation.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from avdit.diffusion.conditioning import DEFAULT_ANCHOR_GUIDANCE, DEFAULT_GUIDANCE, ConditioningMode
from avdit.diffusion.samplers import SAMPLERS, Spacing
from avdit.layout import MODALITIES

SAMPLER_NAMES = {"ddim": "DDIM", "ddpm": "DDPM", "dpmpp2m": "DPM-Solver++(2M)"}  # as pages and messages name them
# The level spacing each sampler uses unless told otherwise (``step_levels``); see docs/sampling.md.
DEFAULT_SPACING: dict[str, Spacing] = {"ddim": "uniform", "ddpm": "uniform", "dpmpp2m": "lambda"}
SPACINGS = ("uniform", "lambda", "karras")
AUDIO_REDRAWS = ("unlike", "always")  # where a rolled window's audio is drawn again (SamplingConfig.audio_redraw)

# Where a task generates both modalities (joint, av_continue, av_inpaint), in what order: "together" descends every
# generated cell at once (the paper's); otherwise a sequence of sampler runs, named by their modalities joined by "-"
# ("video-audio-video"), each over one modality's generated cells, given the latest sample of the other's (held at
# pure noise, i.e. unseen, before it has one). "audio-video" (alias "audio-first") samples the audio, then the video
# given it, as a2v; "video-audio" ("video-first") the reverse. Each further run samples one modality again given the
# other's latest: a sweep of blocked Gibbs sampling, so the last video is drawn as a2v draws it, given audio drawn
# given a video. MoNL trains the network for all (``order_runs``).
TOGETHER = "together"
ORDER_ALIASES = {"audio-first": "audio-video", "video-first": "video-audio"}
ORDERS = (TOGETHER, "audio-first", "video-first", "video-audio-video", "video-audio-video-audio-video")  # as help names

STUDENT_PRESET = "distilled"  # the preset a student of `avdit distill` samples with (its checkpoint names it)

Guidance = float | tuple[float, float]  # one scale, or one per modality (video, audio)


def order_runs(order: str) -> tuple[int, ...]:
    """The modality (0 video, 1 audio) of each sampler run ``order`` names (see ``ORDERS``); empty for together."""
    if order == TOGETHER:
        return ()
    names = ORDER_ALIASES.get(order, order).split("-")
    runs = tuple(MODALITIES.index(name) for name in names if name in MODALITIES)
    alternates = all(a != b for a, b in zip(runs, runs[1:]))
    if len(runs) != len(names) or len(runs) < 2 or not alternates:
        raise ValueError(f"unknown order {order!r}: give {TOGETHER!r}, 'audio-first', 'video-first', or two or more "
                         f"sampler runs that alternate between video and audio, joined by '-' (e.g. "
                         f"'video-audio-video')")
    return runs


@dataclass(frozen=True)
class SamplingConfig:
    """How generated cells are sampled. Frozen: ``replace`` makes a changed copy; fields are checked when made.
    ``help`` in each field's metadata is what the command line and the web page say of it."""

    sampler: str = field(default="dpmpp2m", metadata={"help": "ddim, ddpm or dpmpp2m (DPM-Solver++(2M))"})
    steps: int = field(default=12, metadata={"help": "sampler steps (per sampler run where the order has several)"})
    spacing: Spacing | None = field(default=None, metadata={
        "help": "the levels the steps visit: uniform, lambda (even in log-SNR) or karras (None: the sampler's own: "
                "lambda for dpmpp2m, uniform for ddim and ddpm)"})
    eta: float = field(default=0.0, metadata={"help": "DDIM's eta: 0 deterministic, 1 as stochastic as DDPM"})
    guidance: Guidance = field(default=DEFAULT_GUIDANCE, metadata={
        "help": "free guidance scale s: one for every generated modality, or (video, audio); 0 turns it off "
                "(eps = (1 + s) eps(given) - s eps(given replaced by noise))"})
    mode: ConditioningMode = field(default="clean", metadata={
        "help": "how given cells reach the model: clean (MoNL) or replace (for a model trained with one noise level)"})
    order: str = field(default="video-audio-video-audio-video", metadata={
        "help": "where a task generates both modalities: 'together', or one modality per sampler run given the "
                "other's latest sample, runs joined by '-' (e.g. video-audio-video)"})
    pyramid_lag: int = field(default=0, metadata={
        "help": "> 0: a diffusion-forcing schedule, each later generated segment starting this many steps later"})
    history_level: int = field(default=0, metadata={
        "help": "past one window, the noise level (0-999) at which a window sees the segments it carries (0: clean; "
                "Diffusion Forcing's noisy history)"})
    anchor_segment: bool = field(default=True, metadata={
        "help": "past one window, segment 0 of every window is the first window's in each modality that does not "
                "slide along an input (both for joint and continuation, the video for a2v, the audio for v2a): the "
                "subject as it began, seen in every window beside the segment carried from the window before"})
    anchor_guidance: float = field(default=DEFAULT_ANCHOR_GUIDANCE, metadata={
        "help": "past one window, guidance towards the anchor segment: eps += w (eps(given) - eps(anchor replaced by "
                "noise)), so a window follows the subject it began with over the segment it carries (history "
                "guidance, DFoT; 0, the default, turns it off; > 0 adds a network pass a step in those windows)"})
    anchor_spread: bool = field(default=True, metadata={
        "help": "past one window, each window's generated video latents keep the first window's distribution, "
                "channel by channel: every quantile, the spread among them (without it a stream shrinks and fades; "
                "avdit.diffusion.spread; the audio is left as made)"})
    held_noise: bool = field(default=True, metadata={
        "help": "past one window, every window draws its generated video from the same noise, drawn once per stream, "
                "and its audio from fresh noise (FreeNoise reuses noise along a long video): what the video shows "
                "changes less in size from window to window (docs/streams.md)"})
    keyframe_first: bool = field(default=True, metadata={
        "help": "past one window, where the task makes segment 0 of both modalities (joint): the first window is "
                "drawn again given its own segment 0 (a keyframe, then the window from it), so every window of the "
                "stream, the first included, continues the anchor it is given (docs/streams.md)"})
    audio_candidates: int = field(default=2, metadata={
        "help": "past one window, where the audio is generated, at most this many draws of a window's audio: where "
                "a draw sounds unlike the first window's (its spectrum), the audio is drawn again given the window's "
                "video and the draw most alike is kept; one window in 40-140 is drawn again (avdit.diffusion."
                "sound_choice, docs/streams.md; 1: one draw, as versions before)"})
    audio_redraw: str = field(default="unlike", metadata={
        "help": "where a window's audio is drawn again, up to audio_candidates draws: 'unlike' (where it sounds "
                "unlike the first window's) or 'always' (in every rolled window: fewer wrong notes still, a stream "
                "about a sixth slower)"})

    PRESETS: ClassVar[dict[str, "SamplingConfig"]]

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        if self.spacing is not None and self.spacing not in SPACINGS:
            raise ValueError(f"unknown spacing {self.spacing!r}; choose from {', '.join(SPACINGS)} (or None)")
        if not self.eta >= 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")
        if isinstance(self.guidance, (list, tuple)):
            if len(self.guidance) != len(MODALITIES):
                raise ValueError(f"guidance takes one scale or two (video, audio), got {len(self.guidance)}")
            object.__setattr__(self, "guidance", tuple(float(s) for s in self.guidance))
        else:
            object.__setattr__(self, "guidance", float(self.guidance))
        if self.mode not in ("clean", "replace"):
            raise ValueError(f"mode must be 'clean' or 'replace', got {self.mode!r}")
        order_runs(self.order)
        if self.pyramid_lag < 0:
            raise ValueError(f"pyramid_lag must be >= 0, got {self.pyramid_lag}")
        if not 0 <= self.history_level < 1000:
            raise ValueError(f"history_level must be in [0, 1000), got {self.history_level}")
        if isinstance(self.audio_candidates, bool) or not isinstance(self.audio_candidates, int) \
                or self.audio_candidates < 1:
            raise ValueError(f"audio_candidates must be an integer >= 1, got {self.audio_candidates!r}")
        if self.audio_redraw not in AUDIO_REDRAWS:
            raise ValueError(f"unknown audio_redraw {self.audio_redraw!r}; choose from {', '.join(AUDIO_REDRAWS)}")
        if not self.anchor_guidance >= 0:
            raise ValueError(f"anchor_guidance must be >= 0, got {self.anchor_guidance}")

    @property
    def level_spacing(self) -> Spacing:
        """The spacing the steps use: the given one, else the sampler's own."""
        return DEFAULT_SPACING[self.sampler] if self.spacing is None else self.spacing

    @property
    def guidance_pair(self) -> tuple[float, float]:
        """The guidance scale of generated video and of generated audio."""
        return self.guidance if isinstance(self.guidance, tuple) else (self.guidance, self.guidance)

    @property
    def runs(self) -> tuple[int, ...]:
        """The modality of each sampler run where both are generated (``order_runs``); empty for together."""
        return order_runs(self.order)

    def replace(self, **changes) -> "SamplingConfig":
        """A copy with ``changes`` (checked as a new config is)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str) -> "SamplingConfig":
        if name not in cls.PRESETS:
            raise ValueError(f"unknown sampling preset {name!r}; choose from {', '.join(cls.PRESETS)}")
        return cls.PRESETS[name]

    def describe(self) -> str:
        """One line for logs and pages, e.g. 'DPM-Solver++(2M), 12 steps x 5 runs, guidance 1'."""
        runs = len(self.runs)
        each = f"{self.steps} steps" + (f" x {runs} runs" if runs else "")
        guidance = (f"{self.guidance:g}" if isinstance(self.guidance, float)
                    else "/".join(f"{s:g}" for s in self.guidance))
        up_to = "up to " if self.audio_redraw == "unlike" else ""
        draws = f", {up_to}{self.audio_candidates} audio draws a rolled window" if self.audio_candidates > 1 else ""
        return f"{SAMPLER_NAMES[self.sampler]}, {each}, guidance {guidance}{draws}"


SamplingConfig.PRESETS = {
    "default": SamplingConfig(),
    "paper": SamplingConfig(sampler="ddim", steps=250, order=TOGETHER),
    STUDENT_PRESET: SamplingConfig(sampler="ddim", steps=2, order="video-audio-video-audio", guidance=0.0),
}
DEFAULT_SAMPLING = SamplingConfig.PRESETS["default"]
