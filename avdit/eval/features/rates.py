"""Audio brought to the sample rate a feature network takes."""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, rate: int, to: int) -> np.ndarray:
    """(..., S) audio at ``rate`` -> (..., S * to / rate) at ``to`` (scipy's polyphase filter; unchanged when the
    rates agree). The reference harnesses resample with torchaudio; the two differ slightly near Nyquist."""
    if int(rate) == int(to):
        return audio
    from scipy.signal import resample_poly

    return resample_poly(audio, int(to), int(rate), axis=-1)  # the rates' common factor is taken out by scipy
