"""AVDiT.save_pretrained / from_pretrained: the checkpoint format (model.json + model.safetensors)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from avdit.model import AVDiT, AVDiTConfig, get_preset
from avdit.pipeline import bundled_model_dir
from tests.conftest import randomize


def test_the_bundled_model_loads_its_stored_weights_and_config():
    folder = bundled_model_dir()
    model = AVDiT.from_pretrained(folder)
    stored, info = load_file(folder / "model.safetensors"), json.loads((folder / "model.json").read_text())
    assert model.config == AVDiTConfig.from_dict(info["model"]) and AVDiT.load_info(folder) == info
    state = model.state_dict()
    assert state.keys() == stored.keys()
    for key, value in stored.items():
        assert value.dtype == torch.float16 and state[key].dtype == torch.float32
        assert torch.equal(state[key], value.float()), key
    assert not model.training


def test_save_and_load_give_the_same_model_and_info(tmp_path):
    model = randomize(AVDiT(get_preset("bt-tiny")))
    model.save_pretrained(tmp_path, {"step": 7, "model": "ignored: the model's own config is written"})
    loaded = AVDiT.from_pretrained(tmp_path)
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert AVDiT.load_info(tmp_path) == {"model": model.config.to_dict(), "step": 7}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]  # no temporaries


def test_half_stores_fp16_and_a_given_state_dict_replaces_the_modules(tmp_path):
    model = randomize(AVDiT(get_preset("bt-tiny")))
    other = {k: v + 1 for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path, half=True, state_dict=other)
    stored = load_file(tmp_path / "model.safetensors")
    assert {v.dtype for v in stored.values()} == {torch.float16}
    loaded = AVDiT.from_pretrained(tmp_path).state_dict()
    for key, value in other.items():
        assert torch.equal(loaded[key], value.half().float()), key


@pytest.mark.parametrize("missing", ["model.json", "model.safetensors"])
def test_a_missing_file_is_named(tmp_path, missing):
    AVDiT(get_preset("bt-tiny")).save_pretrained(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / missing} not found"):
        AVDiT.from_pretrained(tmp_path)
