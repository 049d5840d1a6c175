import json
import math

import pytest

from avdit.cli import main
from avdit.diffusion import SamplingConfig
from avdit.eval.evaluate import EvalSettings, evaluate, parse_tasks
from avdit.tasks import TaskError


@pytest.fixture(scope="module")
def results(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    settings = EvalSettings(tasks=("a2v", "av_continue"), num=4, sampling=SamplingConfig(sampler="ddim", steps=2,
                                                                                     order="together"), batch_size=2,
                            checkpoint=str(checkpoint / "run"))
    return out, settings, evaluate(settings, out, progress=False)


def test_the_table_has_a_row_per_task_and_the_right_columns(results):
    out, _, res = results
    rows = res["rows"]
    assert list(rows) == ["reconstruction", "a2v", "av_continue"]
    assert "BT-FAD" not in rows["a2v"]  # a2v gives all the audio: nothing generated to score
    assert {"BT-FVD", "BT-KVD", "AV-align-robust", "AV-align", "identity_agreement", "class_kept",
            "sync_error_ms"} <= set(rows["a2v"])
    assert {"BT-FVD", "BT-FAD"} <= set(rows["reconstruction"]) and "class_kept" not in rows["reconstruction"]
    assert 0 <= rows["reconstruction"]["class_mix"] <= 1 and "class_mix" not in rows["a2v"]  # where nothing is given
    for row in rows.values():
        assert all(isinstance(v, float) for v in row.values())
        assert row["BT-FVD"] >= 0 and -1 <= row["AV-align-robust"] <= 1 and row["AV-align"] >= 0  # paper's: <= |A|/|V|
    table = (out / "results.md").read_text()
    assert table.splitlines()[0].startswith("| task | BT-FVD")
    assert "AV-align robust ↑ | AV-align (paper) ↑" in table.splitlines()[0]
    assert set(res["ground_truth"]) == {"AV-align-robust", "AV-align"}
    assert "| a2v |" in table and "—" in table
    assert json.loads((out / "results.json").read_text())["rows"] == rows


def test_a_rerun_gives_the_same_numbers(results, tmp_path):
    _, settings, first = results
    again = evaluate(settings, tmp_path, progress=False)
    for name, row in first["rows"].items():
        for key, value in row.items():
            assert value == again["rows"][name][key] or (math.isnan(value) and math.isnan(again["rows"][name][key]))


def test_task_lists_and_bad_input(checkpoint, tmp_path, capsys):
    assert parse_tasks("all") == ("joint", "a2v", "v2a", "av_continue", "av_inpaint")
    assert parse_tasks("a2v, v2a") == ("a2v", "v2a")
    with pytest.raises(TaskError):
        parse_tasks("a2x")
    run = str(checkpoint / "run")
    assert main(["evaluate", "--checkpoint", run, "--num", "1", "--out", str(tmp_path / "e")]) == 2
    assert "--num 1: give at least 2" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["evaluate", "--checkpoint", run, "--num", "2", "--out", str(tmp_path / "file")]) == 2
    assert main(["evaluate", "--checkpoint", run, "--i3d", str(tmp_path / "none.pt"), "--num", "2",
                 "--out", str(tmp_path / "e")]) == 2
    assert "pytorch-i3d" in capsys.readouterr().err


def interrupted_at_the_second_task(settings: EvalSettings, out, monkeypatch) -> list[str]:
    """Run an evaluation killed as its second task starts (the first's row is saved); return the list the names of
    the tasks generated from then on go to."""
    import avdit.eval.evaluate as evaluate_module

    real_generate, calls, killing = evaluate_module.generate, [], [True]

    def generate(pipe, task, *args):
        calls.append(task.name)
        if killing[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return real_generate(pipe, task, *args)

    monkeypatch.setattr(evaluate_module, "generate", generate)
    with pytest.raises(KeyboardInterrupt):
        evaluate(settings, out, progress=False)
    assert set(json.loads((out / "progress.json").read_text())["rows"]) == {"reconstruction", "a2v"}
    calls.clear()
    killing[0] = False
    return calls


def test_an_interrupted_evaluation_resumes_with_the_same_numbers(results, tmp_path, monkeypatch, capsys):
    """A kill after the first task keeps its row; the rerun does only the rest and gives the same table."""
    _, settings, first = results
    calls = interrupted_at_the_second_task(settings, tmp_path, monkeypatch)
    again = evaluate(settings, tmp_path, progress=True)
    assert calls == ["av_continue"] and "resuming" in capsys.readouterr().out
    assert list(again["rows"]) == list(first["rows"]) and not (tmp_path / "progress.json").exists()
    assert again["rows"]["a2v"]["BT-FVD"] == first["rows"]["a2v"]["BT-FVD"]
    assert again["rows"]["av_continue"]["BT-FVD"] == first["rows"]["av_continue"]["BT-FVD"]


def test_an_interrupted_evaluation_starts_over_where_the_weights_changed(results, tmp_path, monkeypatch, capsys):
    """The same settings and checkpoint path with other weights behind them (a run trained further, a new export):
    the finished rows are not reused."""
    import torch

    from avdit.pipeline import Pipeline

    _, settings, _ = results
    calls = interrupted_at_the_second_task(settings, tmp_path, monkeypatch)
    real_load = Pipeline.from_pretrained.__func__

    def trained_further(cls, *args, **kwargs):
        pipe = real_load(cls, *args, **kwargs)
        with torch.no_grad():
            next(pipe.model.parameters()).add_(1e-3)
        return pipe

    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(trained_further))
    evaluate(settings, tmp_path, progress=True)
    assert calls == ["a2v", "av_continue"] and "other weights" in capsys.readouterr().out


def test_the_order_flag_reaches_generation_and_the_notes(checkpoint, tmp_path):
    run = str(checkpoint / "run")
    scores = {}
    for order in ("together", "video-first"):
        out = tmp_path / order
        assert main(["evaluate", "--checkpoint", run, "--tasks", "av_continue", "--num", "2", "--steps", "2",
                     "--order", order, "--no-av-align", "--out", str(out)]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["settings"]["sampling"]["order"] == order
        assert ("video-first, 2 times the steps" in (out / "results.md").read_text()) == (order == "video-first")
        scores[order] = results["rows"]["av_continue"]["BT-FAD"]
    assert scores["together"] != scores["video-first"]  # other audio (sampled second, given the video): it was used


def test_fd_panns_and_the_paired_scores_reach_the_table(checkpoint, tmp_path, monkeypatch):
    """--panns adds FD-PANNs to every row that generates audio; the paired scorers (AV-IB, DeSync: here a stand-in
    network, as their real weights are gigabytes) score every row and the reference clips, and get their columns.
    The Fréchet distance itself (tests/test_metrics.py) is stood in for by the distance of the means: its matrix
    square root of 2048-d covariances takes seconds a row."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from avdit.eval import evaluate as evaluate_module
    from avdit.eval.features import PairedScorer
    from avdit.eval.features.panns import Cnn14
    save_file(Cnn14().state_dict(), tmp_path / "panns.safetensors")
    seen = []

    def brightness_loudness(_net, video, audio, fps, sample_rate):  # (B,) a score of each clip's two modalities
        seen.append((video.shape, audio.shape, fps, sample_rate))
        return video.reshape(len(video), -1).mean(1) / 255 + np.abs(audio).mean(1)

    monkeypatch.setattr(evaluate_module, "frechet_from_stats", lambda a, b: float(np.sum((a.mean - b.mean) ** 2)))
    monkeypatch.setattr(evaluate_module, "load_paired", lambda imagebind, synchformer: [
        PairedScorer("AV-IB", torch.nn.Identity(), brightness_loudness)] if imagebind else [])
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(checkpoint / "run"), "--tasks", "a2v,v2a", "--num", "2", "--steps",
                 "2", "--no-av-align", "--panns", str(tmp_path / "panns.safetensors"), "--imagebind", "stand-in",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert "FD-PANNs" not in rows["a2v"] and rows["v2a"]["FD-PANNs"] >= 0 and rows["reconstruction"]["FD-PANNs"] >= 0
    assert all(0 < row["AV-IB"] < 2 for row in rows.values()) and 0 < results["ground_truth"]["AV-IB"] < 2
    assert len(seen) == 4 and seen[0][2:] == (8, 16000)  # three rows and the references, at the clips' own rates
    table = (out / "results.md").read_text()
    assert "FD-PANNs ↓" in table.splitlines()[0] and "AV-IB ↑" in table.splitlines()[0]
    assert f"Of the reference clips themselves: AV-IB {results['ground_truth']['AV-IB']:.3f}" in table
