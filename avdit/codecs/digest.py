"""Which codecs made a set of latents or a model: a digest of a codec folder's weights, and its check; and the
digest of any named tensors, which it is made of."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open

_WEIGHT_FILES = ("video.safetensors", "audio.safetensors")  # what a codec folder holds beside its JSON


def tensors_digest(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 over named tensors in the order given (each name, then its bytes), 16 hex digits."""
    digest = hashlib.sha256()
    for name, tensor in tensors:
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def codec_digest(folder: str | Path) -> str:
    """sha256 over what makes the latents of a codec folder: every stored tensor but the decoders' (``net.decoder.``),
    so a decoder trained further (``avdit train-codec --decoder-steps``) keeps the latents and models made before."""

    def encoding_tensors() -> Iterator[tuple[str, torch.Tensor]]:
        for name in _WEIGHT_FILES:
            with safe_open(Path(folder) / name, "pt") as weights:
                for key in sorted(weights.keys()):
                    if not key.startswith("net.decoder."):
                        yield key, weights.get_tensor(key)

    return tensors_digest(encoding_tensors())


def codec_digest_matches(recorded: str, folder: str | Path) -> bool:
    """Whether latents or a model recorded with digest ``recorded`` were made by the codecs in ``folder``."""
    return recorded == codec_digest(folder)
