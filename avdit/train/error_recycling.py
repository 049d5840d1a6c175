"""Error recycling for streams: training windows whose carried segment holds the model's own errors.

A stream's rolled window is given the first window's segment 0 (the anchor) and, in segment 1, the last 0.5 s the
model made: its errors, not a clean clip. After Stable Video Infinity's error-recycling fine-tuning (Li et al. 2025),
a share of the training windows get, in place of their clean segment 1, the model's own estimate of it: one no-grad
pass from segments 1.. noised at a level drawn up to ``max_level``, with segment 0 given clean. The target stays the
true continuation, so the model learns to go back to the anchor's subject where the carried segment has drifted
from it (docs/streams.md).
"""

from __future__ import annotations

import torch

from avdit.diffusion.denoiser import Network, eps_denoiser
from avdit.diffusion.schedule import DEFAULT_SCHEDULE, NoiseSchedule, predict_x0_av, q_sample_av
from avdit.latents import AV, randn_like
from avdit.layout import M, ClipLayout


def recycle_carried_segment(model: Network, x0: AV, layout: ClipLayout, max_level: int, share: float,
                            generator: torch.Generator, carried: int = 1,
                            schedule: NoiseSchedule = DEFAULT_SCHEDULE) -> AV:
    """``x0`` (B windows) with segment ``carried`` (both modalities) replaced, in a share ``share`` of the windows
    drawn from ``generator``, by ``model``'s one-pass estimate of it from segments ``carried``.. at a level drawn in
    1..``max_level`` (the segments before it given, clean). The other segments and windows come back as given; only
    the chosen windows take the pass (none: no pass), so every caller of a sharded model must choose alike."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    if not 1 <= max_level <= schedule.T:
        raise ValueError(f"max_level must be in 1..{schedule.T}, got {max_level}")
    if not 1 <= carried < layout.num_segments:
        raise ValueError(f"the carried segment must be in 1..{layout.num_segments - 1}, got {carried}")
    batch = x0.batch_size
    level = torch.randint(1, max_level + 1, (batch,), generator=generator)  # (B,)
    use = torch.rand(batch, generator=generator) < share  # (B,)
    noise = randn_like(x0, generator)  # drawn for every window, so the draws do not depend on which are chosen
    if not bool(use.any()):
        return x0
    chosen = use.nonzero().squeeze(1)  # (R,): only these windows take the pass
    t = level[chosen, None, None].expand(chosen.numel(), M, layout.num_segments).clone()  # (R, M, N)
    t[:, :, :carried] = 0
    rows = chosen.to(x0.video.device)
    t_elements = layout.cells_to_latents(t)
    z_t = q_sample_av(x0.map(lambda p: p[rows]), t_elements, noise.map(lambda p: p[rows]), schedule)
    with torch.no_grad(), torch.autocast(x0.video.device.type, dtype=torch.bfloat16):
        eps = eps_denoiser(model, layout, schedule)(z_t, t)
    estimate = predict_x0_av(z_t, t_elements, eps.map(torch.Tensor.float), schedule)
    replaced = torch.zeros(rows.numel(), M, layout.num_segments, dtype=torch.bool)  # (R, M, N)
    replaced[:, :, carried] = True
    where = layout.cells_to_latents(replaced.to(x0.video.device))
    return x0.map(lambda clean, est, w: clean.index_copy(0, rows, torch.where(w, est.to(clean.dtype), clean[rows])),
                  estimate, where)
