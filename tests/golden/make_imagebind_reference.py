"""Make ``imagebind_reference.safetensors`` and ``imagebind_huge_keys.json``: ImageBind's own code (as JavisBench
vendors it) on fixed weights and two clips, the values ``tests/test_imagebind.py`` holds
``avdit.eval.features.imagebind`` to.

    mkdir -p /tmp/ib && git -C JavisVerse/JavisDiT archive HEAD eval/javisbench/src/ImageBind | tar -x -C /tmp/ib
    python -m venv --system-site-packages /tmp/ref-ib
    /tmp/ref-ib/bin/pip install --no-deps timm torchvision torchaudio PYTORCHVIDEO  # pytorchvideo at 28fe037
    /tmp/ref-ib/bin/pip install ftfy regex iopath fvcore parameterized av networkx
    /tmp/ref-ib/bin/python tests/golden/make_imagebind_reference.py /tmp/ib/eval/javisbench/src/ImageBind

PYTORCHVIDEO is facebookresearch/pytorchvideo at commit 28fe037 (ImageBind's requirements pin it; PyPI's 0.1.5 spaces
clips differently and lacks ``from_path(**other_args)``). torchvision and torchaudio wheels built for another torch
are used for their Python code only: torchvision's compiled-op registrations and torchaudio's extension are stood in
for (the transforms and ``compliance.kaldi.fbank`` are pure PyTorch). The decord decoder is stood in for by a reader
that returns the frames in memory by index (pytorchvideo's ``EncodedVideoDecord`` still picks the indices), and
``torchaudio.load`` by one that returns the waveform in memory.

Two clips of 2.125 s (8 fps 64x64 video of a moving coloured square; a 16 kHz tone) go through ImageBind's
``data.load_and_transform_video_data`` / ``load_and_transform_audio_data`` and a small ``ImageBindModel`` (width 64,
2 blocks, 2 heads; patch sizes, kernels, strides, frame count and input sizes ImageBind's) in float64. The video
inputs are float32, as pytorchvideo's ShortSideScale requires; the audio runs in float64. Saved: subsamples of the
preprocessed inputs (also of a 1.5 s, 10 fps, 40x56 clip, whose crops differ), the embeddings and ``sim_av``.
``imagebind_huge_keys.json`` is the vision and audio state-dict keys and shapes of ``imagebind_huge()``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

from tests.golden.fixed_weights import fixed_value, sine

GOLDEN = Path(__file__).with_name("imagebind_reference.safetensors")
KEYS = Path(__file__).with_name("imagebind_huge_keys.json")
SMALL = {"out_dim": 32, "vision_dim": 64, "vision_depth": 2, "vision_heads": 2, "audio_dim": 64, "audio_depth": 2,
         "audio_heads": 2}
FPS, SECONDS, SIDE, RATE = 8, 2.125, 64, 16000
STRIDE_VIDEO, STRIDE_MEL, STRIDE_FRAMES = 28, 4, 6  # what the golden keeps of the preprocessed inputs


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every floating tensor of ``state`` set from its key and element index (a sine wave): weights scaled by
    fan-in, norms near 1, tokens and position embeddings of size 0.5; the fixed logit scale is kept."""
    out = {}
    for key, value in state.items():
        if not value.is_floating_point() or key.endswith("log_logit_scale"):
            out[key] = value
            continue
        wave = sine(key, value.numel())
        is_norm = ".norm" in key or "pre_transformer_layer.0" in key or key.endswith(("heads.vision.0.weight",
                                                                                  "heads.audio.0.weight"))
        if key.rsplit(".", 1)[-1] in ("cls_token", "pos_embed", "bias_k", "bias_v"):
            out[key] = (0.5 * wave).reshape(value.shape).to(value.dtype)
        else:
            out[key] = fixed_value(key, value, wave, norm_weight=is_norm and key.rsplit(".", 1)[-1] == "weight")
    return out


def reference_clips() -> tuple[np.ndarray, np.ndarray]:
    """(2, 17, 64, 64, 3) uint8 video at 8 fps and (2, 34000) float32 audio at 16 kHz: a red square moving right
    with a 440 Hz tone rising in level, and a green one moving down with a 1500 Hz tone cut at 1 s."""
    frames = int(FPS * SECONDS)
    video = np.zeros((2, frames, SIDE, SIDE, 3), np.uint8)
    video[..., 2] = 40
    for t in range(frames):
        p = 4 + 3 * t
        video[0, t, 20:36, p:p + 16] = (230, 30, 30)
        video[1, t, p:p + 12, 10:22] = (20, 200, 60)
    s = np.arange(int(RATE * SECONDS)) / RATE
    audio = np.stack([0.6 * np.sin(2 * np.pi * 440 * s) * (s / SECONDS),
                      0.4 * np.sin(2 * np.pi * 1500 * s) * (s < 1.0) + 0.05 * np.sin(2 * np.pi * 90 * s)])
    return video, audio.astype(np.float32)


def extra_clip() -> tuple[np.ndarray, float, np.ndarray]:
    """A 1.5 s clip (shorter than ImageBind's 2 s windows): (1, 15, 40, 56, 3) at 10 fps, wider than high, so the
    three crops differ; and (1, 24000) audio, padded to 204 fbank frames."""
    t = np.arange(15)[:, None, None, None]
    y, x = np.mgrid[:40, :56]
    video = ((x[None, :, :, None] * 4 + y[None, :, :, None] * 2 + t * 9 + np.arange(3) * 70) % 256).astype(np.uint8)
    s = np.arange(24000) / RATE
    return video[None], 10.0, (0.5 * np.sin(2 * np.pi * 700 * s) + 0.1)[None].astype(np.float32)


def _stand_ins(frames: dict[str, tuple[np.ndarray, float]], waves: dict[str, np.ndarray]) -> None:
    """What the reference imports but cannot load here, and its decoders, reading the clips in memory."""
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    ext = types.ModuleType("torchaudio._extension")
    ext._IS_TORCHAUDIO_EXT_AVAILABLE = ext._IS_ALIGN_AVAILABLE = False
    ext.fail_if_no_align = lambda f: f
    sys.modules["torchaudio._extension"] = ext

    class VideoReader:  # decord.VideoReader: frame i of the file is frame i in memory
        def __init__(self, uri, **kwargs):
            self.frames, self.fps = frames[uri.read().decode()]

        def get_avg_fps(self):
            return self.fps

        def __len__(self):
            return len(self.frames)

        def get_batch(self, idxs):
            return torch.from_numpy(self.frames[idxs])  # (T, H, W, 3) uint8, decord's torch bridge

    sys.modules["decord"] = types.SimpleNamespace(VideoReader=VideoReader, AVReader=None, cpu=lambda i: None,
                                                  bridge=types.SimpleNamespace(set_bridge=lambda name: None))
    import torchaudio
    import torchvision.transforms._functional_tensor as functional_tensor

    sys.modules["torchvision.transforms.functional_tensor"] = functional_tensor  # its old name, for pytorchvideo
    torchaudio.load = lambda path: (torch.from_numpy(waves[str(path)]).double()[None], RATE)  # float64 run


def main(checkout: str) -> None:
    from safetensors.torch import save_file

    video, audio = reference_clips()
    extra_video, extra_fps, extra_audio = extra_clip()
    tmp = Path(tempfile.mkdtemp())
    frames, waves, paths = {}, {}, []
    for name, v, f, a in [("a", video[0], FPS, audio[0]), ("b", video[1], FPS, audio[1]),
                          ("c", extra_video[0], extra_fps, extra_audio[0])]:
        (tmp / name).write_text(name)  # the "file" names its clip
        frames[name], waves[str(tmp / name)] = (v, f), a
        paths.append(str(tmp / name))
    _stand_ins(frames, waves)
    sys.path.insert(0, checkout)
    from imagebind import data
    from imagebind.models import imagebind_model as ib

    linspace = torch.linspace
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})  # drop-path rates, read with .item()
    with torch.device("meta"):
        huge = ib.imagebind_huge(pretrained=False)
    torch.linspace = linspace
    keys = {k: list(v.shape) for k, v in huge.state_dict().items() if k.split(".")[1] in ("vision", "audio")}
    KEYS.write_text("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in keys.items()) + "\n}\n")

    vision = data.load_and_transform_video_data(paths, "cpu")  # (3, 15, 3, 2, 224, 224) float32
    sound = data.load_and_transform_audio_data(paths, "cpu")  # (3, 3, 1, 128, 204) float64
    s = SMALL
    torch.manual_seed(0)
    net = ib.ImageBindModel(out_embed_dim=s["out_dim"], vision_embed_dim=s["vision_dim"],
                            vision_num_blocks=s["vision_depth"], vision_num_heads=s["vision_heads"],
                            audio_embed_dim=s["audio_dim"], audio_num_blocks=s["audio_depth"],
                            audio_num_heads=s["audio_heads"], text_embed_dim=16, text_num_blocks=1,
                            text_num_heads=1, depth_embed_dim=16, depth_num_blocks=1, depth_num_heads=1,
                            thermal_embed_dim=16, thermal_num_blocks=1, thermal_num_heads=1, imu_embed_dim=16,
                            imu_num_blocks=1, imu_num_heads=1).eval()
    net.load_state_dict(deterministic_state(net.state_dict()))
    with torch.no_grad():
        out = net.double()({"vision": vision[:2].double(), "audio": sound[:2].double()})
    sim = torch.nn.CosineSimilarity(dim=-1, eps=1e-6)(out["audio"], out["vision"])  # JavisBench's sim_av
    golden = {"vision": out["vision"], "audio": out["audio"], "sim_av": sim,
              "video_inputs": vision[:2, ..., ::STRIDE_VIDEO, ::STRIDE_VIDEO],
              "audio_inputs": sound[:2, ..., ::STRIDE_MEL, ::STRIDE_FRAMES],
              "extra_video_inputs": vision[2:, ..., ::STRIDE_VIDEO, ::STRIDE_VIDEO],
              "extra_audio_inputs": sound[2:, ..., ::STRIDE_MEL, ::STRIDE_FRAMES]}
    save_file({k: v.contiguous() for k, v in golden.items()}, GOLDEN)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes): sim_av {sim.tolist()}; {KEYS}: {len(keys)} keys")


if __name__ == "__main__":
    main(sys.argv[1])
