"""``avdit train``: MoNL training that resumes by rerunning the same command, on one CPU or under torchrun.

RUN_DIR gets config.json, state.pt (resume), model.safetensors + model.json (EMA snapshot), metrics.jsonl (cut
back to the resumed step when a run resumes) and TensorBoard scalars in tb/ (loss, loss per strategy, lr, grad
norm, samples/s), and samples/ when asked.

Every step draws its global batch (clip indices, noise levels, noise, self-conditioning choices) from a
generator seeded by (seed, step); each rank takes its slice. So a resumed run continues the same stream, and
K ranks with batch B/K reproduce one process with batch B (DDP averages the gradients of equal slices).
"""

from __future__ import annotations

import copy
import gc
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from avdit.utils import distributed
from avdit.utils.atomic import atomic_path, write_json
from avdit.codecs.interface import load_codecs
from avdit.codecs.shards import SHARD_INDEX, LatentShards
from avdit.diffusion import (
    NoiseLevelSampler,
    diffusion_loss,
    parse_loss_weighting,
    parse_noise_level_curriculum,
    reduce_loss,
)
from avdit.layout import ClipLayout
from avdit.utils.lr import warmup_cosine
from avdit.model import AVDiT, get_preset, lora
from avdit.model.config import AVDiTConfig, parse_model_overrides
from avdit.model.checkpoint import CONFIG_NAME
from avdit.utils.resume import check_same_settings, differences
from avdit.utils.seeding import step_generator
from avdit.train.config import TrainConfig
from avdit.train.data import Batch, codecs_folder, draw_indices, training_latents
from avdit.train.sharding import full_optimizer_state, full_state_dict, load_optimizer_state, shard
from avdit.train.state import clean_stale_temporaries, load_state, save_state

METRICS = "metrics.jsonl"


class TrainingError(RuntimeError):
    """A run that cannot go on (diverged, or a run folder made for something else)."""


def learning_rate(step: int, config: TrainConfig) -> float:
    return warmup_cosine(step, config.lr, config.warmup, config.steps)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- ema + (1 - decay) (model - ema) for all parameters in one fused call (on a GPU a few kernel launches,
    not one per parameter)."""
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)


def _check_network(run_dir: Path, built: AVDiTConfig) -> None:
    """A resumed run must build the network it trained (its snapshot's). Same settings can give another network when
    a preset's definition changed since; some changes (heads, time_rope) keep every parameter's shape, so the
    weights would load into the other network without a word."""
    path = run_dir / CONFIG_NAME
    if not path.exists():
        return
    saved = AVDiTConfig.from_dict(json.loads(path.read_text())["model"])  # fields older than it get defaults
    details = differences(saved.to_dict(), built.to_dict(), ignore=("grad_checkpointing",))
    if details:
        raise TrainingError(f"{run_dir} holds a run of another network ({details}): its preset changed since it was "
                            "made. Resume it with the avdit version that made it, or choose a new out=")


def trim_metrics(path: Path, step: int) -> None:
    """Rewrite ``path`` (metrics.jsonl) atomically with only its complete lines of steps <= ``step``, where training
    goes on, each step once: a killed run can leave half a line, and the steps it logged after its last checkpoint
    are trained (and logged) again."""
    if not path.exists():
        return
    *lines, _unfinished = path.read_text().split("\n")  # the text after the last newline is never a whole line
    kept, last = [], 0
    for line in lines:
        try:
            logged = json.loads(line).get("step")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(logged, int) and last < logged <= step:
            kept.append(line + "\n")
            last = logged
    with atomic_path(path, ".jsonl") as tmp, open(tmp, "w") as f:
        f.writelines(kept)


def _model_config(config: TrainConfig, layout: ClipLayout, **from_latents: int) -> AVDiTConfig:
    """The run's network: its preset and --model overrides on the data's layout (latent channels when known)."""
    return get_preset(config.preset, layout=layout, self_condition=config.self_condition_rate > 0,
                      prediction=config.prediction, **parse_model_overrides(config.model), **from_latents)


def _noise_levels(config: TrainConfig, layout: ClipLayout) -> NoiseLevelSampler:
    """The run's noise-level mixture, moving to --noise-levels-final over the run when one is given."""
    return parse_noise_level_curriculum(config.noise_levels, config.noise_levels_final or None, layout.num_segments)


def _check_settings(config: TrainConfig) -> None:
    """Build the network's config and the noise levels on the data's layout (a shard folder's index, else the
    codecs'), so a bad --preset, --model or --noise-levels fails before any data is encoded or config.json written."""
    index = Path(config.data) / SHARD_INDEX
    layout = (ClipLayout.from_dict(json.loads(index.read_text())["layout"])
              if config.data != "bouncing-tones" and index.is_file() else load_codecs(codecs_folder(config)).layout)
    _model_config(config, layout)
    if not config.student_steps:
        _noise_levels(config, layout)


def initial_weights(folder: str | Path, built: AVDiTConfig, index: dict) -> dict:
    """The weights of checkpoint ``folder`` (``--init``) for a run of network ``built`` on latents ``index``:
    a clear error naming what differs when the network, its clip layout or the latents' codecs are not the same."""
    from avdit.codecs.digest import codec_digest_matches

    model, info = AVDiT.from_pretrained(folder), AVDiT.load_info(folder)
    details = differences(model.config.to_dict(), built.to_dict(), ignore=("grad_checkpointing", "layout"))
    if model.config.layout != built.layout:
        details = ", ".join(filter(None, [f"layout: {model.config.layout} there, {built.layout} now", details]))
    if details:
        raise TrainingError(f"init={folder} is another network or geometry ({details}); start from a checkpoint of "
                            "this preset and model= at this data's geometry, or train without init=")
    recorded = info.get("codec_digest")
    if recorded and recorded != index["codec_digest"] and not codec_digest_matches(recorded, index["codecs"]):
        raise TrainingError(f"init={folder} was trained on latents of other codecs (digest {recorded}) than "
                            f"{index['codecs']} (digest {index['codec_digest']}); encode the data with its codecs")
    return {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def build_model(config: TrainConfig, latents: LatentShards, layout) -> AVDiT:
    return AVDiT(_model_config(config, layout, video_channels=latents.video_shape[0],
                               audio_channels=latents.audio_shape[0]))


class MonlBatches:
    """MoNL training's batches: clips of the data, each cell at a level drawn from the run's mixture (its
    strategies name the loss per strategy in the logs)."""

    def __init__(self, config: TrainConfig, latents: LatentShards, layout: ClipLayout):
        self.config, self.latents, self.levels = config, latents, _noise_levels(config, layout)
        self.strategies = self.levels.strategies

    def draw(self, step: int) -> Batch:
        return draw_batch(self.config, self.latents, self.levels, step)


def batch_source(config: TrainConfig, latents: LatentShards, layout: ClipLayout, index: dict):
    """What each step trains on: MoNL batches, or a distillation's teacher pairs (``config.student_steps``) in the
    shard folder of ``index``."""
    if config.student_steps:
        from avdit.train.pairs import PairBatches

        return PairBatches(config, latents, index)
    return MonlBatches(config, latents, layout)


def draw_batch(config: TrainConfig, latents: LatentShards, levels: NoiseLevelSampler, step: int) -> Batch:
    g = step_generator(config.seed, step)
    idx = draw_indices(len(latents), config.batch_size, g)  # (B,) global batch
    t, strategy = levels(config.batch_size, g, progress=step / config.steps)  # (B, M, N), (B,)
    x0 = latents.take(idx)  # read from the shards
    noise = x0.map(lambda p: torch.randn(p.shape, generator=g))
    self_condition = (torch.rand(config.batch_size, generator=g) < config.self_condition_rate
                      if config.self_condition_rate > 0 else None)
    return Batch(x0, noise, t, strategy, self_condition)


@dataclass
class Trainee:
    """The network being trained and what goes with it on this rank."""

    model: AVDiT  # the plain module (FSDP2 shards it in place)
    ema: AVDiT
    net: torch.nn.Module  # what the forward pass calls: the model, compiled and/or wrapped by DDP
    optimizer: torch.optim.Optimizer
    sharded: bool  # FSDP2


class MetricsWindow:
    """Running sums between two log lines: mean loss, loss per MoNL strategy and throughput."""

    def __init__(self, strategies: tuple[str, ...]):
        self.names = strategies
        self.loss, self.steps, self.start = 0.0, 0, time.perf_counter()
        self.per_strategy = torch.zeros(len(strategies), 2)  # (sum of losses, count) per strategy

    def add(self, loss: float, per_strategy: torch.Tensor) -> None:
        self.loss += loss
        self.steps += 1
        self.per_strategy += per_strategy

    def figures(self, step: int, batch_size: int, lr: float, grad_norm: float) -> dict:
        elapsed = time.perf_counter() - self.start
        sums, counts = self.per_strategy.unbind(1)
        return {"step": step, "loss": self.loss / self.steps, "lr": lr, "grad_norm": grad_norm,
                "samples_per_s": self.steps * batch_size / elapsed, "seconds": elapsed,
                **{f"loss/{n}": (s / c).item() for n, s, c in zip(self.names, sums, counts) if c > 0}}


def train(config: TrainConfig, run_dir: str | Path, progress: bool = True, device: str | None = None,
          keep_group: bool = False) -> dict:
    """Train (or resume) in ``run_dir``; returns the last logged figures. ``keep_group``: leave torchrun's process
    group running for a stage that follows (a group started again in the same process may fail to connect)."""
    d = distributed.init(device)
    run_dir = Path(run_dir)
    _open_run_dir(config, run_dir, d)
    latents, layout, index = training_latents(config, run_dir, d)
    torch.manual_seed(config.seed)  # the initial weights
    trainee, step = _build_trainee(config, run_dir, d, build_model(config, latents, layout), index)
    source = batch_source(config, latents, layout, index)
    weighting = parse_loss_weighting(config.loss_weighting)
    writer = _tensorboard(run_dir) if d.main else None
    info = {"codecs": str(codecs_folder(config, index).resolve()), "codec_digest": index["codec_digest"],
            "train": config.to_dict()}
    bar = tqdm(total=config.steps, initial=step, desc="train", disable=not (progress and d.main), unit="step")
    last: dict = {}
    window = MetricsWindow(source.strategies)
    trainee.model.train()
    while step < config.steps:
        lr = learning_rate(step, config)
        for group in trainee.optimizer.param_groups:
            group["lr"] = lr
        batch = source.draw(step)
        step_loss, per_strategy = _accumulate_gradients(config, d, trainee, batch, layout, weighting,
                                                        len(source.strategies))
        if not torch.isfinite(step_loss):
            raise TrainingError(f"the loss became {step_loss.item()} at step {step}; stopped without saving, the "
                                f"last good checkpoint in {run_dir} is kept (lower lr= or check the data)")
        grad_norm = _optimizer_step(config, trainee)
        step += 1
        update_ema(trainee.ema, trainee.model, min(config.ema_decay, (1 + step) / (10 + step)))
        window.add(step_loss.item(), per_strategy.cpu())
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            last = window.figures(step, config.batch_size, lr, grad_norm)
            bar.set_postfix(loss=f"{last['loss']:.4f}", samples_s=f"{last['samples_per_s']:.0f}")
            _log(run_dir, last, writer, d)
            window = MetricsWindow(source.strategies)
        _save(config, run_dir, d, trainee, step, info)
    bar.close()
    if writer is not None:
        writer.close()
    # Drop the DDP wrapper while the process group is still registered: its Reducer then does not hold the group's
    # last reference, so the group is destroyed by destroy_process_group (which releases the GIL), not by the
    # Reducer's dealloc, which holds the GIL while joining gloo threads that may need it (a deadlock seen under load).
    trainee = None
    gc.collect()
    distributed.barrier(d)
    if not keep_group:
        distributed.shutdown(d)
    return last


def _open_run_dir(config: TrainConfig, run_dir: Path, d: distributed.Dist) -> None:
    """Check the settings, refuse a run folder of other settings, write config.json (the main rank)."""
    _check_settings(config)
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        check_same_settings(run_dir / "config.json", config.to_dict(), free=TrainConfig.RESUMABLE,
                            error=TrainingError)
        clean_stale_temporaries(run_dir)
        write_json(run_dir / "config.json", config.to_dict())
    distributed.barrier(d)
    check_batch_split(config, d)


def check_batch_split(config: TrainConfig, d: distributed.Dist) -> None:
    """The global batch must split evenly over the ranks and the accumulation steps."""
    if config.batch_size % (d.world * config.accumulation):
        raise ValueError(f"batch_size={config.batch_size} must be divisible by ranks x accumulation "
                         f"({d.world} x {config.accumulation})")


def _build_trainee(config: TrainConfig, run_dir: Path, d: distributed.Dist, model: AVDiT,
                   index: dict) -> tuple[Trainee, int]:
    """The model, its EMA and optimizer, restored from the run's last checkpoint (or --init), sharded (FSDP2) or
    wrapped (DDP) over the ranks; and the step to go on from."""
    model = model.to(d.device)
    if config.lora:  # adapters on init's weights, which stay frozen (a resumed run's state has both)
        model.load_state_dict(initial_weights(config.init, model.config, index))
        lora.add_adapters(model, config.lora, config.lora_targets)
    ema = copy.deepcopy(model).requires_grad_(False)
    step = 0
    state = load_state(run_dir)
    if state is not None:  # full state dicts, loaded before any sharding
        _check_network(run_dir, model.config)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        step = state["step"]
        if d.main:
            print(f"avdit train: resuming {run_dir} from step {step} of {config.steps}", flush=True)
    elif config.init and not config.lora:
        initial = initial_weights(config.init, model.config, index)
        model.load_state_dict(initial)
        ema.load_state_dict(initial)
    if d.main:
        trim_metrics(run_dir / METRICS, step)
    sharded = bool(config.fsdp and d.group)
    if sharded:
        shard(model, d)
        shard(ema, d)
    optimizer = make_optimizer(model, config, sharded)
    if state is not None:
        load_optimizer_state(model, optimizer, state["optimizer"], sharded)
    net = torch.compile(model) if config.compile else model
    if d.group and not sharded:
        net = DistributedDataParallel(net, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    return Trainee(model, ema, net, optimizer, sharded), step


def make_optimizer(model: torch.nn.Module, config: TrainConfig, sharded: bool = False) -> torch.optim.AdamW:
    """AdamW over the model's parameters; one fused kernel per step (CPU and GPU), several times faster than the
    per-tensor-list implementation on a bt-small step here; the list one where parameters are FSDP2 shards."""
    trained = [p for p in model.parameters() if p.requires_grad]  # all but a LoRA run's frozen base
    return torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay,
                             fused=not sharded)


def _accumulate_gradients(config: TrainConfig, d: distributed.Dist, trainee: Trainee, batch: Batch,
                          layout: ClipLayout, weighting, num_strategies: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of this rank's slice of the batch, in ``config.accumulation`` micro-batches, gradients synchronised
    on the last; returns the step's loss and its (sum, count) per strategy, both over all ranks."""
    per_rank = config.batch_size // d.world
    micro = per_rank // config.accumulation
    autocast = (torch.autocast(d.device.type, dtype=torch.bfloat16) if config.precision == "bf16"
                else nullcontext())
    step_loss = torch.zeros((), device=d.device)
    per_strategy = torch.zeros(num_strategies, 2, device=d.device)  # (sum of losses, count)
    for a in range(config.accumulation):
        part = slice(d.rank * per_rank + a * micro, d.rank * per_rank + (a + 1) * micro)
        x0 = batch.x0.map(lambda p: p[part].to(d.device))
        noise = batch.noise.map(lambda p: p[part].to(d.device))
        t = batch.t[part].to(d.device)
        last_micro = a == config.accumulation - 1
        if trainee.sharded:
            trainee.model.set_requires_gradient_sync(last_micro)
        sync = nullcontext() if last_micro or not d.group or trainee.sharded else trainee.net.no_sync()
        with sync:
            with autocast:
                per_element = diffusion_loss(
                    trainee.net, x0, t, layout, noise=noise,
                    self_condition=None if batch.self_condition is None else batch.self_condition[part],
                    self_condition_rate=config.self_condition_rate, prediction=trainee.model.config.prediction)
            per_example = reduce_loss(per_element, t, layout, weighting)  # (micro,)
            (per_example.mean() / config.accumulation).backward()
        step_loss += per_example.detach().mean() / config.accumulation
        ids = batch.strategy[part].to(d.device)
        per_strategy.index_add_(0, ids, torch.stack([per_example.detach(), torch.ones_like(per_example)], 1))
    return distributed.all_mean(d, step_loss), distributed.all_mean(d, per_strategy) * d.world


def _optimizer_step(config: TrainConfig, trainee: Trainee) -> float:
    """Clip the gradient norm, step, clear the gradients; returns the norm before clipping."""
    grad_norm = torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), config.grad_clip)
    grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm  # FSDP: a DTensor
    trainee.optimizer.step()
    trainee.optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)


def _log(run_dir: Path, figures: dict, writer, d: distributed.Dist) -> None:
    """One line of metrics.jsonl and TensorBoard scalars (the main rank)."""
    if not d.main:
        return
    with open(run_dir / METRICS, "a") as log:
        log.write(json.dumps(figures) + "\n")
    if writer is not None:
        for key, value in figures.items():
            if key != "step":
                writer.add_scalar(key if "/" in key else f"train/{key}", value, figures["step"])


def _save(config: TrainConfig, run_dir: Path, d: distributed.Dist, trainee: Trainee, step: int, info: dict) -> None:
    """The resume state and EMA snapshot every --checkpoint-every steps, sample clips every --sample-every, and
    both at the last step; every rank takes part in gathering sharded weights."""
    checkpoint = step % config.checkpoint_every == 0 or step == config.steps
    sample = config.sample_every and (step % config.sample_every == 0 or step == config.steps)
    if not (checkpoint or sample):
        return
    ema_state = full_state_dict(trainee.ema, trainee.sharded)
    if checkpoint:
        model_state = full_state_dict(trainee.model, trainee.sharded)
        optimizer_state = full_optimizer_state(trainee.model, trainee.optimizer, trainee.sharded)
        if d.main:
            save_state(run_dir, model_state, ema_state, optimizer_state, step, config.to_dict())
            publish(config, run_dir, trainee.ema, ema_state, {**info, "step": step})
    if d.main and sample:
        from avdit.train.samples import write_samples

        plain = AVDiT(trainee.model.config)  # an unsharded copy for sampling on this rank alone
        if config.lora:
            lora.add_adapters(plain, config.lora, config.lora_targets)
        plain.load_state_dict(ema_state)
        plain = lora.merge_adapters(plain) if config.lora else plain
        write_samples(run_dir, plain.to(d.device), config, step)


def publish(config: TrainConfig, run_dir: Path, ema: AVDiT, state: dict, info: dict) -> None:
    """The run folder as a checkpoint of the EMA weights: the whole model, or for a LoRA run its adapters alone with
    the base they go on (``avdit.model.lora``)."""
    if not config.lora:
        ema.save_pretrained(run_dir, info, state_dict=state)
        return
    settings = {"rank": config.lora, "alpha": config.lora, "targets": config.lora_targets}
    lora.write_adapters(run_dir, state, settings, config.init, {"model": ema.config.to_dict(), **info})


def _tensorboard(run_dir: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir / "tb"))
