"""One interface over every feature network: batches of decoded clips in, float64 feature rows out.

``load_extractors`` gives the bundled Bouncing Tones nets (BT-FVD, BT-FAD) and, when the user passes local
weight files, I3D (FVD, KVD), VGGish (FAD), AudioCLIP (FAD-AudioCLIP, MM-Diffusion's FAD) and PANNs (FD-PANNs).
``load_paired`` gives the scores of a video and its audio together: ImageBind (AV-IB) and Synchformer (DeSync).
Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from avdit.eval.features.paired import PairedScorer
from avdit.eval.features.rates import resample
from avdit.layout import AUDIO, VIDEO


class FeatureError(FileNotFoundError):
    """A feature network's weights are missing or do not fit it."""


@dataclass
class FeatureExtractor:
    """``metric`` (e.g. 'BT-FVD') from ``net`` over one modality; ``rows`` per clip (VGGish: one per 0.96 s)."""

    metric: str
    modality: int
    net: torch.nn.Module
    batch_size: int = 16
    sample_rate: int | None = None  # the audio rate the net takes (VGGish: 16 kHz); other rates are resampled to it
    scale: float = 1.0  # the Fréchet distance is reported times this (MM-Diffusion's AudioCLIP FAD: 1e4)

    @torch.no_grad()
    def __call__(self, clips: np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """(B, T, H, W, 3) uint8 video or (B, S) float audio at ``sample_rate`` -> (B, rows, d) float64 features."""
        if self.sample_rate and sample_rate and sample_rate != self.sample_rate:
            clips = resample(clips, sample_rate, self.sample_rate).astype(np.float32)  # (B, S')
        self.net.eval()
        device = next(self.net.parameters()).device  # the network's, as evaluate placed it
        out = []
        for start in range(0, len(clips), self.batch_size):
            batch = torch.as_tensor(np.ascontiguousarray(clips[start:start + self.batch_size])).to(device)
            features = self.net(batch if self.modality == VIDEO else batch.float())
            out.append((features if features.dim() == 3 else features[:, None]).double().cpu().numpy())
        return np.concatenate(out)


def bundled_features_dir() -> Path:
    return Path(str(resources.files("avdit") / "assets" / "features"))


def load_state(path: str | Path, what: str, hint: str) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a plain tensor .pt/.pth (never unpickled beyond tensors)."""
    path = Path(path)
    if not path.is_file():
        raise FeatureError(f"{path}: {what} weights not found; give {hint}")
    if path.suffix == ".safetensors":
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict):  # a checkpoint that wraps its state dict (Lightning's, PANNs' 'model')
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                return state[key]
    return state


def fit(net: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> torch.nn.Module:
    """Load ``state`` into ``net``; a key or shape mismatch is an error naming the file."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        raise FeatureError(f"{path} does not hold {what} weights: missing {missing[:3]}, unexpected {unexpected[:3]}, "
                           f"wrong shape {wrong[:3]}")
    net.load_state_dict(state, strict=False)
    return net.eval()


def bt_extractors(folder: str | Path | None = None) -> list[FeatureExtractor]:
    """BT-FVD and BT-FAD from the bundled nets (or those in ``folder``, made by `avdit train-features`)."""
    from avdit.eval.features.bt_nets import BTAudioNet, BTVideoNet

    folder = Path(folder) if folder else bundled_features_dir()
    hint = "a folder made by `avdit train-features --out DIR`"
    nets = []
    for metric, modality, net, name in (("BT-FVD", VIDEO, BTVideoNet(), "bt_video"),
                                        ("BT-FAD", AUDIO, BTAudioNet(), "bt_audio")):
        path = folder / f"{name}.safetensors"
        nets.append(FeatureExtractor(metric, modality, fit(net, load_state(path, "Bouncing Tones", hint), path,
                                                           name)))
    return nets


def i3d_extractor(path: str | Path, pooled: bool = False) -> FeatureExtractor:
    from avdit.eval.features.i3d import WEIGHTS_HINT, InceptionI3d

    net = fit(InceptionI3d(pooled=pooled), load_state(path, "I3D", WEIGHTS_HINT), Path(path), "I3D")
    return FeatureExtractor("FVD", VIDEO, net, batch_size=4)


def vggish_extractor(path: str | Path) -> FeatureExtractor:
    from avdit.eval.features.log_mel import SAMPLE_RATE
    from avdit.eval.features.vggish import WEIGHTS_HINT, VGGish

    return FeatureExtractor("FAD", AUDIO, fit(VGGish(), load_state(path, "VGGish", WEIGHTS_HINT), Path(path),
                                              "VGGish"), sample_rate=SAMPLE_RATE)


def audioclip_extractor(path: str | Path) -> FeatureExtractor:
    """MM-Diffusion's FAD: AudioCLIP audio embeddings of the first 1.6 s at 44.1 kHz, Fréchet distance x 1e4."""
    from avdit.eval.features.audioclip import FAD_SCALE, SAMPLE_RATE, WEIGHTS_HINT, AudioCLIPAudio, audio_state

    net = fit(AudioCLIPAudio(), audio_state(load_state(path, "AudioCLIP", WEIGHTS_HINT)), Path(path), "AudioCLIP")
    return FeatureExtractor("FAD-AudioCLIP", AUDIO, net, batch_size=8, sample_rate=SAMPLE_RATE, scale=FAD_SCALE)


def panns_extractor(path: str | Path) -> FeatureExtractor:
    """FD-PANNs as av-benchmark computes it: Cnn14's 2048-d embedding of the first 8 s at 16 kHz."""
    from avdit.eval.features.panns import SAMPLE_RATE, WEIGHTS_HINT, Cnn14

    net = fit(Cnn14(), load_state(path, "PANNs", WEIGHTS_HINT), Path(path), "PANNs")
    return FeatureExtractor("FD-PANNs", AUDIO, net, batch_size=8, sample_rate=SAMPLE_RATE)


def imagebind_scorer(path: str | Path) -> PairedScorer:
    """AV-IB as JavisBench computes it: cosine similarity of ImageBind's video and audio embeddings, per clip."""
    from avdit.eval.features.imagebind import WEIGHTS_HINT, ImageBindVisionAudio, av_ib_scores, vision_audio_state

    net = fit(ImageBindVisionAudio(), vision_audio_state(load_state(path, "ImageBind", WEIGHTS_HINT)), Path(path),
              "ImageBind")
    return PairedScorer("AV-IB", net, av_ib_scores, batch_size=2)


def synchformer_scorer(path: str | Path) -> PairedScorer:
    """DeSync as av-benchmark and JavisBench compute it: Synchformer's predicted offset in seconds, absolute."""
    from avdit.eval.features.synchformer import WEIGHTS_HINT, Synchformer, desync_scores

    net = fit(Synchformer(), load_state(path, "Synchformer", WEIGHTS_HINT), Path(path), "Synchformer")
    return PairedScorer("DeSync", net, desync_scores, batch_size=2)


def load_extractors(bt_folder: str | Path | None = None, i3d: str | Path | None = None,
                    vggish: str | Path | None = None, audioclip: str | Path | None = None,
                    panns: str | Path | None = None) -> list[FeatureExtractor]:
    """The bundled BT nets, plus I3D, VGGish, AudioCLIP and PANNs when their local weight files are given."""
    extractors = bt_extractors(bt_folder)
    for path, make in ((i3d, i3d_extractor), (vggish, vggish_extractor), (audioclip, audioclip_extractor),
                       (panns, panns_extractor)):
        if path is not None:
            extractors.append(make(path))
    return extractors


def load_paired(imagebind: str | Path | None = None, synchformer: str | Path | None = None) -> list[PairedScorer]:
    """ImageBind (AV-IB) and Synchformer (DeSync) when their local weight files are given."""
    return [make(path) for path, make in ((imagebind, imagebind_scorer), (synchformer, synchformer_scorer))
            if path is not None]
