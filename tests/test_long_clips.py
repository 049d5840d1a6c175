"""Long-clip measures (avdit.eval.long_clips) on real long Bouncing Tones clips and on clips broken at a seam."""

import numpy as np
import pytest

from avdit.data import bouncing_tones as bt
from avdit.eval.bt_analysis import disc_area, disc_coverage
from avdit.eval.long_clips import long_clip_measures, stream_windows, subject_losses, time_held, window_starts

PER_FRAME = bt.SAMPLES_PER_FRAME


def test_windows_cover_the_clip_and_the_last_is_flush_with_its_end():
    assert window_starts(17) == [0]
    assert window_starts(64) == [0, 16, 32, 47]
    assert window_starts(65) == [0, 16, 32, 48]
    with pytest.raises(ValueError, match="at least 17 frames"):
        window_starts(16)


def test_a_real_long_clip_holds_in_every_window():
    clip = bt.make_clip(0, 2, "test", frames=64)
    m = long_clip_measures(clip.video, clip.audio)
    assert m["windows"] == 4 and m["identity_held"] == 1.0 and m["identity_agreement"] == 1.0 and m["one_disc"] == 1.0
    assert m["sync_error_ms"] < 5 and m["onset_sync_error_ms"] < 5
    assert m["clip_trajectory_rms_px"] < 0.5  # one bounce explains all 8 s


def test_a_seam_to_another_clip_breaks_identity_and_the_bounce():
    a, b = (bt.make_clip(0, i, "test", frames=64) for i in (2, 7))
    assert a.params.k != b.params.k
    video, audio = a.video.copy(), a.audio.copy()
    video[33:], audio[33 * PER_FRAME:] = b.video[33:], b.audio[33 * PER_FRAME:]
    m = long_clip_measures(video, audio)
    assert m["identity_held"] == 0.0
    assert m["clip_trajectory_rms_px"] > 3 > m["window_trajectory_rms_px"] + 2


def test_frames_skipped_at_a_seam_show_in_the_bounce_only():
    """Three frames lost at a seam: every window still shows one good bounce with its clicks, the clip does not."""
    longer = bt.make_clip(0, 2, "test", frames=67)
    keep = np.r_[0:33, 36:67]
    samples = np.concatenate([longer.audio[f * PER_FRAME:(f + 1) * PER_FRAME] for f in keep])
    m = long_clip_measures(longer.video[keep], samples)
    assert m["identity_held"] == 1.0
    assert m["window_trajectory_rms_px"] < 0.5 < 2 < m["clip_trajectory_rms_px"]


def test_the_disc_area_is_pi_r_squared_and_faint_background_noise_leaves_it_so():
    """The size streams are held to (``disc_area``) is the disc's own area. Noise of a few grey levels on the
    background, as a codec leaves, adds a third or more to the coverage summed over the frame but not to the area."""
    clip = bt.make_clip(0, 3, "test")
    area = disc_area(clip.video)
    assert np.allclose(area, np.pi * clip.params.radius ** 2, rtol=0.05)
    noise = np.random.default_rng(0).integers(-6, 7, clip.video.shape)
    noisy = np.clip(clip.video.astype(int) + noise, 0, 255).astype(np.uint8)
    assert np.allclose(disc_area(noisy), area, rtol=0.05)
    assert disc_coverage(noisy).sum() > 1.2 * disc_coverage(clip.video).sum()


def test_subject_losses_tell_a_brief_wrong_pitch_from_a_lasting_change_of_subject():
    """Three real 8-s streams: one held; one whose audio in frames 16-31 (its second window) is another class's, a
    brief loss of the pitch; one that goes on as another clip from frame 33 (its third and fourth windows), a loss
    of both that never comes back."""
    a, b = (bt.make_clip(0, i, "test", frames=64) for i in (2, 7))
    assert a.params.k != b.params.k
    brief_audio = a.audio.copy()
    brief_audio[16 * PER_FRAME:32 * PER_FRAME] = b.audio[16 * PER_FRAME:32 * PER_FRAME]
    switched_video, switched_audio = a.video.copy(), a.audio.copy()
    switched_video[33:], switched_audio[33 * PER_FRAME:] = b.video[33:], b.audio[33 * PER_FRAME:]
    streams = [stream_windows(v, s, sync_every=100) for v, s in
               ((a.video, a.audio), (a.video, brief_audio), (switched_video, switched_audio))]
    assert [time_held(w)["subject_lost_s"] for w in streams] == [None, 2.0, 4.0]
    assert [w["pitch"] for w in streams[1]] == [a.params.k, b.params.k, a.params.k, a.params.k]
    losses = subject_losses(streams)
    assert losses == {"lost": 2, "first_off": {"pitch": 1, "colour": 0, "both": 1}, "lasting": 1, "brief": 1,
                      "off_windows": 3, "windows": 12}
