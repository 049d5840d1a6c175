import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import tiny_codecs

RUNNER = Path(__file__).parent.parent / "benchmarks" / "table1" / "run.py"


def load_runner():
    spec = importlib.util.spec_from_file_location("table1_run", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_table1_runs_end_to_end_and_resumes_without_redoing(tmp_path):
    runner = load_runner()
    tiny_codecs(0).save(tmp_path / "codecs")
    argv = ["--preset", "bt-tiny", "--steps", "2", "--batch-size", "2", "--num-clips", "4", "--num", "4",
            "--eval-steps", "2", "--codecs", str(tmp_path / "codecs"), "--settings", "MoNL,Vanilla,Task: a2v",
            "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs")]
    assert runner.main(argv) == 0
    page = (tmp_path / "docs" / "table1.md").read_text()
    for setting in ("| MoNL |", "| Vanilla |", "| Task: a2v |", "far ahead of Vanilla", "task-specific"):
        assert setting in page
    data = json.loads((tmp_path / "docs" / "table1.json").read_text())["results"]
    assert list(data["Task: a2v"]["rows"]) == ["reconstruction", "a2v"]
    assert data["Vanilla"]["settings"]["mode"] == "replace"
    assert (tmp_path / "docs" / "table1" / "vanilla_av_continue.mp4").exists()
    assert (tmp_path / "docs" / "table1.svg").read_text().startswith("<svg")
    stamp = (tmp_path / "runs" / "monl" / "eval" / "results.json").stat().st_mtime_ns
    assert runner.main(argv) == 0  # a rerun finds every setting finished
    assert (tmp_path / "runs" / "monl" / "eval" / "results.json").stat().st_mtime_ns == stamp


def test_unknown_settings_are_refused():
    with pytest.raises(SystemExit):
        load_runner().main(["--settings", "MoNL,Nope"])
