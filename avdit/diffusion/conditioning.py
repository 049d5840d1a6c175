"""How the given cells reach the network during sampling, and classifier-free guidance without a null token.

- ``clean`` (MoNL, Sec. 3.3): given cells are fed as their clean latents with t = 0.
- ``replace`` (the baseline for a model trained with one noise level): at every step the given cells are
  re-noised to the level of the generated cells, so the network sees one t for the whole clip.
- guidance (App. E): eps = (1 + s) eps(given clean) - s eps(given replaced by noise at t = T), with a
  scale per modality; MoNL trains the network on such inputs, so no extra training or null token is needed.
- anchor guidance (a stream's rolled windows): eps += w (eps(given clean) - eps(the anchor cells replaced by noise
  at T)), the direction in which the anchor (the first window's segment 0) moves the prediction, amplified. It is
  history guidance (DFoT, Song et al. 2025) on one part of the history, so that where the two disagree a window
  follows the subject it began with over the segment carried from the window before. Off by default
  (docs/streams.md: it holds the disc's size longer and makes sync worse).
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
# The anchor guidance scale of a stream's rolled windows: off, as it measured no better (docs/streams.md).
DEFAULT_ANCHOR_GUIDANCE = 0.0


def _given_per_example(given: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    if given.dim() == 2:
        given = given.unsqueeze(0).expand(batch, -1, -1)
    return given.to(device)  # (B, M, N)


def conditioned_denoiser(
    model: Denoiser, given: torch.Tensor, clean: AV, layout: ClipLayout, mode: ConditioningMode = "clean",
    guidance: float | Sequence[float] = 0.0, schedule: NoiseSchedule = DEFAULT_SCHEDULE,
    generator: torch.Generator | None = None, anchor: torch.Tensor | None = None, anchor_guidance: float = 0.0,
) -> Denoiser:
    """Wrap ``model``, an eps denoiser (``EpsDenoiser``), so a sampler can call it with the raw state ``x`` and
    schedule levels ``t``; guidance combines eps predictions.

    ``given`` (M, N) or (B, M, N) bool; ``clean`` holds the given latents (generated cells are ignored);
    ``guidance`` is one scale or one per modality (video, audio), applied to that modality's prediction.
    ``anchor`` (M, N) or (B, M, N) bool marks given cells that anchor a stream's window; ``anchor_guidance`` w > 0
    adds w (eps(given) - eps(anchor replaced by noise at T)). Every prediction a step needs is one batched call.
    """
    if mode not in ("clean", "replace"):
        raise ValueError(f"conditioning mode must be 'clean' or 'replace', got {mode!r}")
    scales = [float(guidance)] * M if isinstance(guidance, (int, float)) else [float(s) for s in guidance]
    if len(scales) != M:
        raise ValueError(f"guidance needs one scale or {M} (video, audio), got {len(scales)}")
    given = _given_per_example(given, clean.batch_size, clean.device)  # (B, M, N)
    given_elements = layout.cells_to_latents(given)
    has_given = bool(given.any())
    guided = has_given and any(s != 0 for s in scales)
    if anchor is not None and anchor_guidance != 0:
        anchor = _given_per_example(anchor, clean.batch_size, clean.device) & given  # (B, M, N)
    anchored = anchor is not None and anchor_guidance != 0 and bool(anchor.any())
    anchor_elements = layout.cells_to_latents(anchor) if anchored else None

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

    def dropped(x: AV, t: torch.Tensor, cells: torch.Tensor, elements: AV) -> tuple[AV, torch.Tensor]:
        """``cells`` replaced by noise at T: what the network predicts without them."""
        noise = randn_like(x, generator)
        return x.map(lambda xi, ni, gi: torch.where(gi, ni, xi), noise, elements), t.masked_fill(cells, schedule.T)

    def denoise(x: AV, t: torch.Tensor, self_cond: AV | None) -> AV:
        x_cond, t_cond = conditional_inputs(x, t)
        if not guided and not anchored:
            return model(x_cond, t_cond, self_cond)
        branches = [(x_cond, t_cond)]  # conditional, then unconditional and without the anchor where they count
        if guided:
            branches.append(dropped(x, t, given, given_elements))
        if anchored:
            branches.append(dropped(x_cond, t_cond, anchor, anchor_elements))
        predicted = model(
            AV(*map(torch.cat, zip(*(inputs for inputs, _ in branches)))),
            torch.cat([levels for _, levels in branches]),
            None if self_cond is None else self_cond.map(lambda a: torch.cat([a] * len(branches))),
        )
        eps, *others = zip(*(e.split(x.batch_size) for e in predicted))  # per branch: (video, audio)
        weights = ([scales] if guided else []) + ([[float(anchor_guidance)] * M] if anchored else [])
        return AV(*(e + sum(w[m] * (e - other[m]) for w, other in zip(weights, others))
                    for m, e in enumerate(eps)))

    return denoise
