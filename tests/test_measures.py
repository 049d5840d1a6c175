import math

import numpy as np

from avdit.data import bouncing_tones as bt
from avdit.eval.measures import clip_measures, onset_f1, summarise, sync_error_ms

CLIPS = [bt.make_clip(11, i, "test") for i in range(16)]


def test_ground_truth_clips_agree_and_are_in_sync():
    summary = summarise([clip_measures(c.video, c.audio) for c in CLIPS])
    assert summary["identity_agreement"] == 1.0 and summary["identity_consistency"] == 1.0
    assert summary["sync_error_ms"] < 2.0 and summary["onset_f1"] == 1.0


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
