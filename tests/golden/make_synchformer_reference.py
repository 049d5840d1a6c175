"""Make ``synchformer_reference.safetensors``: av-benchmark's own Synchformer code and JavisBench's DeSync protocol on
fixed weights and two short clips, the values ``tests/test_synchformer.py`` holds
``avdit.eval.features.synchformer`` to.

    git -C /work/.mirror/hkchengrex+av-benchmark/repo archive HEAD av_bench | tar -x -C /tmp/avbench
    python -m venv --system-site-packages /tmp/ref-sync
    /tmp/ref-sync/bin/pip install --no-deps timm omegaconf antlr4-python3-runtime transformers==4.46.3 \
        huggingface_hub==0.26.5 tokenizers==0.20.3 torchaudio torchvision   # never a second torch
    /tmp/ref-sync/bin/python tests/golden/make_synchformer_reference.py /tmp/avbench

(If the torchaudio / torchvision wheels were built for another torch, move ``torchaudio/lib/*.so`` aside and empty
``torchvision/_meta_registrations.py`` and ``_autograd_registrations.py`` in the venv: the Python-only transforms used
here -- MelSpectrogram, v2.Resize / CenterCrop -- need none of the compiled ops; torch's own uint8 bicubic kernel
does the resize.)

What it stores: the reference's full-size state-dict key -> shape list (metadata ``keys``); for a shallow copy of
the reference (1 block per transformer: its block lists cut before the weights are loaded, real widths), run in
float64 through JavisBench's ``calc_desync_score`` steps on two 0.75-s clips at 8 fps (one segment each, so the
first-group tiling runs): the torchaudio log-mel segments, the (B, 21) logits and the scores; and the same for two
2.125-s clips (our bundled geometry, 5 segments; used by a slow test). Each float64 result comes with its distance
from the same run in float32 (``amp_*``): how much the computation amplifies rounding, from which the test derives
its bound. The maker also asserts that our video pipeline equals torchvision's v2 transforms exactly and that our
log-mel matches torchaudio's. Weights are a function of each tensor's name and index alone, so the test rebuilds
them without the reference.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from tests.golden.fixed_weights import fixed_value, hashed_sine

GOLDEN = Path(__file__).with_name("synchformer_reference.safetensors")
SHALLOW = {"video_depth": 1, "audio_depth": 1, "sync_depth": 1}


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor of ``state`` set from its key and element index: a hashed sine in [-1, 1] (a plain sine wave
    would make every matrix rank 2 and the output blind to the input), scaled by fan-in for matrices and tokens, near
    1 for (1-D) norm weights, small for biases."""
    out = {}
    for key, value in state.items():
        norm = value.dim() == 1 and key.endswith("weight")
        out[key] = fixed_value(key, value, hashed_sine(key, value.numel()), norm_weight=norm)
    return out


def reference_clips(frames: int = 6, fps: float = 8.0, size: tuple[int, int] = (48, 64)) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """(2, frames, H, W, 3) uint8 video of a square moving right, and (2, 16000 * frames / fps) audio of clicks,
    one clip with the clicks where the square turns colour, the other with them shifted by 0.2 s."""
    h, w = size
    video = np.zeros((2, frames, h, w, 3), np.uint8)
    for t in range(frames):
        x = int((w - 12) * t / max(frames - 1, 1))
        video[:, t, h // 3:h // 3 + 12, x:x + 12] = (200, 60 + 30 * (t % 3), 40)
    n = int(16000 * frames / fps)
    audio = np.zeros((2, n))
    s = np.arange(n) / 16000
    for k, shift in enumerate((0.0, 0.2)):
        for t in range(0, frames, 3):
            start = t / fps + shift
            audio[k] += 0.5 * np.sin(2 * np.pi * 880 * s) * np.exp(-60 * np.clip(s - start, 0, None)) * (s >= start)
    return video, audio


def _javisbench_scores(net, vx: torch.Tensor, ax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """JavisBench ``calc_desync_score`` steps 1-3 (copied) on prepared (B, T, C, H, W) video, (B, S, 128, 66) mel."""
    from einops import rearrange

    b, t = vx.shape[:2]
    num = (t - 16) // 8 + 1
    v = torch.stack([vx[:, i * 8:i * 8 + 16] for i in range(num)], dim=1)
    v = rearrange(net.extract_vfeats(rearrange(v, "b s t c h w -> (b s) 1 t c h w")), "(b s) 1 t d -> b s t d", b=b)
    a = net.extract_afeats(ax.unsqueeze(2))
    grid = torch.linspace(-2, 2, 21)
    scores, logits_all = [], []
    frame_num, segment_size = v.shape[1], 14
    for si in range(math.ceil(frame_num / segment_size)):
        fstart, fend = si * segment_size, min((si + 1) * segment_size, frame_num)
        vs, as_ = v[:, fstart:fend], a[:, fstart:fend]
        flen = fend - fstart
        delta = segment_size - flen
        if delta > 0:
            if si == 0:
                rep = math.ceil(delta / flen)
                vs = torch.cat((vs, vs.repeat(1, rep, 1, 1)[:, :delta]), dim=1)
                as_ = torch.cat((as_, as_.repeat(1, rep, 1, 1)[:, :delta]), dim=1)
            else:
                vs, as_ = v[:, -segment_size:], a[:, -segment_size:]
        logits = net.compare_v_a(vs, as_)
        logits_all.append(logits)
        scores.append(grid[logits.argmax(-1)].abs().double())
    return torch.stack(logits_all, 1), torch.stack(scores, 1).mean(1)  # (B, G, 21), (B,)


def _prepare(video: np.ndarray, audio: np.ndarray, fps: float):
    """JavisBench's DeSyncDataset with max_length_s = the clip's duration: torchvision v2 and torchaudio."""
    import torchaudio
    from torchvision.transforms import v2

    seconds = video.shape[1] / fps
    n = int(25 * seconds)
    idx = np.minimum(np.floor(np.arange(n) * fps / 25 + 1e-9).astype(int), video.shape[1] - 1)  # ffmpeg fps filter
    tf = v2.Compose([v2.Resize(224, interpolation=v2.InterpolationMode.BICUBIC), v2.CenterCrop(224), v2.ToImage(),
                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3)])
    vx = torch.stack([tf(torch.from_numpy(c[idx]).permute(0, 3, 1, 2)) for c in video])  # (B, n, 3, 224, 224)
    a = torch.from_numpy(audio[:, :int(16000 * seconds)]).double()
    segs = torch.stack([a[:, i * 5120:i * 5120 + 10240] for i in range((a.shape[1] - 10240) // 5120 + 1)], 1)
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, win_length=400, hop_length=160, n_fft=1024,
                                               n_mels=128).double()
    ax = torch.log(mel(segs) + 1e-6)
    ax = torch.nn.functional.pad(ax, (0, 66 - ax.shape[-1]))
    return vx, (ax - -4.2677393) / (2 * 4.5689974)  # (B, n, 3, 224, 224), (B, S, 128, 66)


def main(checkout: str) -> None:
    from safetensors.torch import save_file

    sys.path.insert(0, checkout)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from av_bench.synchformer.synchformer import Synchformer as Reference

    from avdit.eval.features import synchformer as ours

    torch.set_grad_enabled(False)
    net = Reference().eval()
    keys = {k: list(v.shape) for k, v in net.state_dict().items()}
    net.vfeat_extractor.blocks = net.vfeat_extractor.blocks[:1]
    net.afeat_extractor.ast.encoder.layer = net.afeat_extractor.ast.encoder.layer[:1]
    net.transformer.blocks = net.transformer.blocks[:1]
    net.load_state_dict(deterministic_state(net.state_dict()))
    out, meta = {}, {"keys": json.dumps(keys)}
    for tag, frames in (("short", 6), ("long", 17)):
        video, audio = reference_clips(frames, 8.0, (48, 64) if tag == "short" else (64, 64))
        vx, ax = _prepare(video, audio, 8.0)
        # our pipeline against torchvision / torchaudio
        assert torch.equal(ours.video_segments(video, 8.0), torch.stack(
            [vx[:, i * 8:i * 8 + 16] for i in range((vx.shape[1] - 16) // 8 + 1)], 1)), "video pipeline differs"
        our_mel = ours.audio_segments(audio, 16000, frames / 8.0, torch.float64)[:, :, 0]
        mel_err = (our_mel - ax).abs().max().item()
        assert mel_err < 1e-9, mel_err
        logits64, scores64 = _javisbench_scores(net.double(), vx.double(), ax)
        logits32, scores32 = _javisbench_scores(net.float(), vx.float(), ax.float())
        out[f"logits_{tag}"], out[f"scores_{tag}"] = logits64, scores64
        out[f"amp_logits_{tag}"] = (logits32.double() - logits64).abs().max().reshape(1)
        if tag == "short":
            out["mel_short"] = ax.contiguous()
        top2 = logits64.topk(2, -1).values
        print(f"{tag}: scores {scores64.tolist()} (float32 {scores32.tolist()}), logit margin "
              f"{(top2[..., 0] - top2[..., 1]).min().item():.3g}, float32 amplification "
              f"{out[f'amp_logits_{tag}'].item():.3g}, our mel vs torchaudio {mel_err:.2g}")
    save_file({k: v.contiguous() for k, v in out.items()}, GOLDEN, metadata=meta)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
