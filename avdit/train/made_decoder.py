"""``avdit tune-decoder``: the video decoder trained on latents a model makes, so that it decodes the model's own
errors to the clips they stand for (docs/streams.md, "Where one window's error arises, and a decoder that knows it").

A window's made video latents differ from the clip's own in a way the codec never saw: the disc drawn a few per cent
too large or too small, frame to frame, which a stream shows as flicker. Here the model makes latents of training
clips (the made cells start from the clip's own latents noised to a level drawn in 1..``highest``, SDEdit, and go to
0 in ``ddim_steps`` DDIM steps, guidance 1; on the av_continue grid or with every cell made, half each), and the
decoder learns, on plain MSE, to give back the clip. Up to level 500 the bounce is still the clip's, so the clip is
what the made latents stand for. A share ``clean`` of them are the clip's own latents, so plain reconstruction is
kept. The encoder does not change: the latents, the codec digest (which leaves the decoder out) and every model
trained on them stay valid, and the tuned folder goes to ``--codecs`` of ``generate``, ``evaluate`` or ``serve``. The
bundled codecs' video decoder is this recipe's, for the bundled model (its ``video.json`` records it under
``decoder_tuned``, and a tuning of a tuned decoder adds its own record after it).

OUT holds ``video.*`` (the tuned codec), ``audio.*`` (the model's own, copied), ``tune_decoder.json`` (the
settings) and ``tune_decoder_state.pt`` (the decoder, its optimizer and its step, written atomically every
``checkpoint_every`` steps): rerun the same command to resume. Every chunk of ``chunk`` clips (their draw, grids,
levels and noise) comes from a generator seeded by (seed, the chunk's index), so a resumed run trains as an uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from avdit.codecs.interface import bundled_codecs_dir, describe_geometry, geometry_record, save_codec
from avdit.codecs.shards import SHARD_INDEX
from avdit.data.datasets import BOUNCING_TONES, dataset_geometry, open_dataset
from avdit.diffusion import DEFAULT_SCHEDULE, SAMPLERS, conditioned_denoiser, eps_denoiser, initial_latents
from avdit.latents import AV
from avdit.layout import MODALITIES
from avdit.pipeline import Pipeline, bundled_model_dir, codecs_of
from avdit.tasks import get_task
from avdit.utils.atomic import atomic_path, write_json
from avdit.utils.lr import warmup_cosine
from avdit.utils.resume import check_same_settings
from avdit.utils.seeding import step_generator

SETTINGS_FILE, STATE_FILE = "tune_decoder.json", "tune_decoder_state.pt"


@dataclass(frozen=True)
class DecoderTuneSettings:
    """A decoder tuning run (the recipe measured in docs/streams.md: 15 min on a 2-core CPU)."""

    checkpoint: str | None = None  # the model that makes the latents (None: the bundled one)
    codecs: str | None = None  # its codec folder (None: the one the checkpoint names)
    data: str | None = None  # its training clips (None: those its training latents were encoded from; ``clips_of``)
    clips: int = 2048  # training clips the latents are made of (all the data holds, where it holds fewer)
    steps: int = 1500
    batch_size: int = 8
    lr: float = 2e-4  # peak learning rate, cosine to 0 (no warm-up: the decoder starts trained)
    highest: int = 500  # highest level the made cells start from
    ddim_steps: int = 6  # DDIM steps from that level to 0
    clean: float = 0.25  # share of the clips given as their own latents
    chunk: int = 64  # clips made at once (one batch of the model); chunk / batch_size steps train on them
    seed: int = 0
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if min(self.clips, self.steps, self.batch_size, self.ddim_steps, self.checkpoint_every) < 1 or self.lr <= 0:
            raise ValueError("clips, steps, batch_size, ddim_steps, checkpoint_every and lr must be positive")
        if not 1 <= self.highest <= DEFAULT_SCHEDULE.T:
            raise ValueError(f"highest must be a level in 1..{DEFAULT_SCHEDULE.T}, got {self.highest}")
        if not 0 <= self.clean <= 1:
            raise ValueError(f"clean is a share in [0, 1], got {self.clean}")
        if self.chunk < self.batch_size or self.chunk % self.batch_size:
            raise ValueError(f"the batch size ({self.batch_size}) must divide the {self.chunk} clips made at once "
                             "(chunk)")


@torch.no_grad()
def made_latents(pipe: Pipeline, latents: AV, given: torch.Tensor, start: torch.Tensor, steps: int,
                 generator: torch.Generator) -> AV:
    """The made cells of grids ``given`` (B, M, N) from ``latents`` noised to per-example levels ``start`` (B,),
    ``steps`` DDIM steps to 0, guidance 1; given cells are ``latents``'."""
    fraction = torch.linspace(1, 0, steps + 1).view(-1, 1)  # (S + 1, 1)
    levels = (fraction * start.view(1, -1).float()).round().long().view(steps + 1, -1, 1, 1)  # (S + 1, B, 1, 1)
    matrix = torch.where(given.unsqueeze(0), torch.zeros_like(levels), levels)  # (S + 1, B, M, N)
    schedule = DEFAULT_SCHEDULE
    x = initial_latents(latents, matrix[0], pipe.layout, schedule, generator)
    denoiser = conditioned_denoiser(eps_denoiser(pipe.model, pipe.layout, schedule), given, latents, pipe.layout,
                                    "clean", 1.0, schedule, generator)
    return SAMPLERS["ddim"](denoiser, x, matrix, pipe.layout, schedule, generator=generator, self_condition=False,
                            progress=False)


@torch.no_grad()
def decoder_inputs(pipe: Pipeline, latents: AV, settings: DecoderTuneSettings,
                   generator: torch.Generator) -> torch.Tensor:
    """(B, C, T, h, w) video latents to decode into the clips of ``latents``: made by the model (see the module),
    or, for a share ``clean``, the clips' own."""
    b, n = latents.batch_size, pipe.layout.num_segments
    grids = torch.stack([get_task("av_continue", n).given, torch.zeros(len(MODALITIES), n, dtype=torch.bool)]
                        )  # (2, M, N): continuation's grid, every cell made
    given = grids[torch.randint(0, 2, (b,), generator=generator)]  # (B, M, N)
    start = torch.randint(1, settings.highest + 1, (b,), generator=generator)
    made = made_latents(pipe, latents, given, start, settings.ddim_steps, generator).video
    keep = (torch.rand(b, generator=generator) < settings.clean).view(-1, 1, 1, 1, 1)
    return torch.where(keep, latents.video, made)


def _encode_clips(pipe: Pipeline, dataset, count: int, batch: int, progress: bool) -> AV:
    """Latents of the first ``count`` clips of ``dataset``, ``batch`` at a time."""
    parts = []
    for first in tqdm(range(0, count, batch), desc="encoding clips", unit="batch", disable=not progress):
        items = [dataset[i] for i in range(first, min(first + batch, count))]
        parts.append(pipe.codecs.encode(torch.stack([torch.as_tensor(it["video"]) for it in items]),
                                        torch.stack([torch.as_tensor(it["audio"]).float() for it in items])))
    return AV(torch.cat([p.video for p in parts]), torch.cat([p.audio for p in parts]))


def clips_of(folder: Path, info: dict, data: str | None) -> str:
    """The clips to tune the decoder of the checkpoint in ``folder`` (its ``model.json``: ``info``) on: ``data`` as
    given, where a folder of latents (`avdit encode`) stands for the clips it was encoded from; by default, those the
    checkpoint was trained on (Bouncing Tones for the bundled model)."""
    if data is None:
        if folder.resolve() == bundled_model_dir().resolve():
            return BOUNCING_TONES
        data = info.get("train", {}).get("data")
        if data is None:
            raise ValueError(f"{folder} records no training data: give --data, the clips it was trained on")
    index = Path(data) / SHARD_INDEX
    if index.exists() and "shards" in (record := json.loads(index.read_text())):
        data = record["data"]  # latents: the clips they were encoded from
        if data != BOUNCING_TONES and not Path(data).exists():
            raise FileNotFoundError(f"{data}: the clips the model's latents were encoded from are not there; give "
                                    "--data, that folder of clips (`avdit prepare` or `avdit data`)")
    return data


def tune_decoder(settings: DecoderTuneSettings, out: str | Path, progress: bool = True) -> dict:
    """Tune the video decoder of ``settings.checkpoint``'s codecs into the codec folder ``out`` on the CPU (rerun to
    resume); returns the steps done and the last step's MSE (None when the run had already ended)."""
    out = Path(out)
    folder = Path(settings.checkpoint) if settings.checkpoint else bundled_model_dir()
    pipe = Pipeline.from_pretrained(folder, settings.codecs, device="cpu")
    source = Path(settings.codecs) if settings.codecs else codecs_of(folder, pipe.info)
    if pipe.codecs.video.source:
        raise ValueError(f"the video codec of {settings.checkpoint or 'the bundled model'} is a pretrained model "
                         f"({pipe.codecs.video.source['class']}); tune-decoder trains avdit's own video decoder only")
    if out.resolve() == source.resolve():
        raise ValueError(f"{out} holds the model's own codecs; write the tuned ones to another folder, so the model "
                         "keeps the decoder it was made with")
    data = clips_of(folder, pipe.info, settings.data)
    dataset = open_dataset(data, "train", size=settings.clips)  # Bouncing Tones: the training split of seed 0
    held, taken = geometry_record(dataset_geometry(dataset)), geometry_record(pipe.layout)
    if held != taken:
        raise ValueError(f"{data} holds clips of {describe_geometry(held)}; the model's codecs take "
                         f"{describe_geometry(taken)}: give the data the model was trained on")
    clips = min(settings.clips, len(dataset))
    if clips < settings.clips:
        print(f"avdit tune-decoder: {data} holds {clips} training clips; all of them are used", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    check_same_settings(out / SETTINGS_FILE, asdict(settings), free={"steps", "checkpoint_every"})
    write_json(out / SETTINGS_FILE, asdict(settings))

    codec = copy.deepcopy(pipe.codecs.video)
    codec.requires_grad_(False)
    decoder = codec.net.decoder
    decoder.requires_grad_(True)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=settings.lr, weight_decay=0.0)
    step, state_path = 0, out / STATE_FILE
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        decoder.load_state_dict(state["decoder"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        print(f"avdit tune-decoder: resuming {out} from step {step} of {settings.steps}", flush=True)
    began = time.perf_counter()
    latents = _encode_clips(pipe, dataset, clips, settings.chunk, progress) if step < settings.steps else None
    per_chunk = settings.chunk // settings.batch_size
    bar = tqdm(total=settings.steps, initial=step, desc="tune-decoder", disable=not progress)
    inputs, chunk_index, loss = None, None, None
    codec.train()
    while step < settings.steps:
        if step // per_chunk != chunk_index:  # a new chunk of made latents
            chunk_index = step // per_chunk
            generator = step_generator(settings.seed, chunk_index)
            index = torch.randint(0, clips, (settings.chunk,), generator=generator)  # (chunk,)
            inputs = decoder_inputs(pipe, AV(latents.video[index], latents.audio[index]), settings,
                                    generator)  # (chunk, C, T, h, w)
            targets = codec.to_pixels(torch.stack([torch.as_tensor(dataset[int(i)]["video"]) for i in index])
                                      )  # (chunk, 3, T, H, W) in [-1, 1]
        part = slice((step % per_chunk) * settings.batch_size, (step % per_chunk + 1) * settings.batch_size)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, settings.lr, 0, settings.steps)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            recon = decoder(codec.denormalise(inputs[part])).float()  # (b, 3, T, H, W) in [-1, 1]
        loss = ((recon - targets[part]) ** 2).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; the last checkpoint is in {state_path}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(mse=f"{loss.item():.5f}")
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            with atomic_path(state_path, ".pt") as tmp:
                torch.save({"decoder": decoder.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, tmp)
    bar.close()
    _write_codecs(source, codec.eval(), out, settings, data)
    return {"steps_done": step, "last_mse": None if loss is None else loss.item(),
            "seconds_this_run": round(time.perf_counter() - began, 1)}


def _write_codecs(source: Path, codec, out: Path, settings: DecoderTuneSettings, data: str) -> None:
    """OUT's codec folder: the tuned video codec (the record of the model's codecs in ``source``, and how it was
    tuned) and the model's own audio codec."""
    record = json.loads((source / "video.json").read_text())
    this = {**asdict(settings), "checkpoint": settings.checkpoint or "bundled", "data": data,
            "codecs": "bundled" if source.resolve() == bundled_codecs_dir().resolve() else str(source.resolve())}
    save_codec(codec, out, {k: v for k, v in record.items() if k not in codec.describe()}
               | {"decoder_tuned": [*record.get("decoder_tuned", []), this]})
    for name in ("audio.json", "audio.safetensors"):  # ``out`` is never ``source`` (tune_decoder refuses it)
        with atomic_path(out / name, Path(name).suffix) as tmp:
            shutil.copy(source / name, tmp)
