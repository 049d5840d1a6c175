"""ImageBind's vision and audio towers (Girdhar et al. 2023, "ImageBind: One Embedding Space To Bind Them All") and
the AV-IB score: the cosine similarity of a clip's ImageBind video and audio embeddings.

The towers are written afresh; their module names are ImageBind's (``imagebind/models/imagebind_model.py``), so the
vision and audio tensors of the released ``imagebind_huge.pth`` load as they are (``vision_audio_state`` drops the
text, depth, thermal and IMU ones). Each tower: a patch stem (vision: a 2x14x14 Conv3d over 2 frames of 224x224;
audio: a 16x16 Conv2d, stride 10, over a 128x204 log-mel image, then LayerNorm), a CLS token and learned position
embedding, a pre-norm transformer (vision: LayerNorm before it; audio: learned key/value bias tokens), LayerNorm,
the CLS token projected to the joint space, L2-normalised (audio also times a fixed logit scale of 20).

Protocol: JavisBench's ``calc_imagebind_score`` (JavisVerse/JavisDiT, ``eval/javisbench/src/metrics.py``;
``sim_av``), with its ``ImageBindDataset`` and ImageBind's own ``data.load_and_transform_video_data`` /
``load_and_transform_audio_data`` (``imagebind_inputs``): 5 video clips x 3 crops and 3 audio clips of 2 s per clip;
ImageBind's forward averages the normalised embeddings over clips and crops, and ``sim_av`` is
``CosineSimilarity(eps=1e-6)(audio, vision)`` of those means. av-benchmark (hkchengrex/av-benchmark,
``av_bench/data/ib_data.py``) instead samples frames at 0.5 fps and gives no frame pair for clips under 4 s; our clips
are about 2 s, so JavisBench's protocol (ImageBind's) is the one followed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avdit.eval.features.imagebind_inputs import MEL_BINS, SIZE, TARGET_FRAMES, audio_clips, video_clips

WEIGHTS_HINT = ("imagebind_huge.pth, ImageBind's released checkpoint (facebookresearch/ImageBind), the file "
                "av-benchmark and JavisBench load")
OUT_DIM = 1024  # imagebind_huge: out_embed_dim
VISION_DIM, VISION_DEPTH, VISION_HEADS = 1280, 32, 16
AUDIO_DIM, AUDIO_DEPTH, AUDIO_HEADS = 768, 12, 12
VIDEO_FRAMES, VISION_KERNEL = 2, (2, 14, 14)
AUDIO_KERNEL, AUDIO_STRIDE = 16, 10
AUDIO_LOGIT_SCALE = 20.0
MODALITIES = ("vision", "audio")


def vision_audio_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The vision and audio tensors of a full ImageBind state dict (its text, depth, thermal and IMU ones ignored)."""
    return {k: v for k, v in state.items() if k.split(".")[1:2] and k.split(".")[1] in MODALITIES}


class RepeatToFrames(nn.Module):
    """ImageBind's ``PadIm2Video(repeat, 2)``: an image (B, C, H, W) or 1-frame video becomes 2 equal frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if x.dim() == 5 else x.unsqueeze(2)
        return x.repeat(1, 1, VIDEO_FRAMES, 1, 1) if x.shape[2] == 1 else x


class PatchStem(nn.Module):
    """``PatchEmbedGeneric``: convolution, (B, C, ...) -> (B, L, C) tokens, optional LayerNorm."""

    def __init__(self, proj: nn.Module, norm_layer: nn.Module | None = None):
        super().__init__()
        self.proj = proj
        self.norm_layer = norm_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)  # (B, L, C)
        return self.norm_layer(x) if self.norm_layer is not None else x


class PosEmbedding(nn.Module):
    """``SpatioTemporalPosEmbeddingHelper`` (learnable): one position vector per token, CLS first."""

    def __init__(self, tokens: int, dim: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))


class Tokenizer(nn.Module):
    """``RGBDTPreprocessor`` / ``AudioPreprocessor``: stem tokens after a CLS token, plus position embeddings."""

    def __init__(self, stem: PatchStem, patches: int, dim: int):
        super().__init__()
        self.rgbt_stem = stem
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding_helper = PosEmbedding(1 + patches, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.rgbt_stem(x)  # (B, L, D)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)  # (B, 1 + L, D)
        return tokens + self.pos_embedding_helper.pos_embed


class Attention(nn.Module):
    """``nn.MultiheadAttention`` (self-attention, no mask) with its parameter names; ``bias_kv`` appends one learned
    key and value token, as ``add_bias_kv=True`` does."""

    def __init__(self, dim: int, heads: int, bias_kv: bool):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.zeros(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        if bias_kv:
            self.bias_k = nn.Parameter(torch.zeros(1, 1, dim))
            self.bias_v = nn.Parameter(torch.zeros(1, 1, dim))
        else:
            self.bias_k = self.bias_v = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)  # 3 x (B, N, D)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(b, -1, -1)], dim=1)  # (B, N + 1, D)
            v = torch.cat([v, self.bias_v.expand(b, -1, -1)], dim=1)
        q, k, v = (t.reshape(b, t.shape[1], self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, D / heads)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """``BlockWithMasking``: pre-norm attention and MLP residuals (LayerNorm eps 1e-6)."""

    def __init__(self, dim: int, heads: int, bias_kv: bool):
        super().__init__()
        self.attn = Attention(dim, heads, bias_kv)
        self.norm_1, self.norm_2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm_1(x))
        return x + self.mlp(self.norm_2(x))


class Trunk(nn.Module):
    """``SimpleTransformer`` (batch first here; ImageBind transposes to sequence first and back)."""

    def __init__(self, dim: int, depth: int, heads: int, pre_norm: bool, bias_kv: bool):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(dim, eps=1e-6) if pre_norm else nn.Identity())
        self.blocks = nn.Sequential(*[Block(dim, heads, bias_kv) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.pre_transformer_layer(x))


class SelectFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1, p=2)


class LogitScale(nn.Module):
    """``LearnableLogitScaling(learnable=False)``: times min(exp(log_logit_scale), 100)."""

    def __init__(self, scale: float):
        super().__init__()
        self.register_buffer("log_logit_scale", torch.tensor(float(np.log(scale))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clip(self.log_logit_scale.exp(), max=100) * x


def head(dim: int, out_dim: int) -> nn.Sequential:
    """LayerNorm, the CLS token, a linear map to the joint space: (B, L, dim) -> (B, out_dim)."""
    return nn.Sequential(nn.LayerNorm(dim, eps=1e-6), SelectFirst(), nn.Linear(dim, out_dim, bias=False))


class ImageBindVisionAudio(nn.Module):
    """ImageBind's vision and audio towers; defaults are ``imagebind_huge``'s, smaller widths build test instances
    (the input sizes, kernels, strides and frame count stay ImageBind's)."""

    def __init__(self, out_dim: int = OUT_DIM, vision_dim: int = VISION_DIM, vision_depth: int = VISION_DEPTH,
                 vision_heads: int = VISION_HEADS, audio_dim: int = AUDIO_DIM, audio_depth: int = AUDIO_DEPTH,
                 audio_heads: int = AUDIO_HEADS):
        super().__init__()
        vision_patches = (VIDEO_FRAMES // VISION_KERNEL[0]) * (SIZE // VISION_KERNEL[1]) * (SIZE // VISION_KERNEL[2])
        audio_patches = (((MEL_BINS - AUDIO_KERNEL) // AUDIO_STRIDE + 1)
                         * ((TARGET_FRAMES - AUDIO_KERNEL) // AUDIO_STRIDE + 1))  # 12 x 19
        vision_stem = PatchStem(nn.Sequential(
            RepeatToFrames(), nn.Conv3d(3, vision_dim, VISION_KERNEL, stride=VISION_KERNEL, bias=False)))
        audio_stem = PatchStem(nn.Conv2d(1, audio_dim, AUDIO_KERNEL, stride=AUDIO_STRIDE, bias=False),
                               norm_layer=nn.LayerNorm(audio_dim))  # eps 1e-5 here, as in ImageBind
        self.modality_preprocessors = nn.ModuleDict({
            "vision": Tokenizer(vision_stem, vision_patches, vision_dim),
            "audio": Tokenizer(audio_stem, audio_patches, audio_dim)})
        self.modality_trunks = nn.ModuleDict({
            "vision": Trunk(vision_dim, vision_depth, vision_heads, pre_norm=True, bias_kv=False),
            "audio": Trunk(audio_dim, audio_depth, audio_heads, pre_norm=False, bias_kv=True)})
        self.modality_heads = nn.ModuleDict({"vision": head(vision_dim, out_dim), "audio": head(audio_dim, out_dim)})
        self.modality_postprocessors = nn.ModuleDict({
            "vision": Normalize(), "audio": nn.Sequential(Normalize(), LogitScale(AUDIO_LOGIT_SCALE))})

    def _embed(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """(B, K, ...) K clips (or crops) per item -> (B, out_dim): the mean of their postprocessed embeddings, as
        ImageBind's forward reduces a list of clips."""
        b, k = x.shape[:2]
        x = x.reshape(b * k, *x.shape[2:]).to(self.modality_heads[modality][2].weight)
        tokens = self.modality_trunks[modality](self.modality_preprocessors[modality](x))
        z = self.modality_postprocessors[modality](self.modality_heads[modality](tokens))  # (B K, out_dim)
        return z.reshape(b, k, -1).mean(dim=1)

    def embed_vision(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 15, 3, 2, 224, 224) normalised crops -> (B, out_dim) mean of unit vectors."""
        return self._embed("vision", x)

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 1, 128, 204) normalised fbanks -> (B, out_dim) mean of vectors of norm 20 (the logit scale; a
        cosine similarity does not see it)."""
        return self._embed("audio", x)


@torch.no_grad()
def av_ib_scores(net: ImageBindVisionAudio, video: np.ndarray, audio: np.ndarray, fps: float,
                 sample_rate: int) -> np.ndarray:
    """AV-IB per clip: (B, T, H, W, 3) uint8 video at ``fps`` and (B, S) audio in [-1, 1] at ``sample_rate`` ->
    (B,) float64 cosine similarities of ImageBind's audio and vision embeddings, as JavisBench's ``sim_av``."""
    vision = net.embed_vision(video_clips(video, fps))  # (B, out_dim)
    sound = net.embed_audio(audio_clips(audio, sample_rate))  # (B, out_dim)
    return F.cosine_similarity(sound, vision, dim=-1, eps=1e-6).double().cpu().numpy()
