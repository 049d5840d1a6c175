"""Synchformer (Iashin, Xie, Rahtu & Zisserman, "Synchformer: Efficient Synchronization from Sparse Cues",
ICASSP 2024) and the DeSync score: the audio-video offset, in seconds, that Synchformer predicts for a clip.

The network is written afresh in plain PyTorch with the module names of av-benchmark's copy
(hkchengrex/av-benchmark, ``av_bench/synchformer``: MotionFormer "divided" video ViT, HF-style AST audio ViT,
minGPT-style global transformer), so that ``synchformer_state_dict.pth`` from MMAudio's v0.1 release -- the file
av-benchmark and JavisBench load with ``Synchformer().load_state_dict(sd)`` -- loads key for key.

Protocol (``desync_scores``), with where each detail comes from:

* JavisBench ``calc_desync_score`` / ``DeSyncDataset`` (JavisVerse/JavisDiT, eval/javisbench) with ``max_length_s`` set
  to the clip's own duration, so nothing is zero-padded: video at 25 fps (ffmpeg's ``fps`` filter via
  StreamingMediaDecoder: output frame i shows the input frame displayed at i/25 s), ``int(25 * duration)`` frames;
  ``v2.Resize(224, BICUBIC)`` (antialiased; on CPU torchvision resizes uint8 natively, which is what we call) then
  ``CenterCrop(224)``, scaled to [0, 1], normalised with mean = std = 0.5; audio mono at 16 kHz.
  JavisBench resamples with ``torchaudio.functional.resample``; we use ``scipy.signal.resample_poly`` (both
  band-limited, they differ slightly near Nyquist; at 16 kHz input nothing is resampled).
* av-benchmark ``encode_video_with_sync`` / ``encode_audio_with_sync`` (shared by JavisBench): 16-frame video
  segments with step 8, 10240-sample audio segments with hop 5120, the log-mel of ``sync_mel``.
* JavisBench: segment features cut into groups of 14 (Synchformer's 4.48-s context), a short first group tiled to 14,
  a short last group replaced by the last 14; each group's offset is ``GRID[argmax(logits)]`` and the clip's score is
  the mean of ``|offset|`` over its groups. av-benchmark's ``evaluate.py`` does the same for 8-s clips (two groups).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avdit.eval.features.rates import resample
from avdit.eval.features.sync_mel import SAMPLE_RATE, sync_log_mel

WEIGHTS_HINT = ("synchformer_state_dict.pth from MMAudio's v0.1 release (hkchengrex/MMAudio), the file av-benchmark "
                "and JavisBench load")
GRID = torch.linspace(-2.0, 2.0, 21, dtype=torch.float64)  # offset classes in seconds (make_class_grid(-2, 2, 21))
VIDEO_FPS, CROP = 25.0, 224
V_SEG, V_STEP = 16, 8  # frames
A_SEG, A_STEP = 10240, 5120  # samples at 16 kHz
GROUP = 14  # segments Synchformer compares at once
MIN_SECONDS = V_SEG / VIDEO_FPS  # 0.64 s, one segment
DIM, HEADS = 768, 12


class _CLSAggregator(nn.TransformerEncoderLayer):
    """av-benchmark's ``BaseEncoderLayer``: a pre-norm encoder layer over (N, L, D) with a CLS token prepended;
    returns the CLS output (N, D)."""

    def __init__(self) -> None:
        super().__init__(d_model=DIM, nhead=HEADS, dim_feedforward=4 * DIM, dropout=0.0, activation=nn.GELU(),
                         layer_norm_eps=1e-6, batch_first=True, norm_first=True)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)  # (N, 1 + L, D)
        return super().forward(x)[:, 0]  # (N, D)


# ---------------------------------------------------------------- video: MotionFormer (divided space-time ViT-B/16)

class _PatchEmbed(nn.Module):
    """2-D patch embedding; unused by the forward pass, kept for the state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, DIM, kernel_size=16, stride=16)


class _PatchEmbed3D(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, DIM, kernel_size=(2, 16, 16), stride=(2, 16, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (N, 3, 16, 224, 224) -> (N, 8*14*14, D)


class _DividedAttention(nn.Module):
    """Attention within groups of patch tokens (same frame, or same place over frames); every group also sees
    the CLS token, and the CLS token attends to all tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor, frames: int, over_time: bool) -> torch.Tensor:
        n, length, _ = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, HEADS, -1).permute(2, 0, 3, 1, 4)  # each (n, h, L, hd)
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)  # (n, h, 1, hd)
        places = (length - 1) // frames

        def groups(t: torch.Tensor) -> torch.Tensor:  # (n, h, f*p, hd) -> (n, h, G, len, hd)
            t = t[:, :, 1:].unflatten(2, (frames, places))  # (n, h, f, p, hd)
            return t.transpose(2, 3) if over_time else t

        qg, kg, vg = groups(q), groups(k), groups(v)
        g = kg.shape[2]
        kg = torch.cat([k[:, :, None, :1].expand(-1, -1, g, -1, -1), kg], dim=3)  # (n, h, G, 1 + len, hd)
        vg = torch.cat([v[:, :, None, :1].expand(-1, -1, g, -1, -1), vg], dim=3)
        out = F.scaled_dot_product_attention(qg, kg, vg)  # (n, h, G, len, hd)
        out = (out.transpose(2, 3) if over_time else out).flatten(2, 3)  # (n, h, f*p, hd)
        out = torch.cat([cls_out, out], dim=2).transpose(1, 2).flatten(2)  # (n, L, D)
        return self.proj(out)


class _Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _DividedSpaceTimeBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM, eps=1e-6)
        self.attn = _DividedAttention()
        self.timeattn = _DividedAttention()
        self.norm2 = nn.LayerNorm(DIM, eps=1e-6)
        self.mlp = _Mlp()
        self.norm3 = nn.LayerNorm(DIM, eps=1e-6)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, over_time=True)
        x = x + self.attn(self.norm1(x), frames, over_time=False)
        return x + self.mlp(self.norm2(x))


class MotionFormer(nn.Module):
    """(B, S, 3, 16, 224, 224) -> (B, S, 8, D): per segment, one feature per pair of frames (spatial CLS pooling)."""

    def __init__(self, depth: int = 12) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, 14 * 14 + 1, DIM))
        self.temp_embed = nn.Parameter(torch.zeros(1, 8, DIM))
        self.patch_embed = _PatchEmbed()
        self.patch_embed_3d = _PatchEmbed3D()
        self.blocks = nn.ModuleList(_DividedSpaceTimeBlock() for _ in range(depth))
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.spatial_attn_agg = _CLSAggregator()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s = x.shape[:2]
        x = self.patch_embed_3d(x.flatten(0, 1))  # (BS, 8*196, D)
        frames, places = self.temp_embed.shape[1], self.pos_embed.shape[1] - 1
        pos = self.pos_embed[:, 1:].repeat(1, frames, 1) + self.temp_embed.repeat_interleave(places, 1)  # (1, 1568, D)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)  # (BS, 1 + 1568, D)
        x = x + torch.cat([self.pos_embed[:, :1], pos], dim=1)
        for block in self.blocks:
            x = block(x, frames)
        x = self.norm(x[:, 1:]).unflatten(1, (frames, places))  # (BS, 8, 196, D)
        x = self.spatial_attn_agg(x.flatten(0, 1)).unflatten(0, (b * s, frames))  # (BS, 8, D)
        return x.unflatten(0, (b, s))  # (B, S, 8, D)


# ---------------------------------------------------------------- audio: AST (HF names)

class _ASTPatchEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.projection = nn.Conv2d(1, DIM, kernel_size=16, stride=10)


class _ASTEmbeddings(nn.Module):
    def __init__(self, tokens: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.patch_embeddings = _ASTPatchEmbeddings()
        self.position_embeddings = nn.Parameter(torch.zeros(1, tokens + 2, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embeddings.projection(x.transpose(1, 2)[:, None])  # (N, T, F) -> (N, D, f=12, t=6)
        x = x.flatten(2).transpose(1, 2)  # (N, f*t, D), frequency-major
        aux = torch.cat([self.cls_token, self.distillation_token], dim=1).expand(len(x), -1, -1)
        return torch.cat([aux, x], dim=1) + self.position_embeddings  # (N, 2 + f*t, D)


class _Linear(nn.Module):
    """Holder of one ``dense`` layer (HF's ASTSelfOutput / ASTIntermediate / ASTOutput)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)


class _ASTSelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (m(x).unflatten(-1, (HEADS, -1)).transpose(1, 2) for m in (self.query, self.key, self.value))
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)  # (N, L, D)


class _ASTAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = _ASTSelfAttention()
        self.output = _Linear(DIM, DIM)


class _ASTLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = _ASTAttention()
        self.intermediate = _Linear(DIM, 4 * DIM)
        self.output = _Linear(4 * DIM, DIM)
        self.layernorm_before = nn.LayerNorm(DIM, eps=1e-12)
        self.layernorm_after = nn.LayerNorm(DIM, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention.output.dense(self.attention.attention(self.layernorm_before(x)))
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class _ASTEncoder(nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_ASTLayer() for _ in range(depth))


class _ASTModel(nn.Module):
    def __init__(self, depth: int, tokens: int) -> None:
        super().__init__()
        self.embeddings = _ASTEmbeddings(tokens)
        self.encoder = _ASTEncoder(depth)
        self.layernorm = nn.LayerNorm(DIM, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(x)
        for layer in self.encoder.layer:
            x = layer(x)
        return self.layernorm(x)  # (N, 2 + f*t, D)


class AST(nn.Module):
    """(B, S, 66, 128) log-mel segments -> (B, S, 6, D): per segment, one feature per time patch (frequency CLS
    pooling)."""

    def __init__(self, depth: int = 12, max_spec_t: int = 66) -> None:
        super().__init__()
        self.f, self.t = (128 - 16) // 10 + 1, (max_spec_t - 16) // 10 + 1  # 12, 6 patches
        self.ast = _ASTModel(depth, self.f * self.t)
        self.freq_attn_agg = _CLSAggregator()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s = x.shape[:2]
        x = self.ast(x.flatten(0, 1))[:, 2:]  # (BS, f*t, D)
        x = x.unflatten(1, (self.f, self.t)).transpose(1, 2)  # (BS, t, f, D)
        x = self.freq_attn_agg(x.flatten(0, 1))  # (BS*t, D)
        return x.unflatten(0, (b, s, self.t))  # (B, S, t, D)


# ---------------------------------------------------------------- the global transformer and the whole net

class _SelfAttention(nn.Module):
    def __init__(self, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.key, self.query, self.value = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (m(x).unflatten(-1, (self.heads, -1)).transpose(1, 2) for m in (self.query, self.key, self.value))
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))


class _Block(nn.Module):
    def __init__(self, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.attn = _SelfAttention(heads)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class _PosEmb(nn.Module):
    def __init__(self, length: int) -> None:
        super().__init__()
        self.pos_emb = nn.Parameter(torch.zeros(1, length, DIM))


class GlobalTransformer(nn.Module):
    """[OFF, video tokens, MOD, audio tokens] (198 tokens for 14 segments) -> (B, 21) offset logits."""

    def __init__(self, depth: int = 3, heads: int = 8, classes: int = 21) -> None:
        super().__init__()
        self.vis_in_lnorm, self.aud_in_lnorm = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.OFF_tok = nn.Parameter(torch.zeros(1, 1, DIM))
        self.MOD_tok = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_emb_cfg = _PosEmb(2 + GROUP * (8 + 6))
        self.blocks = nn.Sequential(*(_Block(heads) for _ in range(depth)))
        self.ln_f = nn.LayerNorm(DIM)
        self.off_head = nn.Linear(DIM, classes)

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        b = len(v)
        x = torch.cat([self.OFF_tok.expand(b, -1, -1), self.vis_in_lnorm(v),
                       self.MOD_tok.expand(b, -1, -1), self.aud_in_lnorm(a)], dim=1)  # (B, 198, D)
        x = self.ln_f(self.blocks(x + self.pos_emb_cfg.pos_emb))
        return self.off_head(x[:, 0])  # (B, 21)


class Synchformer(nn.Module):
    """Synchformer with av-benchmark's module names; the depths are arguments only so that tests can run
    shallow copies (the release is 12, 12, 3)."""

    def __init__(self, video_depth: int = 12, audio_depth: int = 12, sync_depth: int = 3) -> None:
        super().__init__()
        self.vfeat_extractor = MotionFormer(video_depth)
        self.afeat_extractor = AST(audio_depth)
        self.vproj = nn.Linear(DIM, DIM)
        self.aproj = nn.Linear(DIM, DIM)
        self.transformer = GlobalTransformer(sync_depth)

    def extract_vfeats(self, vis: torch.Tensor) -> torch.Tensor:
        """(B, S, 16, 3, 224, 224) normalised frames -> (B, S, 8, D)."""
        return self.vfeat_extractor(vis.permute(0, 1, 3, 2, 4, 5))

    def extract_afeats(self, aud: torch.Tensor) -> torch.Tensor:
        """(B, S, 1, 128, 66) normalised log-mel -> (B, S, 6, D)."""
        return self.afeat_extractor(aud.squeeze(2).transpose(-1, -2))

    def compare_v_a(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """(B, 14, 8, D) video and (B, 14, 6, D) audio features -> (B, 21) logits over ``GRID``."""
        return self.transformer(self.vproj(vis).flatten(1, 2), self.aproj(aud).flatten(1, 2))


# ---------------------------------------------------------------- the DeSync protocol

def video_segments(video: np.ndarray, fps: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 at ``fps`` -> (B, S, 16, 3, 224, 224) frames at 25 fps, resized (short side 224,
    bicubic, antialiased), centre-cropped, in [-1, 1]."""
    t_in, h, w = video.shape[1:4]
    n = int(VIDEO_FPS * t_in / fps + 1e-9)
    idx = np.minimum(np.floor(np.arange(n) * fps / VIDEO_FPS + 1e-9).astype(np.int64), t_in - 1)
    frames = torch.from_numpy(np.ascontiguousarray(video[:, idx])).permute(0, 1, 4, 2, 3)  # (B, n, 3, H, W)
    short, long = min(h, w), max(h, w)
    size = (CROP, int(CROP * long / short)) if h <= w else (int(CROP * long / short), CROP)  # torchvision's rule
    x = F.interpolate(frames.flatten(0, 1), size=size, mode="bicubic", align_corners=False, antialias=True)
    top, left = round((size[0] - CROP) / 2.0), round((size[1] - CROP) / 2.0)  # v2.CenterCrop
    x = x[..., top:top + CROP, left:left + CROP].unflatten(0, frames.shape[:2])  # (B, n, 3, 224, 224) uint8
    x = x.to(dtype).mul_(1.0 / 255).sub_(0.5).div_(0.5)  # as v2.ToDtype(scale=True) then v2.Normalize
    starts = range(0, n - V_SEG + 1, V_STEP)
    return torch.stack([x[:, s:s + V_SEG] for s in starts], dim=1)  # (B, S, 16, 3, 224, 224)


def audio_segments(audio: np.ndarray, sample_rate: int, seconds: float, dtype: torch.dtype = torch.float32
                   ) -> torch.Tensor:
    """(B, S) audio -> (B, S', 1, 128, 66) normalised log-mel of 10240-sample segments (hop 5120) at 16 kHz, over
    the first ``seconds`` (zero-padded to it if shorter)."""
    audio = resample(audio, sample_rate, SAMPLE_RATE)
    n = int(SAMPLE_RATE * seconds + 1e-6)
    a = torch.as_tensor(np.asarray(audio)[:, :n], dtype=dtype)
    a = F.pad(a, (0, n - a.shape[-1]))  # (B, n)
    segs = a.unfold(-1, A_SEG, A_STEP)  # (B, S', 10240)
    return sync_log_mel(segs)[:, :, None]  # (B, S', 1, 128, 66)


def group_logits(net: Synchformer, vfeats: torch.Tensor, afeats: torch.Tensor) -> list[torch.Tensor]:
    """JavisBench's grouping: (B, S, 8, D), (B, S, 6, D) -> one (B, 21) logits per group of 14 segments."""
    s = vfeats.shape[1]
    out = []
    for gi in range(math.ceil(s / GROUP)):
        lo, hi = gi * GROUP, min((gi + 1) * GROUP, s)
        v, a = vfeats[:, lo:hi], afeats[:, lo:hi]
        if hi - lo < GROUP:
            if gi == 0:  # tile the only group: (v0..vk, v0..vk, ...) cut to 14
                reps = math.ceil(GROUP / (hi - lo))
                v, a = v.repeat(1, reps, 1, 1)[:, :GROUP], a.repeat(1, reps, 1, 1)[:, :GROUP]
            else:  # the last 14 segments instead
                v, a = vfeats[:, -GROUP:], afeats[:, -GROUP:]
        out.append(net.compare_v_a(v, a))  # (B, 21)
    return out


@torch.no_grad()
def desync_scores(net: Synchformer, video: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int
                  ) -> np.ndarray:
    """(B, T, H, W, 3) uint8 video at ``fps`` and (B, S) audio -> (B,) mean |predicted offset| in seconds, in
    [0, 2]; lower is better."""
    seconds = video.shape[1] / fps
    if seconds + 1e-9 < MIN_SECONDS or audio.shape[1] / sample_rate + 1e-9 < MIN_SECONDS:
        raise ValueError(f"DeSync needs clips of at least {MIN_SECONDS:.2f} s (one 16-frame segment at 25 fps); "
                         f"got {seconds:.3f} s of video and {audio.shape[1] / sample_rate:.3f} s of audio")
    p = next(net.parameters())
    vis = video_segments(video, fps, p.dtype).to(p.device)  # (B, S, 16, 3, 224, 224)
    aud = audio_segments(audio, sample_rate, seconds, p.dtype).to(p.device)  # (B, S, 1, 128, 66)
    s = min(vis.shape[1], aud.shape[1])  # equal for any duration; min guards rounding
    vfeats = net.extract_vfeats(vis[:, :s])  # (B, S, 8, D)
    afeats = net.extract_afeats(aud[:, :s])  # (B, S, 6, D)
    offsets = torch.stack([GRID[lg.argmax(-1).cpu()].abs() for lg in group_logits(net, vfeats, afeats)], 1)
    return offsets.mean(1).numpy()  # (B,)
