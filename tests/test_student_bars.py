"""benchmarks/student_bars.py: a student's evaluation against the teacher's bars (docs/distillation.md)."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "student_bars.py"


@pytest.fixture(scope="module")
def bars():
    spec = importlib.util.spec_from_file_location("student_bars", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(folder: Path, rows: dict, seed: int = 0) -> Path:
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"settings": {"seed": seed, "num": 200, "data": "bouncing-tones"},
                                                     "rows": rows}))
    return folder


TEACHER = {"joint": {"identity_agreement": 0.95, "sync_error_ms": 25.0, "onset_sync_error_ms": 24.0, "onset_f1": 0.79,
                     "class_mix": 0.69, "one_disc": 0.99},
           "a2v": {"identity_agreement": 0.99, "sync_error_ms": 8.0, "onset_sync_error_ms": 8.0, "onset_f1": 0.98,
                   "one_disc": 0.99}}


def test_each_figure_is_kept_within_its_tolerance_and_a_miss_or_a_missing_measure_fails(bars, tmp_path, capsys):
    teacher = results(tmp_path / "t", TEACHER)
    at_the_bars = {"joint": {"identity_agreement": 0.94, "sync_error_ms": 30.0, "onset_sync_error_ms": 29.0,
                             "onset_f1": 0.76, "class_mix": 0.64, "one_disc": 0.98},
                   "a2v": {"identity_agreement": 0.98, "sync_error_ms": 13.0, "onset_sync_error_ms": 13.0,
                           "onset_f1": 0.95, "one_disc": 0.98}}
    assert bars.main([str(results(tmp_path / "ok", at_the_bars)), "--teacher", str(teacher)]) == 0
    assert "0 bar(s) missed" in capsys.readouterr().out
    few_classes = json.loads(json.dumps(at_the_bars))
    few_classes["joint"].update(identity_agreement=1.0, class_mix=0.125)  # one class drawn, colour = pitch perfect
    few_classes["a2v"].update(sync_error_ms=13.5, one_disc=0.975)  # and a second disc in a few more frames
    assert bars.main([str(results(tmp_path / "few", few_classes)), "--teacher", str(teacher)]) == 1
    out = capsys.readouterr().out
    assert "3 bar(s) missed" in out and "| a2v | one disc | 97.5 | 98.0 | MISS |" in out
    assert "| joint | class mix | 0.125 | 0.640 | MISS |" in out
    assert "| a2v | impact→onset ms | 14 | 13 | MISS |" in out and "| joint | colour = pitch | 100.0 | 94.0 | ok |" in out
    older = json.loads(json.dumps(at_the_bars))
    del older["joint"]["class_mix"]  # evaluated before the measure existed
    assert bars.main([str(results(tmp_path / "old", older)), "--teacher", str(teacher)]) == 1
    assert "NOT MEASURED" in capsys.readouterr().out


def test_teacher_results_merge_and_other_clips_are_refused(bars, tmp_path):
    joint_apart = results(tmp_path / "joint", {"joint": TEACHER["joint"]})
    a2v_apart = results(tmp_path / "a2v", {"a2v": TEACHER["a2v"]})
    student = results(tmp_path / "s", TEACHER)
    assert bars.main([str(student), "--teacher", str(joint_apart), str(a2v_apart)]) == 0
    with pytest.raises(SystemExit, match="no 'a2v' row"):
        bars.main([str(student), "--teacher", str(joint_apart)])
    with pytest.raises(SystemExit, match="different clips: seed 1 vs 0"):
        bars.main([str(results(tmp_path / "s1", TEACHER, seed=1)), "--teacher", str(student)])
    with pytest.raises(SystemExit, match="no such results file"):
        bars.main([str(tmp_path / "none"), "--teacher", str(student)])
