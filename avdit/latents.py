"""A pair of per-modality tensors (video, audio) that moves through the diffusion code as one value."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch


class AV(NamedTuple):
    """Video and audio tensors of one batch. Latents: video (B, Cv, Tv, h, w), audio (B, Ca, Ta).

    Indexable by modality (``x[0]`` is video, ``x[1]`` audio), so code can loop over modalities.
    """

    video: torch.Tensor
    audio: torch.Tensor

    def map(self, fn: Callable[..., torch.Tensor], *others: "AV") -> "AV":
        """Apply ``fn`` per modality: ``a.map(torch.add, b)`` is (a.video + b.video, a.audio + b.audio)."""
        return AV(*(fn(*parts) for parts in zip(self, *others)))

    @property
    def batch_size(self) -> int:
        return self.video.shape[0]

    @property
    def device(self) -> torch.device:
        return self.video.device

    def flatten(self) -> torch.Tensor:
        """(B, D) with D = all video then all audio elements of one example."""
        return torch.cat([self.video.flatten(1), self.audio.flatten(1)], dim=1)

    def unflatten(self, flat: torch.Tensor) -> "AV":
        """Inverse of :meth:`flatten` for a (B, D) tensor, using this pair's shapes."""
        n_video = self.video[0].numel()
        return AV(
            flat[:, :n_video].reshape(flat.shape[0], *self.video.shape[1:]),
            flat[:, n_video:].reshape(flat.shape[0], *self.audio.shape[1:]),
        )


def randn(shape: torch.Size, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise on ``like``'s device and dtype, drawn on the generator's own device.

    A seeded CPU generator therefore gives the same noise whether the model runs on the CPU or a GPU (and a
    CPU generator cannot draw on a GPU)."""
    where = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=where, dtype=like.dtype).to(like.device)


def randn_like(x: AV, generator: torch.Generator | None = None) -> AV:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (video first, then audio)."""
    return x.map(lambda part: randn(part.shape, generator, part))
