"""What the model is given for one analysis window: the same function for `analyze()` and for the
feature cache the model is trained from (train/serve parity)."""

from __future__ import annotations

import numpy as np

from adv.audio_io import resample
from adv.features.signal_features import compute_signal_features
from adv.levels import apply_gain_db, match_training_level


def window_features(
    window: np.ndarray, rate: int, model_rate: int, gain_db: float = 0.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(mono [L] at model_rate, signal features [D], level-matching gain in dB)`` of a window
    [channels, n] at its own ``rate``.

    The window is resampled to the network's rate, given ``gain_db`` (the random level of a training
    clip; 0 at inference) and brought into the training clips' level range (adv.levels; the input is
    not modified). The clipping features come from the window at its own rate, because resampling
    rounds off the flat tops of clipped samples."""
    at_model = resample(window, rate, model_rate) if rate != model_rate else window
    if gain_db:
        at_model = apply_gain_db(at_model, gain_db)
    leveled, match_db = match_training_level(at_model)
    native = None
    if rate != model_rate:
        w = apply_gain_db(window, gain_db) if gain_db else window
        native = (match_training_level(w)[0], rate)
    return leveled.mean(axis=0), compute_signal_features(leveled, model_rate, native=native), match_db
