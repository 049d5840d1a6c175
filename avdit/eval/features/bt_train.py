"""``avdit train-features``: train the Bouncing Tones feature nets on generated clips (minutes on a CPU).

Clips are made once (train split), then every step draws a batch with light noise and, for half of it,
random segments blanked as ``blank_given`` does at evaluation. Held-out test-split accuracy is written with
the weights so a user can see what the features know.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from avdit.utils.atomic import atomic_path, write_json
from avdit.data import bouncing_tones as bt
from avdit.eval.features.bt_nets import IMPACT_BINS, BTAudioNet, BTVideoNet, Targets, blank_given
from avdit.layout import AUDIO, BOUNCING_TONES, VIDEO, ClipLayout
from avdit.utils.lr import warmup_cosine

WARMUP = 100  # linear warm-up steps before the cosine decay (avdit.utils.lr, as every avdit trainer)


def make_clips(count: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray, list[bt.BTParams]]:
    clips = [bt.make_clip(seed, i, split) for i in tqdm(range(count), desc=f"{split} clips", leave=False)]
    return np.stack([c.video for c in clips]), np.stack([c.audio for c in clips]), [c.params for c in clips]


def random_given(rng: np.random.Generator, batch: int, segments: int) -> np.ndarray:
    """(B, 2, N) bool: half the clips have nothing blanked, the rest a random proper subset per modality."""
    given = rng.random((batch, 2, segments)) < 0.4
    given[rng.random(batch) < 0.5] = False
    given[given.all(axis=2)] = False  # never blank a whole modality
    return given


def visible_bins(given: np.ndarray, modality: int, layout: ClipLayout) -> torch.Tensor:
    """(B, 17) 1 where an impact bin (one frame period) lies in a segment that is not blanked."""
    bins = np.ones((given.shape[0], IMPACT_BINS), dtype=np.float32)
    for n in range(given.shape[2]):
        bins[given[:, modality, n], layout.segment_frames(n)] = 0.0
    return torch.from_numpy(bins)


def augment(video: np.ndarray, audio: np.ndarray, given: np.ndarray, generator: torch.Generator):
    """(B, ...) numpy -> tensors with noise of a random strength on both modalities, then the blanking."""
    b = video.shape[0]
    video_sd = 4 * torch.rand(b, 1, 1, 1, 1, generator=generator)
    audio_sd = 0.01 * torch.rand(b, 1, generator=generator)
    v = torch.from_numpy(video).float()
    v = (v + video_sd * torch.randn(*v.shape[:-1], 1, generator=generator)).round()  # grey noise.clamp(0, 255).to(torch.uint8)
    a = torch.from_numpy(audio) + audio_sd * torch.randn(audio.shape, generator=generator)
    for i in range(b):
        v[i:i + 1], a[i:i + 1] = blank_given(v[i:i + 1], a[i:i + 1], given[i], BOUNCING_TONES)
    return v, a


@torch.no_grad()
def held_out_scores(nets: dict[int, torch.nn.Module], video: np.ndarray, audio: np.ndarray,
                    params: list[bt.BTParams]) -> dict[str, float]:
    """Class accuracy and impact-bin accuracy of each net on clean held-out clips."""
    targets = Targets.of(params)
    scores = {}
    for modality, net in nets.items():
        net.eval()
        data = torch.from_numpy(video) if modality == VIDEO else torch.from_numpy(audio)
        out = torch.cat([net.heads.linear(net(data[i:i + 64])) for i in range(0, len(data), 64)])
        name = "video" if modality == VIDEO else "audio"
        scores[f"{name}_class_accuracy"] = float((out[:, :bt.NUM_CLASSES].argmax(1) == targets.k).float().mean())
        impacts = out[:, bt.NUM_CLASSES:bt.NUM_CLASSES + IMPACT_BINS] > 0
        scores[f"{name}_impact_bin_accuracy"] = float((impacts == targets.impacts.bool()).float().mean())
        net.train()
    return scores


def train_features(out: str | Path, steps: int = 800, batch_size: int = 32, clips: int = 4096, lr: float = 2e-3,
                   seed: int = 0, held_out_clips: int = 512, progress: bool = True) -> dict:
    """Train both nets; write OUT/bt_video.safetensors, OUT/bt_audio.safetensors and OUT/bt_features.json."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; give a folder for the feature nets")
    if steps < 1 or batch_size < 2 or clips < batch_size:
        raise ValueError(f"need steps >= 1, batch size >= 2 and clips >= batch size; got {steps}, {batch_size}, {clips}")
    if (out / "bt_features.json").exists() and progress:
        print(f"avdit train-features: {out} holds feature nets; training new ones from the start (this command does "
              "not resume), they replace those when done", flush=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    layout = BOUNCING_TONES
    start = time.perf_counter()
    video, audio, params = make_clips(clips, seed, "train")
    test_video, test_audio, test_params = make_clips(held_out_clips, seed, "test")
    nets = {VIDEO: BTVideoNet(), AUDIO: BTAudioNet()}
    optimizers = {m: torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4) for m, net in nets.items()}
    bar = tqdm(range(steps), desc="train-features", disable=not progress)
    for step in bar:
        rate = warmup_cosine(step, lr, WARMUP, steps)
        index = rng.choice(clips, batch_size, replace=False)
        given = random_given(rng, batch_size, layout.num_segments)
        v, a = augment(video[index], audio[index], given, generator)
        targets = Targets.of([params[i] for i in index])
        shown = {}
        for modality, net in nets.items():
            for group in optimizers[modality].param_groups:
                group["lr"] = rate
            data = v if modality == VIDEO else a
            losses = net.heads.loss(net(data), targets, visible_bins(given, modality, layout))
            total = sum(value for key, value in losses.items() if key != "class_accuracy")
            optimizers[modality].zero_grad(set_to_none=True)
            total.backward()
            optimizers[modality].step()
            shown["v" if modality == VIDEO else "a"] = f"{total.item():.3f}"
        bar.set_postfix(shown)
    scores = held_out_scores(nets, test_video, test_audio, test_params)
    out.mkdir(parents=True, exist_ok=True)
    for modality, name in ((VIDEO, "bt_video"), (AUDIO, "bt_audio")):
        state = {k: v.contiguous() for k, v in nets[modality].state_dict().items()}
        with atomic_path(out / f"{name}.safetensors", ".safetensors") as tmp:
            save_file(state, tmp)
    info = {"steps": steps, "batch_size": batch_size, "clips": clips, "lr": lr, "seed": seed,
            "seconds": round(time.perf_counter() - start, 1), "held_out": scores,
            "command": f"avdit train-features --out DIR --steps {steps} --batch-size {batch_size} --clips {clips} "
                       f"--seed {seed}"}
    write_json(out / "bt_features.json", info)
    return info
