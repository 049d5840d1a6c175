import pytest
import torch

from avdit.tasks import TASK_PRESETS, TaskError, get_task, parse_grid


def given_cells(task):
    return {(m, n) for m in range(2) for n in range(task.num_segments) if task.given[m, n]}


def test_presets_follow_the_bouncing_tones_table():
    expected = {
        "joint": set(),
        "a2v": {(1, n) for n in range(5)},
        "v2a": {(0, n) for n in range(5)},
        "av_continue": {(m, n) for m in range(2) for n in (0, 1)},
        "av_inpaint": {(m, n) for m in range(2) for n in (0, 4)},
        "av_continue_2s": {(0, 0), (1, 0)},
    }
    assert set(TASK_PRESETS) == set(expected)
    for name, cells in expected.items():
        assert given_cells(get_task(name, 5)) == cells, name


def test_grid_parser_and_its_round_trip():
    task = parse_grid("video:0-1,audio:0-1", 5)
    assert given_cells(task) == given_cells(get_task("av_continue", 5))
    assert given_cells(parse_grid("audio:all", 5)) == given_cells(get_task("a2v", 5))
    assert given_cells(parse_grid("video:0+4, audio:4", 5)) == {(0, 0), (0, 4), (1, 4)}
    for name in TASK_PRESETS:
        preset = get_task(name, 5)
        if preset.given.any():
            assert torch.equal(get_task(preset.spec(), 5).given, preset.given)
    assert get_task("video:0,audio:1", 5).generated_modalities() == [0, 1]
    assert get_task("v2a", 5).generated_modalities() == [1]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty task grid"),
        ("video", "unknown task 'video'.*or a grid like"),
        ("video:0,audio", "'audio' has no ':'"),
        ("video:x", "malformed segments 'x'"),
        ("depth:0", "unknown modality 'depth'"),
        ("video:0-5", "segment 5 out of range.*0-4"),
        ("video:3-1", "start > end"),
        ("video:all,audio:all", "gives every cell"),
        ("a2b", "unknown task 'a2b'"),
    ],
)
def test_bad_task_specs_say_what_is_wrong(spec, message):
    with pytest.raises(TaskError, match=message):
        get_task(spec, 5)


def test_task_prints_as_a_grid():
    text = str(get_task("av_inpaint", 5))
    assert "video G . . . G" in text and "audio G . . . G" in text
