import dataclasses

import pytest
import torch

from avdit.codecs.audio import AudioCodecConfig
from avdit.codecs.interface import AudioCodec, CodecPair, VideoCodec
from avdit.codecs.video import VideoCodecConfig
from avdit.latents import AV
from avdit.layout import BOUNCING_TONES
from avdit.model import AVDiT, get_preset
from tests.real_files import awkward_files, awkward_folder  # noqa: F401  (fixtures for every test module)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Give every weight (including the zero-initialised adaLN-Zero ones) a random value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def random_latents(model: AVDiT, batch: int, generator: torch.Generator) -> AV:
    return AV(torch.randn(batch, *model.video_shape, generator=generator),
              torch.randn(batch, *model.audio_shape, generator=generator))


@pytest.fixture
def tiny_model():
    return randomize(AVDiT(get_preset("bt-tiny"))).eval()


# A small layout for exact Gaussian checks: 1x1 video latents, audio hop 2000 (8 latents/s, 17 in all).
TOY_LAYOUT = dataclasses.replace(BOUNCING_TONES, height=8, width=8, audio_hop=2000)


TINY_VIDEO_CODEC = VideoCodecConfig(latent_channels=4, widths=(16, 32))
TINY_AUDIO_CODEC = AudioCodecConfig(latent_channels=4, widths=(16, 16, 16))


def tiny_codecs(seed: int = 0, layout=BOUNCING_TONES) -> CodecPair:
    """Randomly initialised small codecs at a clip geometry (Bouncing Tones'): wiring, not quality."""
    torch.manual_seed(seed)
    return CodecPair(VideoCodec(TINY_VIDEO_CODEC, fps=layout.fps), AudioCodec(TINY_AUDIO_CODEC, sample_rate=layout.sample_rate),
                     frames=layout.frames, size=(layout.height, layout.width)).eval()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A tiny model trained for two steps with tiny random codecs (run folder: ``checkpoint / 'run'``)."""
    from avdit.train.config import TrainConfig
    from avdit.train.loop import train

    root = tmp_path_factory.mktemp("ckpt")
    tiny_codecs(0).save(root / "codecs")
    train(TrainConfig(preset="bt-tiny", codecs=str(root / "codecs"), num_clips=4, steps=2, batch_size=2,
                      precision="fp32"), root / "run", progress=False)
    return root
