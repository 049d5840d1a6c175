"""``avdit tune-decoder``: the video decoder trained on latents the model makes (avdit/train/made_decoder.py)."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from avdit.cli import main
from avdit.codecs.digest import codec_digest
from avdit.codecs.interface import bundled_codecs_dir
from avdit.data import bouncing_tones as bt
from avdit.latents import AV
from avdit.pipeline import Pipeline
from avdit.train.made_decoder import DecoderTuneSettings, decoder_inputs, tune_decoder

TINY = DecoderTuneSettings(clips=8, steps=4, batch_size=4, chunk=8, ddim_steps=2, checkpoint_every=1)


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.from_pretrained(device="cpu")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    tune_decoder(TINY, out, progress=False)
    return out


def test_tuned_folder_changes_the_decoder_alone_and_serves_the_model(straight):
    bundled, tuned = load_file(bundled_codecs_dir() / "video.safetensors"), load_file(straight / "video.safetensors")
    assert bundled.keys() == tuned.keys()
    decoder = [k for k in bundled if k.startswith("net.decoder.")]
    assert decoder and all(torch.equal(bundled[k], tuned[k]) for k in bundled if k not in decoder)
    assert any(not torch.equal(bundled[k], tuned[k]) for k in decoder)
    assert (straight / "audio.safetensors").read_bytes() == (bundled_codecs_dir() / "audio.safetensors").read_bytes()
    assert codec_digest(straight) == codec_digest(bundled_codecs_dir())  # the model's latents stay valid
    records = json.loads((straight / "video.json").read_text())["decoder_tuned"]
    assert [r["codecs"] for r in records] == ["bundled", "bundled"]  # the bundled decoder's own tuning, then this
    assert records[-1]["steps"] == TINY.steps
    Pipeline.from_pretrained(codecs=straight)  # the digest check passes: the folder serves the bundled model


def test_a_resumed_run_equals_an_uninterrupted_one(straight, tmp_path, monkeypatch, capsys):
    """Killed after step 3 (inside the second chunk of made latents), then the same command: bit for bit."""
    import avdit.train.made_decoder as module

    real_lr = module.warmup_cosine

    def killed_after_three(step, *args):
        if step == 3:
            raise KeyboardInterrupt("killed")
        return real_lr(step, *args)

    monkeypatch.setattr(module, "warmup_cosine", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        tune_decoder(TINY, tmp_path, progress=False)
    assert torch.load(tmp_path / "tune_decoder_state.pt", weights_only=True)["step"] == 3
    assert not (tmp_path / "video.safetensors").exists()  # no codec until the run ends
    monkeypatch.setattr(module, "warmup_cosine", real_lr)
    result = tune_decoder(TINY, tmp_path, progress=False)
    assert result["steps_done"] == 4 and "resuming" in capsys.readouterr().out
    resumed, uninterrupted = load_file(tmp_path / "video.safetensors"), load_file(straight / "video.safetensors")
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
    assert tune_decoder(TINY, tmp_path, progress=False)["last_mse"] is None  # a finished run: nothing to train
    with pytest.raises(ValueError, match="other settings"):
        tune_decoder(dataclasses.replace(TINY, lr=1e-3), tmp_path, progress=False)


def test_made_latents_depart_from_the_clip_as_the_starting_level_rises(pipe):
    clips = [bt.make_clip(0, i, "train") for i in range(4)]
    latents = pipe.codecs.encode(torch.stack([torch.from_numpy(c.video) for c in clips]),
                                 torch.stack([torch.from_numpy(c.audio) for c in clips]))

    def error(highest: int, clean: float) -> float:
        settings = dataclasses.replace(TINY, highest=highest, clean=clean)
        made = decoder_inputs(pipe, AV(latents.video, latents.audio), settings, torch.Generator().manual_seed(0))
        assert made.shape == latents.video.shape
        return float((made - latents.video).pow(2).mean().sqrt())

    assert error(500, clean=1.0) == 0.0  # all clean: the clips' own latents
    low, high = error(5, clean=0.0), error(500, clean=0.0)
    assert 0 < low < 0.5 * high  # SDEdit from a low level stays near the clip; from 500 the model redraws it


def test_bad_settings_are_refused_with_what_to_do(tmp_path, capsys):
    assert main(["tune-decoder", "--out", str(tmp_path / "a"), "--highest", "0"]) == 2
    assert "highest must be a level in 1..1000" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch size \\(8\\) must divide the 12 clips made at once"):
        DecoderTuneSettings(batch_size=8, chunk=12)
    with pytest.raises(ValueError, match="holds the model's own codecs"):
        tune_decoder(TINY, bundled_codecs_dir(), progress=False)  # the model would lose the decoder it was made with
    with pytest.raises(FileNotFoundError, match="prepared folder"):
        tune_decoder(dataclasses.replace(TINY, data=str(tmp_path / "none")), tmp_path / "b", progress=False)
