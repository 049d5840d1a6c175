"""Which codecs made a set of latents or a model: a digest of a codec folder's weights, and its check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import safe_open

_WEIGHT_FILES = ("video.safetensors", "audio.safetensors")  # what a codec folder holds beside its JSON


def codec_digest(folder: str | Path) -> str:
    """sha256 over what makes the latents of a codec folder: every stored tensor but the decoders' (``net.decoder.``),
    so a decoder trained further (``avdit train-codec --decoder-steps``) keeps the latents and models made before."""
    digest = hashlib.sha256()
    for name in _WEIGHT_FILES:
        with safe_open(Path(folder) / name, "pt") as weights:
            for key in sorted(weights.keys()):
                if not key.startswith("net.decoder."):
                    digest.update(key.encode())
                    digest.update(weights.get_tensor(key).contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


# Digests recorded before ``codec_digest`` left the decoders out, of codecs whose encoders are still shipped: the
# bundled codecs before their video decoder phase (same encoders and statistics, bit for bit).
_EARLIER_DIGESTS = {"32dc0a81348a1c9d": "3b0d7e06341cf272"}


def codec_digest_matches(recorded: str, folder: str | Path) -> bool:
    """Whether latents or a model recorded with ``recorded`` were made by the codecs in ``folder``. Digests
    written before ``codec_digest`` left the decoders out (sha256 over the whole weight files) still match
    the unchanged files, and those of the earlier bundled codecs match the bundled codecs of today."""
    if _EARLIER_DIGESTS.get(recorded, recorded) == codec_digest(folder):
        return True
    files = hashlib.sha256()
    for name in _WEIGHT_FILES:
        files.update((Path(folder) / name).read_bytes())
    return recorded == files.hexdigest()[:16]
