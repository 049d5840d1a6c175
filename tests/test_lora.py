"""LoRA fine-tuning (PEFT): adapters on a checkpoint's frozen weights, saved alone, loaded wherever a checkpoint is,
merged by export, resumed exactly."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from avdit.cli import main
from avdit.diffusion import SamplingConfig
from avdit.layout import BOUNCING_TONES
from avdit.model import AVDiT, get_preset
from avdit.model.lora import add_adapters, merge_adapters
from avdit.pipeline import Pipeline
from tests.conftest import randomize

pytest.importorskip("peft")
FAST = SamplingConfig(steps=2)


def lora_train(checkpoint, out, steps: int, *extra: str) -> int:
    return main(["train", "--preset", "bt-tiny", "--codecs", str(checkpoint / "codecs"), "--num-clips", "4",
                 "--batch-size", "2", "--precision", "fp32", "--lr", "0.01", "--warmup", "0", "--checkpoint-every", "1",
                 "--init", str(checkpoint / "run"), "--lora", "4", "--steps", str(steps), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def lora_run(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "run"
    assert lora_train(checkpoint, out, 3, "--lora-targets", "attention,mlp,adaln") == 0  # adaLN: the tiny base's
    return out  # blocks are still gated near zero after its two steps, so only adapted gates show a change


def test_adapters_start_as_the_identity_and_merge_to_the_same_function():
    model = randomize(AVDiT(get_preset("bt-tiny", layout=BOUNCING_TONES)), std=0.2).eval().double()
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, *model.video_shape, generator=g, dtype=torch.float64),
         torch.randn(2, *model.audio_shape, generator=g, dtype=torch.float64))
    t = torch.randint(0, 1000, (2, 2, 5))
    from avdit.latents import AV

    before = model(AV(*x), t)
    add_adapters(model, 4, "attention,mlp")
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n in trained)  # only the adapters train
    assert {n.split(".")[2] for n in trained} == {"qkv", "proj", "mlp"}
    after = model(AV(*x), t)
    assert torch.equal(before.video, after.video)  # B = 0: the model is unchanged until trained
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.3)
    adapted = model(AV(*x), t)
    merged = merge_adapters(model)
    assert not any("lora" in n for n in merged.state_dict())  # a plain AVDiT's names again
    out = merged(AV(*x), t)
    scale = adapted.video.abs().max()
    # float64: W + BA against W x + B A x differ by rounding alone, which this random network amplifies about 100x
    # (measured in float32: 1.5e-5 of the scale, 125 float32 eps); 1e-12 is 4500 float64 eps
    assert (out.video - adapted.video).abs().max() < 1e-12 * scale
    assert (out.video - before.video).abs().max() > 0.01 * scale  # and the adapters did change the function
    with pytest.raises(ValueError, match="lora_targets='attn'"):
        add_adapters(AVDiT(get_preset("bt-tiny", layout=BOUNCING_TONES)), 4, "attn")


def test_a_lora_run_saves_its_adapters_alone_and_generates_from_its_folder(checkpoint, lora_run, tmp_path):
    assert not (lora_run / "model.safetensors").exists()
    adapters = lora_run / "adapter.safetensors"
    base = checkpoint / "run" / "model.safetensors"
    assert adapters.stat().st_size < 0.2 * base.stat().st_size
    assert all("lora_" in k for k in load_file(str(adapters)))
    info = json.loads((lora_run / "adapter.json").read_text())
    assert info["lora"] == {"rank": 4, "alpha": 4, "targets": "attention,mlp,adaln"} and info["step"] == 3
    lora_pipe, base_pipe = Pipeline.from_pretrained(lora_run), Pipeline.from_pretrained(checkpoint / "run")
    tuned, plain = (p("joint", seed=0, sampling=FAST) for p in (lora_pipe, base_pipe))
    assert not torch.equal(tuned.latents.video, plain.latents.video)  # the adapters trained
    assert main(["generate", "--checkpoint", str(lora_run), "--steps", "1", "--out", str(tmp_path / "gen")]) == 0
    assert (tmp_path / "gen" / "sample_000.mp4").exists()
    # export --merge: a plain checkpoint that generates what the adapters do
    assert main(["export", str(lora_run), str(tmp_path / "plain")]) == 2  # not without --merge
    assert main(["export", str(lora_run), str(tmp_path / "merged"), "--merge", "--fp32"]) == 0
    assert not (tmp_path / "merged" / "adapter.json").exists()
    merged = Pipeline.from_pretrained(tmp_path / "merged")("joint", seed=0, sampling=FAST)
    assert torch.equal(merged.latents.video, tuned.latents.video)  # the same merge, written in fp32


def test_an_adapter_checks_its_base(checkpoint, lora_run, tmp_path):
    moved = tmp_path / "lora"
    shutil.copytree(lora_run, moved)
    info = json.loads((moved / "adapter.json").read_text())
    (moved / "adapter.json").write_text(json.dumps({**info, "base_digest": "0" * 16}))
    with pytest.raises(ValueError, match="other weights than those in"):
        Pipeline.from_pretrained(moved)
    (moved / "adapter.json").write_text(json.dumps({**info, "base": str(tmp_path / "gone")}))
    with pytest.raises(ValueError, match="not there now"):
        AVDiT.from_pretrained(moved)
    assert lora_train(checkpoint, tmp_path / "no-init", 1, "--init", "") == 2  # LoRA needs a checkpoint


def test_a_lora_run_resumes_exactly(checkpoint, lora_run, tmp_path, monkeypatch):
    """Killed after its checkpoint at step 2 of 3, then run again: the adapters of the uninterrupted run, exactly."""
    import avdit.train.loop as loop_module

    real, calls = loop_module.update_ema, {"n": 0}

    def killed_at_the_third_step(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        real(*args)

    out, targets = tmp_path / "resumed", ("--lora-targets", "attention,mlp,adaln")
    monkeypatch.setattr(loop_module, "update_ema", killed_at_the_third_step)
    with pytest.raises(KeyboardInterrupt):
        lora_train(checkpoint, out, 3, *targets)
    assert json.loads((out / "adapter.json").read_text())["step"] == 2
    monkeypatch.setattr(loop_module, "update_ema", real)
    assert lora_train(checkpoint, out, 3, *targets) == 0
    straight, resumed = (load_file(str(d / "adapter.safetensors")) for d in (lora_run, out))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
