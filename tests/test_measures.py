import dataclasses
import math

import numpy as np

from avdit.data import bouncing_tones as bt
from avdit.eval.bt_analysis import disc_count
from avdit.eval.measures import class_mix, clip_measures, onset_f1, onset_scores, onset_sync_error_ms, summarise, sync_error_ms

CLIPS = [bt.make_clip(11, i, "test") for i in range(16)]


def test_ground_truth_clips_agree_and_are_in_sync():
    summary = summarise([clip_measures(c.video, c.audio) for c in CLIPS])
    assert summary["identity_agreement"] == 1.0 and summary["identity_consistency"] == 1.0
    assert summary["sync_error_ms"] < 2.0 and summary["onset_sync_error_ms"] < 2.0 and summary["onset_f1"] == 1.0
    assert summary["onset_precision"] == 1.0 and summary["onset_recall"] == 1.0


def test_shuffled_pairs_agree_at_chance_and_fall_out_of_sync():
    shuffled = [clip_measures(c.video, CLIPS[(i + 1) % 16].audio) for i, c in enumerate(CLIPS)]
    summary = summarise(shuffled)
    same_class = np.mean([c.params.k == CLIPS[(i + 1) % 16].params.k for i, c in enumerate(CLIPS)])
    assert summary["identity_agreement"] == same_class  # agreement only where the classes happen to match
    assert summary["identity_agreement"] <= 0.25 and summary["sync_error_ms"] > 30


def test_sync_error_and_f1_by_hand():
    assert abs(sync_error_ms([1.0, 2.0], np.array([1.01, 2.03])) - 20.0) < 1e-9
    assert math.isnan(sync_error_ms([], np.array([1.0])))
    assert onset_f1([1.0, 2.0], np.array([1.01])) == 2 * 1 * 0.5 / 1.5
    assert onset_f1([1.0], np.array([1.2])) == 0.0


def test_an_extra_click_counts_in_the_onset_direction_and_the_precision():
    """A click off every impact leaves the impact -> onset error unchanged; onset -> impact and precision see it."""
    impacts, onsets = [0.5, 1.5], np.array([0.51, 1.0, 1.2, 1.51])
    assert abs(sync_error_ms(impacts, onsets) - 10.0) < 1e-9  # blind to the clicks at 1.0 and 1.2 s
    assert abs(onset_sync_error_ms(impacts, onsets) - np.median([10, 500, 300, 10])) < 1e-9
    assert onset_scores(impacts, onsets) == (0.5, 1.0, 2 * 0.5 / 1.5)
    assert onset_scores(impacts, np.array([0.5])) == (1.0, 0.5, 2 * 0.5 / 1.5)  # a missing click: the recall


def test_a_generated_click_off_the_impacts_is_caught_on_a_real_clip():
    clip = CLIPS[0]
    clean = clip_measures(clip.video, clip.audio)
    audio = clip.audio.copy()
    burst = np.sin(np.arange(800) * 2 * np.pi * 440 / bt.SAMPLE_RATE).astype(np.float32) * 0.6
    spot = int(0.6 * bt.SAMPLE_RATE)  # halfway between this clip's impacts at 0.19 and 1.0 s
    audio[spot:spot + burst.size] += burst * np.exp(-np.arange(800) / 200).astype(np.float32)
    noisy = clip_measures(clip.video, audio)
    assert noisy["onset_precision"] < clean["onset_precision"] == 1.0
    assert noisy["sync_error_ms"] == clean["sync_error_ms"]  # the old direction does not see the extra click
    assert noisy["onset_sync_error_ms"] > clean["onset_sync_error_ms"]  # a median: one click in four moves it a little


def test_class_mix_sees_a_model_that_draws_few_classes_where_colour_equals_pitch_cannot():
    """A joint model that draws every clip as one class, colour and pitch agreeing, scores 100 % colour = pitch; the
    class mix scores it 1/8 against data spread over eight classes, and the data's own clips (their classes read
    back from the frames) 1."""
    reference = np.array([c.params.k for c in CLIPS])
    read_back = np.array([clip_measures(c.video, c.audio)["colour"] for c in CLIPS])
    assert class_mix(read_back, reference) == 1.0
    one_class = [c for c in CLIPS if c.params.k == CLIPS[0].params.k][:1] * len(CLIPS)
    collapsed = [clip_measures(c.video, c.audio) for c in one_class]
    assert summarise(collapsed)["identity_agreement"] == 1.0
    share = np.mean(reference == CLIPS[0].params.k)
    assert abs(class_mix(np.array([m["colour"] for m in collapsed]), reference) - share) < 1e-9
    # by hand: half the clips of class 0 moved to class 1 (and one drawn with no disc) moves that share
    assert class_mix(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0])) == 0.5
    assert class_mix(np.array([0, 1, 2, -1]), np.array([0, 1, 2, 3])) == 0.75


def test_a_second_disc_beside_the_first_is_seen_where_colour_pitch_and_sync_are_blind_to_it():
    """The failure a generated stream showed: a twin of the disc, same colour and bounce, beside it. Colour = pitch,
    one class and sync still score the clip as right; the disc count does not. Every real clip holds one disc in
    every frame, and a frame with none is not one either."""
    assert summarise([clip_measures(c.video, c.audio) for c in CLIPS])["one_disc"] == 1.0
    clip = CLIPS[0]
    twin = dataclasses.replace(clip.params, x=clip.params.x + 25 if clip.params.x < 32 else clip.params.x - 25)
    video = np.maximum(clip.video, bt.render_video(twin))  # both discs over the background
    clean, doubled = clip_measures(clip.video, clip.audio), clip_measures(video, clip.audio)
    for key in ("identity_agreement", "identity_consistency"):
        assert doubled[key] == clean[key] == 1.0
    assert abs(doubled["sync_error_ms"] - clean["sync_error_ms"]) < 5.0  # the twins bounce together
    assert clean["one_disc"] == 1.0 and doubled["one_disc"] == 0.0
    assert list(disc_count(video)) == [2] * len(video)
    blanked = clip.video.copy()
    blanked[:4] = bt.BACKGROUND  # four frames with no disc
    assert clip_measures(blanked, clip.audio)["one_disc"] == (len(blanked) - 4) / len(blanked)
    assert list(disc_count(clip.video[:3])) == [1, 1, 1]
