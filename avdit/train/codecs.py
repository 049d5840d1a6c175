"""``avdit train-codec {video,audio}``: train a codec, keep held-out reconstructions, resume by rerunning.

RUN_DIR holds, per kind, ``<kind>_state.pt`` (full training state, written atomically, loaded with
``weights_only=True``), ``<kind>_train.json`` (the resolved settings), ``samples/<kind>_step_N.mp4`` (held-out
reconstructions beside the originals) and, when training ends, the codec itself (``<kind>.safetensors`` +
``<kind>.json``, with latent statistics measured on training clips and the clip geometry of the data). The video
and the audio codec trained with the same ``--out`` make one codec folder that every ``--codecs`` takes. Each step's
batch is drawn by index from a generator seeded by (seed, step), so a resumed run trains on the same stream as an
uninterrupted one, bit for bit.

Training has two phases: ``steps`` of the whole autoencoder on the codec's own loss (``losses.py``: for video a
contrast-weighted L2 and SSIM, which is what makes the disc's colour survive), then ``decoder_steps`` of the
decoder alone on the plain MSE that PSNR / SNR measure; a video decoder gains a full-resolution sharpening head
for it (``SharpenHead``). The encoder is frozen in the second phase, so the latent space (and every latent or model
made with it) stays valid while reconstructions sharpen: on 64 held-out Bouncing Tones clips, 600 such steps took
the bundled video codec from 28.2 to 30.7 dB PSNR (without the head, 1000 such steps: 29.7 dB).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from avdit.utils.atomic import atomic_path, write_json
from avdit.codecs.audio import AudioCodecConfig
from avdit.codecs.interface import (AudioCodec, VideoCodec, describe_geometry, geometry_record, recorded_geometry,
                                    save_codec)
from avdit.codecs.losses import audio_loss, video_loss
from avdit.codecs.video import VideoCodecConfig
from avdit.layout import ClipLayout
from avdit.utils.lr import warmup_cosine
from avdit.utils.resume import check_same_settings
from avdit.data.datasets import dataset_geometry, open_dataset
from avdit.data.loader import make_loader
from avdit.media import write_mp4
from avdit.utils.seeding import step_generator


# What `avdit train-codec KIND` does unless told otherwise: the recipes of the bundled codecs, each of which
# trains in under 20 minutes on a 2-core CPU (see README).
RECIPES = {"video": {"steps": 1500, "lr": 2e-3, "precision": "bf16", "decoder_steps": 600},
           "audio": {"steps": 2000, "lr": 1e-3, "precision": "fp32", "decoder_steps": 0}}


@dataclass(frozen=True)
class CodecTrainSettings:
    """A codec training run. ``steps``, ``lr``, ``precision`` and ``decoder_steps`` left as None take the kind's
    recipe (``RECIPES``), in Python as on the command line."""

    kind: str  # "video" or "audio"
    data: str = "bouncing-tones"
    steps: int | None = None
    batch_size: int = 8
    lr: float | None = None
    warmup: int = 100
    latent_channels: int = 0  # 0: the codec's default
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 200
    workers: int = 0
    stats_clips: int = 256
    precision: str | None = None  # autocast of the forward pass: "fp32" or "bf16" (the loss stays fp32)
    decoder_steps: int | None = None  # after ``steps``: this many steps train the decoder alone on plain MSE
    decoder_lr: float = 1e-3  # peak learning rate of those steps (cosine from there, no warm-up)
    sharpen_width: int = 16  # video: the decoder phase adds a full-resolution sharpening head this wide (0: none)

    def __post_init__(self) -> None:
        if self.kind not in ("video", "audio"):
            raise ValueError(f"codec kind must be video or audio, got {self.kind!r}")
        for name, value in RECIPES[self.kind].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.steps < 1 or self.batch_size < 1 or self.decoder_steps < 0 or self.sharpen_width < 0:
            raise ValueError("steps and batch_size must be >= 1, decoder_steps and sharpen_width >= 0")

    @property
    def total_steps(self) -> int:
        return self.steps + self.decoder_steps


def build_codec(settings: CodecTrainSettings, fps: int, sample_rate: int,
                decoder_phase: bool = False) -> VideoCodec | AudioCodec:
    """The codec of a phase: in the decoder phase the video decoder has its sharpening head."""
    if settings.kind == "video":
        config = VideoCodecConfig(**({"latent_channels": settings.latent_channels} if settings.latent_channels else {}),
                                  sharpen_width=settings.sharpen_width if decoder_phase else 0)
        return VideoCodec(config, fps=fps)
    config = AudioCodecConfig(**({"latent_channels": settings.latent_channels} if settings.latent_channels else {}))
    return AudioCodec(config, sample_rate=sample_rate)


def _forward(codec, batch: dict, precision: str = "fp32", plain_mse: bool = False):
    """Reconstruction, target and raw latent of a batch, in the codec's working space (the network under
    bf16 autocast when asked; reconstruction, latent and loss in fp32). ``plain_mse``: the loss is the plain
    mean squared error, the quantity PSNR / SNR measure (the decoder phase)."""
    if codec.kind == "video":
        target = codec.to_pixels(batch["video"])  # (B, 3, T, H, W) in [-1, 1]
    else:
        target = batch["audio"].float()  # (B, S)
    with torch.autocast(target.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        recon, latent = codec.net(target)
    recon, latent = recon.float(), latent.float()
    if plain_mse:
        mse = ((recon - target) ** 2).mean()
        return recon, target, latent, (mse, {"mse": mse.item()})
    loss = video_loss if codec.kind == "video" else audio_loss
    return recon, target, latent, loss(recon, target, latent)


def quality(codec, recon: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB) of uint8 frames for video, SNR (dB) of the waveform for audio."""
    if codec.kind == "video":
        a, b = codec.from_pixels(recon).float(), codec.from_pixels(target).float()
        return float(10 * torch.log10(255**2 / ((a - b) ** 2).mean().clamp_min(1e-10)))
    return float(10 * torch.log10((target**2).sum() / ((recon.clamp(-1, 1) - target) ** 2).sum().clamp_min(1e-10)))


def _check_partner(run_dir: Path, kind: str, geometry: ClipLayout) -> None:
    """The other codec already in ``run_dir``, when it records its clips' geometry, must have been trained on
    clips of the same geometry."""
    other = run_dir / f"{'audio' if kind == 'video' else 'video'}.json"
    recorded = recorded_geometry(json.loads(other.read_text())) if other.exists() else None
    wanted = geometry_record(geometry)
    if recorded is not None and recorded != wanted:
        raise ValueError(f"{other} was trained on clips of {describe_geometry(recorded)}, this data has "
                         f"{describe_geometry(wanted)}: one codec folder holds codecs of one geometry; use another out=")


class StepBatches(Dataset):
    """The training stream of steps ``first``..``last - 1`` as one flat dataset: item ``i * batch_size + j`` is clip
    j of step ``first + i``'s batch, whose clip indices a generator seeded by (seed, step) draws. A batch depends on
    its step alone, so a resumed run continues the stream of an uninterrupted one, with any number of workers."""

    def __init__(self, clips: Dataset, batch_size: int, seed: int, first: int, last: int):
        self.clips, self.batch_size, self.seed, self.first, self.last = clips, batch_size, seed, first, last
        self._drawn: tuple[int, torch.Tensor] | None = None  # the last step's indices: one draw per batch

    def __len__(self) -> int:
        return (self.last - self.first) * self.batch_size

    def indices(self, step: int) -> torch.Tensor:
        """(batch_size,) clip indices of ``step``'s batch."""
        if self._drawn is None or self._drawn[0] != step:
            drawn = torch.randint(0, len(self.clips), (self.batch_size,), generator=step_generator(self.seed, step))
            self._drawn = (step, drawn)
        return self._drawn[1]

    def __getitem__(self, item: int) -> dict:
        i, j = divmod(item, self.batch_size)
        return self.clips[int(self.indices(self.first + i)[j])]


def _lr(step: int, settings: CodecTrainSettings) -> float:
    """Warm-up and cosine over ``steps``; then, in the decoder phase, a fresh cosine from ``decoder_lr``."""
    if step >= settings.steps:
        return warmup_cosine(step - settings.steps, settings.decoder_lr, 0, settings.decoder_steps)
    return warmup_cosine(step, settings.lr, settings.warmup, settings.steps)


def _write_samples(codec, batch: dict, recon: torch.Tensor, path: Path, fps: int, sample_rate: int) -> None:
    """First held-out clip: original and reconstruction side by side (video), or one after the other (audio)."""
    if codec.kind == "video":
        original, decoded = batch["video"][0].numpy(), codec.from_pixels(recon[:1])[0].numpy()
        write_mp4(path, np.concatenate([original, decoded], axis=2), None, fps, sample_rate)
    else:
        original, decoded = batch["audio"][0].numpy(), recon[0].clamp(-1, 1).numpy()
        gap = np.zeros(sample_rate // 4, np.float32)
        write_mp4(path, None, np.concatenate([original, gap, decoded]).astype(np.float32), fps, sample_rate)


def _start_decoder_phase(codec, settings: CodecTrainSettings):
    """The codec with the decoder phase's architecture (a video decoder gains its sharpening head, which starts
    as the identity), its encoder frozen, and a new optimizer: AdamW skips the encoder, which has no gradient."""
    if codec.kind == "video" and codec.config.sharpen_width != settings.sharpen_width:
        fresh = build_codec(settings, codec.fps, sample_rate=0, decoder_phase=True)
        missing, unexpected = fresh.load_state_dict(codec.state_dict(), strict=False)
        if unexpected or not all(".sharpen." in name for name in missing):
            raise RuntimeError(f"the sharpening head does not fit this decoder: missing {missing}, unexpected {unexpected}")
        codec = fresh
    codec.net.encoder.requires_grad_(False)
    codec.train()
    return codec, torch.optim.AdamW(codec.net.parameters(), lr=settings.decoder_lr, weight_decay=0.0)


def _open_run(settings: CodecTrainSettings, run_dir: Path, state_path: Path) -> dict | None:
    """The run's saved state (None for a new run) after checking that these settings may resume it; writes them."""
    config_path = run_dir / f"{settings.kind}_train.json"
    state = torch.load(state_path, weights_only=True) if state_path.exists() else None
    in_decoder_phase = state is not None and state.get("decoder_phase", False)
    free = {"steps", "decoder_steps", "sample_every", "checkpoint_every", "workers"}
    if not in_decoder_phase:  # a decoder phase may still be planned differently, or added to a finished run
        free |= {"decoder_lr", "sharpen_width"}
    check_same_settings(config_path, asdict(settings), free=free)
    if in_decoder_phase and state["joint_steps"] != settings.steps:
        raise ValueError(f"{run_dir} is in its decoder phase after {state['joint_steps']} steps; "
                         f"resume with steps={state['joint_steps']}")
    if state is not None and not in_decoder_phase and state["step"] > settings.steps:
        raise ValueError(f"{run_dir} has trained {state['step']} steps already; steps= cannot shrink below that")
    write_json(config_path, asdict(settings))
    if state is not None:
        print(f"avdit train-codec: resuming the {settings.kind} codec in {run_dir} from step {state['step']} of "
              f"{settings.total_steps}", flush=True)
    return state


def _datasets(settings: CodecTrainSettings) -> tuple[torch.utils.data.Dataset, dict]:
    """The training clips and one held-out batch to measure and show reconstructions on."""
    train_data = open_dataset(settings.data, "train", seed=settings.seed, modality=settings.kind)
    if len(train_data) == 0:
        raise ValueError(f"{settings.data} has no training clips: prepare it with more files or a smaller "
                         "--test-fraction")
    test_data = open_dataset(settings.data, "test", size=settings.batch_size, seed=settings.seed,
                             modality=settings.kind)
    if len(test_data) == 0:
        print(f"avdit train-codec: {settings.data} has no test clips; reconstructions and their figures come from "
              "training clips (prepare with --test-fraction > 0 to hold some out)", flush=True)
        test_data = train_data
    return train_data, next(iter(make_loader(test_data, settings.batch_size)))


def _save_state(path: Path, codec, optimizer, step: int, in_decoder_phase: bool, settings: CodecTrainSettings) -> None:
    with atomic_path(path, ".pt") as tmp:
        torch.save({"codec": codec.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "rng": torch.get_rng_state(), "decoder_phase": in_decoder_phase,
                    "joint_steps": settings.steps}, tmp)


@torch.no_grad()
def _measure_statistics(codec, settings: CodecTrainSettings) -> None:
    """Per-channel latent mean and std on ``stats_clips`` training clips (a stream apart from the training one)."""
    loader = make_loader(open_dataset(settings.data, "train", size=settings.stats_clips, seed=settings.seed + 1,
                                      modality=codec.kind), settings.batch_size)
    raw = []
    for i, batch in enumerate(loader):
        if i * settings.batch_size >= settings.stats_clips:
            break
        raw.append(_forward(codec, batch)[2])
    codec.set_statistics(torch.cat(raw))


def train_codec(settings: CodecTrainSettings, run_dir: str | Path, progress: bool = True) -> dict:
    """Train (or resume) a codec in ``run_dir``; returns the final held-out quality figures."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / f"{settings.kind}_state.pt"
    state = _open_run(settings, run_dir, state_path)
    in_decoder_phase = state is not None and state.get("decoder_phase", False)
    torch.manual_seed(settings.seed)
    train_data, held_out = _datasets(settings)
    geometry = dataset_geometry(train_data)
    fps, sample_rate = geometry.fps, geometry.sample_rate
    _check_partner(run_dir, settings.kind, geometry)
    step = state["step"] if state is not None else 0
    codec = build_codec(settings, fps, sample_rate, decoder_phase=in_decoder_phase)
    optimizer = torch.optim.AdamW(codec.net.parameters(), lr=settings.lr, weight_decay=0.0)
    if state is not None:
        codec.load_state_dict(state["codec"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if in_decoder_phase:
            codec.net.encoder.requires_grad_(False)

    stream = StepBatches(train_data, settings.batch_size, settings.seed, step, settings.total_steps)
    batches = iter(make_loader(stream, settings.batch_size, settings.workers, seed=settings.seed))  # in step order
    bar = tqdm(total=settings.total_steps, initial=step, desc=f"train-codec {settings.kind}", disable=not progress)
    start = time.perf_counter()
    codec.train()
    while step < settings.total_steps:
        batch = next(batches)
        if step >= settings.steps and not in_decoder_phase:  # new head (video), frozen encoder, new optimizer
            codec, optimizer = _start_decoder_phase(codec, settings)
            in_decoder_phase = True
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, settings)
        _, _, _, (loss, parts) = _forward(codec, batch, settings.precision, plain_mse=in_decoder_phase)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; the last checkpoint is kept in {state_path}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.net.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", **{k: f"{v:.4f}" for k, v in parts.items()})
        if step % settings.sample_every == 0 or step in (settings.steps, settings.total_steps):
            codec.eval()
            with torch.no_grad():
                recon, target, _, _ = _forward(codec, held_out)
            figure = quality(codec, recon, target)
            bar.write(f"step {step}: held-out {'PSNR' if settings.kind == 'video' else 'SNR'} {figure:.2f} dB")
            _write_samples(codec, held_out, recon, run_dir / "samples" / f"{settings.kind}_step_{step:06d}.mp4", fps,
                           sample_rate)
            codec.train()
        if step % settings.checkpoint_every == 0 or step in (settings.steps, settings.total_steps):
            _save_state(state_path, codec, optimizer, step, in_decoder_phase, settings)
    bar.close()

    codec.eval()
    _measure_statistics(codec, settings)
    with torch.no_grad():
        recon, target, _, _ = _forward(codec, held_out)
    result = {"steps_done": step, "held_out_db": quality(codec, recon, target),
              "seconds_this_run": round(time.perf_counter() - start, 1)}
    save_codec(codec, run_dir, {**geometry_record(geometry), "training": {**asdict(settings), **result}})
    return result
