"""The diffusers codecs' sliced and tiled paths (``load_pretrained(..., slicing, tiling)``), on tiny random instances.

Slicing (on by default) gives the latents and pixels of the whole batch to float rounding. Tiling takes the library's
tiled path only for clips larger than a tile, and its latents are not the untiled ones: diffusers promises no
tolerance (its own tests allow 0.5), so the difference is measured here, not held to one: on these tiny random
models with tiles of a few latents, 0.6 to 1.1 of the largest latent for the video codecs, 0.3 for Oobleck.
"""

import pytest
import torch

from avdit.codecs.codec import CodecError
from avdit.codecs.adapters import load_pretrained
from tests.test_codec_import import TINY

# class -> (kind, a batch of 2 clips below the library's tile sizes, one above the small tiles that `tile` sets)
CASES = {
    "AutoencoderKLWan": ("video", (2, 9, 16, 16, 3), (2, 9, 64, 64, 3), lambda m: m.enable_tiling(32, 32, 24, 24)),
    "AutoencoderKLCogVideoX": ("video", (2, 9, 16, 16, 3), (2, 9, 64, 64, 3),
                               lambda m: m.enable_tiling(48, 48, 1 / 6, 1 / 6)),  # stride 40: 5 of its 6 latents
    "AutoencoderKLHunyuanVideo": ("video", (2, 9, 16, 16, 3), (2, 9, 64, 64, 3),
                                  lambda m: m.enable_tiling(32, 32, None, 24, 24)),
    "AutoencoderKLLTXVideo": ("video", (2, 17, 32, 32, 3), (2, 17, 128, 128, 3),
                              lambda m: m.enable_tiling(64, 64, None, 32, 32)),
    "AutoencoderOobleck": ("audio", (2, 8192), (2, 32768), lambda m: vars(m).update(
        use_tiling=True, tile_sample_min_length=8192, tile_sample_overlap=2048, tile_latent_min_length=4,
        tile_latent_overlap=1)),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    torch.manual_seed(0)
    for name in CASES:
        TINY[name]().save_pretrained(root / name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions
    yield root
    torch.set_num_threads(threads)


def load(folders, name, **memory):
    kind = CASES[name][0]
    return load_pretrained(kind, name, folders / name, 8 if kind == "video" else None, **memory)


def clip(codec, shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if codec.kind == "video":
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    return torch.rand(shape, generator=g) * 2 - 1


@torch.no_grad()
def through(codec, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw latents, decoded floats) of a clip batch: the networks' own outputs, before avdit's uint8 rounding."""
    z = codec.encode(x)  # statistics (0, 1): the raw latents
    return z, codec.net.decoder(z) if codec.kind == "video" else codec.net.decode(z)


def close(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference as a fraction of b's largest value."""
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("name", CASES)
def test_slicing_is_on_by_default_and_gives_the_whole_batch_to_rounding(folders, name):
    sliced, whole = load(folders, name), load(folders, name, slicing=False)
    assert sliced.net.model.use_slicing and not sliced.net.model.use_tiling and not whole.net.model.use_slicing
    x = clip(sliced, CASES[name][1])
    # latents, then pixels or samples: convolutions round differently at batch 1 (HunyuanVideo's decoder: 1e-4)
    for a, b, tolerance in zip(through(sliced, x), through(whole, x), (1e-5, 5e-4)):
        assert a.shape == b.shape and close(a, b) < tolerance


@pytest.mark.parametrize("name", CASES)
def test_tiling_takes_the_tiled_path_above_a_tile_only(folders, name):
    tiled, plain = load(folders, name, tiling=True), load(folders, name)
    assert tiled.net.model.use_tiling and tiled.net.model.use_slicing
    small = clip(tiled, CASES[name][1])  # below the library's tiles (256 px and up, 30 s of audio): untouched
    for a, b in zip(through(tiled, small), through(plain, small)):
        assert torch.equal(a, b)
    CASES[name][3](tiled.net.model)  # tiles of a few latents
    large = clip(tiled, CASES[name][2])
    (z, out), (z_plain, out_plain) = through(tiled, large), through(plain, large)
    assert z.shape == z_plain.shape and out.shape == out_plain.shape
    assert z.isfinite().all() and out.isfinite().all() and not torch.equal(z, z_plain)  # on the tiled path
    assert 0 < close(z, z_plain) < 2  # measured 0.6 to 1.1 (0.3 for Oobleck); no tolerance is promised


def test_tiles_that_do_not_fit_the_clip_are_refused(folders):
    codec = load(folders, "AutoencoderKLLTXVideo", tiling=True)
    codec.net.model.enable_tiling(64, 64, None, 48, 48)  # a stride of 1.5 latents
    with pytest.raises(CodecError, match=r"encoded \(1, 3, 17, 128, 128\) pixels into latents \(1, 4, 3, 3, 3\), "
                                         r"not \(1, 4, 3, 4, 4\); with tiling on, its tile sizes do not fit"):
        through(codec, clip(codec, (1, 17, 128, 128, 3)))
