"""How the given cells reach the network during sampling, and classifier-free guidance without a null token.

- ``clean`` (MoNL, Sec. 3.3): given cells are fed as their clean latents with t = 0.
- ``replace`` (the baseline for a model trained with one noise level): at every step the given cells are
  re-noised to the level of the generated cells, so the network sees one t for the whole clip.
- guidance (App. E): eps = (1 + s) eps(given clean) - s eps(given replaced by noise at t = T), with a
  scale per modality; MoNL trains the network on such inputs, so no extra training or null token is needed.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from avdit.diffusion.loss import Denoiser
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule, q_sample
from avdit.latents import AV, randn_like
from avdit.layout import M, ClipLayout

ConditioningMode = Literal["clean", "replace"]

# The guidance scale generation and evaluation use unless told otherwise; how it was chosen: docs/studies.md.
DEFAULT_GUIDANCE = 1.0


def _given_per_example(given: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    if given.dim() == 2:
        given = given.unsqueeze(0).expand(batch, -1, -1)
    return given.to(device)  # (B, M, N)


def conditioned_denoiser(
    model: Denoiser, given: torch.Tensor, clean: AV, layout: ClipLayout, mode: ConditioningMode = "clean",
    guidance: float | Sequence[float] = 0.0, schedule: NoiseSchedule = DEFAULT_SCHEDULE,
    generator: torch.Generator | None = None,
) -> Denoiser:
    """Wrap ``model``, an eps denoiser (``EpsDenoiser``), so a sampler can call it with the raw state ``x`` and
    schedule levels ``t``; guidance combines eps predictions.

    ``given`` (M, N) or (B, M, N) bool; ``clean`` holds the given latents (generated cells are ignored);
    ``guidance`` is one scale or one per modality (video, audio), applied to that modality's prediction.
    """
    if mode not in ("clean", "replace"):
        raise ValueError(f"conditioning mode must be 'clean' or 'replace', got {mode!r}")
    scales = [float(guidance)] * M if isinstance(guidance, (int, float)) else [float(s) for s in guidance]
    if len(scales) != M:
        raise ValueError(f"guidance needs one scale or {M} (video, audio), got {len(scales)}")
    given = _given_per_example(given, clean.batch_size, clean.device)  # (B, M, N)
    given_elements = layout.cells_to_latents(given)
    has_given = bool(given.any())

    def conditional_inputs(x: AV, t: torch.Tensor) -> tuple[AV, torch.Tensor]:
        if mode == "clean" or not has_given:
            return x, t
        # One level for the clip: that of the generated cells (the noisiest, if they differ).
        level = t.masked_fill(given, 0).amax(dim=(1, 2)).view(-1, 1, 1).expand_as(t)  # (B, M, N)
        level_elements = layout.cells_to_latents(level)
        renoised = clean.map(lambda c, lv, e: q_sample(c, lv, e, schedule), level_elements,
                             randn_like(clean, generator))
        x = x.map(lambda xi, ri, gi: torch.where(gi, ri, xi), renoised, given_elements)
        return x, torch.where(given, level, t)

    def unconditional_inputs(x: AV, t: torch.Tensor) -> tuple[AV, torch.Tensor]:
        noise = randn_like(x, generator)
        x = x.map(lambda xi, ni, gi: torch.where(gi, ni, xi), noise, given_elements)
        return x, t.masked_fill(given, schedule.T)

    def denoise(x: AV, t: torch.Tensor, self_cond: AV | None) -> AV:
        x_cond, t_cond = conditional_inputs(x, t)
        if not has_given or all(s == 0 for s in scales):
            return model(x_cond, t_cond, self_cond)
        x_uncond, t_uncond = unconditional_inputs(x, t)
        both = model(
            x_cond.map(lambda a, b: torch.cat([a, b]), x_uncond),
            torch.cat([t_cond, t_uncond]),
            None if self_cond is None else self_cond.map(lambda a: torch.cat([a, a])),
        )
        batch = x.batch_size
        return AV(*((1 + s) * e[:batch] - s * e[batch:] for s, e in zip(scales, both)))

    return denoise
