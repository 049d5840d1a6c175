from fractions import Fraction

import pytest
import torch

import dataclasses

from avdit.layout import BOUNCING_TONES, GEOMETRIES, ClipLayout, LayoutError, working_durations


def bt(**changes) -> ClipLayout:
    return dataclasses.replace(BOUNCING_TONES, **changes)


def test_bouncing_tones_layout_matches_the_spec():
    layout = BOUNCING_TONES
    assert layout.duration == Fraction(17, 8)
    assert layout.num_samples == 34000
    assert layout.video_latent_frames == 5 and layout.video_latent_size == (8, 8)
    assert layout.audio_latents == 85 and layout.audio_latent_rate == 40
    assert layout.num_segments == 5
    assert [float(b) for b in layout.segment_bounds] == [0, 0.125, 0.625, 1.125, 1.625, 2.125]
    assert layout.video_segments == (0, 1, 2, 3, 4)
    # 0.125 s of audio is 5 latents, each 0.5 s segment 20
    assert [layout.audio_segments.count(n) for n in range(5)] == [5, 20, 20, 20, 20]
    assert layout.segment_frames(1) == slice(1, 5) and layout.segment_samples(0) == slice(0, 2000)


def test_segments_are_contiguous_and_ordered_in_time():
    layout = bt(frames=33, latent_frames_per_segment=2)
    assert layout.num_segments == 5
    assert layout.video_segments == (0, 1, 1, 2, 2, 3, 3, 4, 4)
    assert list(layout.audio_segments) == sorted(layout.audio_segments)
    for n in range(layout.num_segments):  # every audio latent lies inside its segment's bounds
        spans = [s for s, seg in zip(layout.audio_latent_spans, layout.audio_segments) if seg == n]
        assert spans[0][0] == layout.segment_bounds[n] and spans[-1][1] == layout.segment_bounds[n + 1]


def test_cells_to_latents_broadcasts_each_cell_to_its_latents():
    layout = BOUNCING_TONES
    grid = torch.arange(10).view(1, 2, 5)
    video, audio = layout.cells_to_latents(grid)
    assert video.shape == (1, 1, 5, 1, 1) and audio.shape == (1, 1, 85)
    assert video.flatten().tolist() == [0, 1, 2, 3, 4]
    assert audio.flatten().tolist() == [5] * 5 + [6] * 20 + [7] * 20 + [8] * 20 + [9] * 20
    with pytest.raises(LayoutError, match=r"expected a grid \(B, 2, 5\)"):
        layout.cells_to_latents(torch.zeros(1, 2, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(frames=16), "needs 1 \\+ 4k frames; 16 frames at 8 fps do not fit. Durations that work: .*2.125 s"),
        (dict(height=60), "multiple of the video codec's spatial stride"),
        (dict(audio_hop=4250), "segment 0 .0 s to 0.125 s. holds no audio latent"),
        (dict(sample_rate=44100), "not a whole number of audio samples at 44100 Hz. Durations that work: none at 8 "
                                  "fps.*frame rates that do: 5, 6, 10, 12, 15, 20, 25, 30"),
        (dict(fps=0), "positive integer"),
    ],
)
def test_bad_geometry_is_refused_with_a_reason(kwargs, message):
    with pytest.raises(LayoutError, match=message):
        bt(**kwargs)


def test_audio_latents_astride_segment_bounds_go_where_their_centre_lies():
    """A hop that divides neither the clip nor the segment bounds (Stable Audio's 2048): the last latent is padded,
    and each latent belongs to the segment holding its centre; where the hop divides the bounds nothing changes."""
    layout = bt(audio_hop=2048)  # 34000 samples: 16.6 latents of 128 ms; segments of 0.125 s, then 0.5 s
    assert layout.audio_latents == 17
    centres = [float(s + e) / 2 for s, e in layout.audio_latent_spans]
    for centre, n in zip(centres, layout.audio_segments):
        assert layout.segment_bounds[n] <= centre < layout.segment_bounds[n + 1]
    assert layout.audio_latent_spans[-1][1] > layout.duration  # the padded last latent
    stable_audio = ClipLayout(fps=10, frames=21, height=64, width=64, sample_rate=44100, audio_hop=2048)
    assert stable_audio.audio_latents == 46 and stable_audio.audio_segments[-1] == 5  # its centre: past the end
    assert [layout.audio_segments.count(n) for n in range(5)] == [1, 4, 4, 4, 4]
    aligned = bt(audio_hop=480, sample_rate=48000, fps=10, frames=21)  # 100 latents/s: bounds at whole latents
    assert [aligned.audio_segments.count(n) for n in range(6)] == [10, 40, 40, 40, 40, 40]
    assert bt(audio_hop=480).audio_latents == 71  # 34000 samples: 70.8 latents, the last padded


def test_layout_round_trips_through_a_dict():
    layout = bt(height=128, width=96)
    assert ClipLayout.from_dict(layout.to_dict()) == layout
    with pytest.raises(LayoutError, match="unknown ClipLayout fields"):
        ClipLayout.from_dict({"fps": 8, "colour": 1})


def test_named_geometries_cut_into_the_paper_grid():
    """The paper's rule: the first frame alone, then equal segments of one latent frame (4 frames) each."""
    landscape = GEOMETRIES["landscape"]
    assert (landscape.fps, landscape.frames, float(landscape.duration)) == (10, 21, 2.1)
    assert [float(b) for b in landscape.segment_bounds] == [0, 0.1, 0.5, 0.9, 1.3, 1.7, 2.1]
    assert [landscape.audio_segments.count(n) for n in range(6)] == [4, 16, 16, 16, 16, 16]
    monologues = GEOMETRIES["monologues"]
    assert (monologues.height, monologues.width, monologues.num_segments) == (128, 128, 5)
    assert GEOMETRIES["bouncing-tones"] == BOUNCING_TONES


def test_working_durations_are_all_valid_layouts():
    text = working_durations(10, 4, 2.0)
    frames = [int(part.split("(")[1].split()[0]) for part in text.split(", ")]
    assert 21 in frames
    for n in frames:
        ClipLayout(fps=10, frames=n, height=64, width=64, sample_rate=16000)  # raises if the duration does not work
    text = working_durations(24, 8, 2.0, sample_rate=16000)  # 1 + 8k frames at 24 fps: whole samples for k = 1 + 3j
    for n in [int(part.split("(")[1].split()[0]) for part in text.split(", ")]:
        ClipLayout(fps=24, frames=n, height=64, width=64, sample_rate=16000, video_temporal_stride=8)
