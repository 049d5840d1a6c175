"""AVDiT: a transformer over video and audio latent tokens with per-token adaLN-Zero (Sec. 4, App. B).

Tokens: video latents cut into 1 x p x p patches, audio latents into q-step patches, each linearly embedded.
Position: a video and an audio token at the same time (seconds) share the temporal half of the positional
embedding; the other half is (row, column) for video and zero for audio; a learned modality embedding is
added. With ``time_rope`` the queries and keys are also rotated by their token's time (RoPE on half of
each head), so attention sees time differences directly, across the modalities. Noise level: every token is
driven by the level of its (modality, segment) cell. The modulation is computed once per cell and repeated over
the cell's tokens; a level given per example takes the plain DiT path.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from avdit.latents import AV
from avdit.layout import AUDIO, VIDEO, M
from avdit.model import checkpoint as checkpoint_files
from avdit.model import lora
from avdit.model.config import AVDiTConfig
from avdit.model.embeddings import NoiseLevelEmbedding, rotate, sinusoidal


class ShapeError(ValueError):
    """Latents or noise levels whose shape does not match the model's layout."""


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for q, k, v (B, H, L, d) -> (B, H, L, d).

    On the CPU, for the short sequences of these presets (a few hundred tokens), as two batched matmuls: PyTorch's
    CPU flash-attention kernel is made for long sequences, and its backward alone took a quarter of a bt-small
    training step (benchmarks/train_speed.py). Elsewhere, and for long sequences, the fused kernel."""
    if q.device.type == "cpu" and q.shape[-2] <= 1024:
        return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1) @ v
    return F.scaled_dot_product_attention(q, k, v)


def to_tokens(per_cell: torch.Tensor, cell_tokens: torch.Tensor | None, length: int) -> torch.Tensor:
    """(B, M*N, k) values per cell -> (B, L, k) per token, tokens in cell order with ``cell_tokens`` (M*N,) of each;
    (B, k) per example -> (B, 1, k). A repeat, not a gather: its backward sums runs of tokens, several times faster
    than a gather's scatter-add on the CPU (a tenth of a bt-small training step)."""
    if cell_tokens is None:
        return per_cell[:, None]
    return per_cell.repeat_interleave(cell_tokens, dim=1, output_size=length)


class Block(nn.Module):
    """Pre-norm transformer block; adaLN-Zero shift/scale before attention and MLP, gates after each."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.adaLN = nn.Linear(width, 6 * width)  # applied to SiLU(noise-level embedding)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, cell_tokens: torch.Tensor | None,
                rope: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, D); cond = SiLU(noise-level embedding), per cell (B, M*N, D) with ``cell_tokens`` (M*N,) the
        number of tokens of each cell (tokens come in cell order), or per example (B, D). The block's own adaLN
        turns it into shift/scale/gate for attention, then for the MLP (inside the block, so a sharded block holds
        everything it uses). ``rope`` (L, r): the [cos | sin] table that rotates the first r dims of every head's
        queries and keys."""
        mod = to_tokens(self.adaLN(cond), cell_tokens, x.shape[1])  # (B, L or 1, 6D)
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)
        q, k, v = rearrange(self.qkv(modulate(self.norm1(x), shift1, scale1)), "b l (three h d) -> three b h l d",
                            three=3, h=self.heads)
        if rope is not None:
            q, k = rotate(q, rope), rotate(k, rope)
        attn = rearrange(attention(q, k, v), "b h l d -> b l (h d)")  # (B, L, D)
        x = x + gate1 * self.proj(attn)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class AVDiT(nn.Module):
    """(z_t, t) -> the head's output: latents AV + noise levels (B, M, N) or (B,) -> AV of the same shape, the
    prediction of ``config.prediction`` (eps or v). ``avdit.diffusion.denoiser.EpsDenoiser`` turns it into eps
    with the schedule of the loss or sampler that uses it."""

    def __init__(self, config: AVDiTConfig):
        super().__init__()
        self.config = c = config
        layout = c.layout
        self.video_shape = layout.video_latent_shape(c.video_channels)  # (Cv, Tv, h, w)
        self.audio_shape = layout.audio_latent_shape(c.audio_channels)  # (Ca, Ta)
        inputs = 2 if c.self_condition else 1
        self.video_embed = nn.Linear(inputs * c.video_channels * c.video_patch**2, c.width)
        self.audio_embed = nn.Linear(inputs * c.audio_channels * c.audio_patch, c.width)
        self.modality_embed = nn.Parameter(torch.randn(M, c.width) * 0.02)
        self.noise_level_embed = NoiseLevelEmbedding(c.width)
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.final_norm = nn.LayerNorm(c.width, elementwise_affine=False, eps=1e-6)
        self.final_adaLN = nn.Linear(c.width, 2 * c.width)
        self.video_head = nn.Linear(c.width, c.video_channels * c.video_patch**2)
        self.audio_head = nn.Linear(c.width, c.audio_channels * c.audio_patch)

        position, cell, times = self._token_table()
        self.register_buffer("position", position, persistent=False)  # (L, D) fixed
        # (L, r) [cos | sin] of each token's time, for half of every head's dims; None: absolute positions only
        rope = sinusoidal(times, c.width // c.heads // 2) if c.time_rope else None
        self.register_buffer("rope", rope, persistent=False)
        self.register_buffer("token_cell", torch.tensor(cell), persistent=False)  # (L,) index m * N + n
        if cell != sorted(cell):
            raise ValueError("tokens must come in cell order (video segments, then audio segments)")
        cell_tokens = [cell.count(k) for k in range(M * layout.num_segments)]  # tokens of each cell
        self.register_buffer("cell_tokens", torch.tensor(cell_tokens), persistent=False)  # (M*N,)
        self._init_weights()

    def _token_table(self) -> tuple[torch.Tensor, list[int], torch.Tensor]:
        """Fixed positional embedding (L, D), grid cell (a list of L) and time (L,; in audio latent steps) of every
        token: video tokens first, then audio."""
        c, layout = self.config, self.config.layout
        half, quarter = c.width // 2, c.width // 4
        rate = float(layout.audio_latent_rate)  # time unit: one audio latent step
        rows, cols = (n // c.video_patch for n in layout.video_latent_size)
        times, cells, spatial = [], [], []
        for k, ((start, end), seg) in enumerate(zip(layout.video_latent_spans, layout.video_segments)):
            for i in range(rows):
                for j in range(cols):
                    times.append(float(start + end) / 2 * rate)
                    cells.append(VIDEO * layout.num_segments + seg)
                    spatial.append(torch.cat([sinusoidal(torch.tensor(float(i)), quarter),
                                              sinusoidal(torch.tensor(float(j)), quarter)]))
        spans, segs = layout.audio_latent_spans, layout.audio_segments
        for start in range(0, len(spans), c.audio_patch):
            end = spans[start + c.audio_patch - 1][1]
            times.append(float(spans[start][0] + end) / 2 * rate)
            cells.append(AUDIO * layout.num_segments + segs[start])
            spatial.append(torch.zeros(half))
        times = torch.tensor(times)  # (L,)
        temporal = sinusoidal(times, half)  # (L, D/2), shared by the two modalities
        return torch.cat([temporal, torch.stack(spatial)], dim=1), cells, times

    def _init_weights(self) -> None:
        def xavier(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

        self.apply(xavier)
        for linear in self.noise_level_embed.mlp[::2]:
            nn.init.normal_(linear.weight, std=0.02)
        # adaLN-Zero: every block starts as the identity and the network predicts exactly zero.
        for module in [*(b.adaLN for b in self.blocks), self.final_adaLN, self.video_head, self.audio_head]:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)

    def _check(self, x: AV, t: torch.Tensor) -> None:
        batch = x.video.shape[0]
        for name, part, shape in (("video", x.video, self.video_shape), ("audio", x.audio, self.audio_shape)):
            if part.shape[1:] != shape or part.shape[0] != batch:
                raise ShapeError(f"{name} latents must be (B={batch}, {', '.join(map(str, shape))}), "
                                 f"got {tuple(part.shape)}; check the codecs match the model's layout")
        grid = (batch, M, self.config.layout.num_segments)
        if t.shape not in ((batch,), grid):
            raise ShapeError(f"noise levels must be {grid} (per cell) or ({batch},), got {tuple(t.shape)}")

    def _modulation(self, cond: torch.Tensor, linear: nn.Linear, per_cell: bool) -> torch.Tensor:
        """SiLU(cond) -> linear, per cell (B, M*N, k) repeated to tokens (B, L, k), or per example (B, 1, k)."""
        return to_tokens(linear(F.silu(cond)), self.cell_tokens if per_cell else None, len(self.token_cell))

    def forward(self, x: AV, t: torch.Tensor, self_cond: AV | None = None) -> AV:
        self._check(x, t)
        c = self.config
        if c.self_condition:
            self_cond = self_cond if self_cond is not None else x.map(torch.zeros_like)
            x_in = x.map(lambda a, b: torch.cat([a, b.to(a.dtype)], dim=1), self_cond)
        else:
            x_in = x
        p, q = c.video_patch, c.audio_patch
        video = rearrange(x_in.video, "b c t (h p1) (w p2) -> b (t h w) (c p1 p2)", p1=p, p2=p)
        audio = rearrange(x_in.audio, "b c (n q) -> b n (c q)", q=q)
        tokens = torch.cat([self.video_embed(video) + self.modality_embed[VIDEO],
                            self.audio_embed(audio) + self.modality_embed[AUDIO]], dim=1)  # (B, L, D)
        tokens = tokens + self.position.to(tokens.dtype)

        per_cell = t.dim() == 3
        cond = self.noise_level_embed(t.flatten(1) if per_cell else t)  # (B, M*N, D) or (B, D)
        act, cell_tokens = F.silu(cond), self.cell_tokens if per_cell else None
        for block in self.blocks:
            if c.grad_checkpointing and self.training:
                tokens = checkpoint(block, tokens, act, cell_tokens, self.rope, use_reentrant=False)
            else:
                tokens = block(tokens, act, cell_tokens, self.rope)
        shift, scale = self._modulation(cond, self.final_adaLN, per_cell).chunk(2, dim=-1)
        tokens = modulate(self.final_norm(tokens), shift, scale)  # (B, L, D)

        n_video = c.num_video_tokens
        _, tv, h, w = self.video_shape
        video = rearrange(self.video_head(tokens[:, :n_video]), "b (t h w) (c p1 p2) -> b c t (h p1) (w p2)",
                          t=tv, h=h // p, w=w // p, p1=p, p2=p)  # (B, Cv, Tv, h, w)
        audio = rearrange(self.audio_head(tokens[:, n_video:]), "b n (c q) -> b c (n q)", q=q)  # (B, Ca, Ta)
        return AV(video, audio)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- checkpoints (see ``avdit.model.checkpoint``) ---------------------------------------------------------
    def save_pretrained(self, folder: str | Path, info: dict | None = None, half: bool = False,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Write ``model.safetensors`` + ``model.json`` (this config and ``info``) into ``folder``, atomically;
        fp16 weights when ``half``. ``state_dict`` replaces this module's own (a full state gathered from shards)."""
        state = self.state_dict() if state_dict is None else state_dict
        return checkpoint_files.write(folder, self.config, state, info, half)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "AVDiT":
        """The model saved in ``folder`` (fp32 parameters, also from fp16 weights), in eval mode. A folder of LoRA
        adapters (``avdit.model.lora``) gives its base model with the adapters merged in."""
        if lora.is_adapter(folder):
            return lora.load_merged(folder, cls.from_pretrained(lora.base_folder(folder))).eval()
        config, state = checkpoint_files.read(folder)
        model = cls(config)
        model.load_state_dict(state)
        return model.eval()

    @staticmethod
    def load_info(folder: str | Path) -> dict:
        """The ``model.json`` of a checkpoint folder: the config under "model" and what its writer recorded (for a
        folder of LoRA adapters: its base's, updated with what the LoRA run recorded)."""
        if lora.is_adapter(folder):
            adapter = lora.read_adapter_info(folder)
            return {**checkpoint_files.read_info(adapter["base"]), **adapter}
        return checkpoint_files.read_info(folder)
