"""Analysis windows are brought into the training clips' level range (adv.levels)."""

import numpy as np

from adv.inference.validator import AudioDistortionValidator
from adv.levels import PEAK_RANGE_DBFS, match_training_level


def _peak_db(x):
    return 20 * np.log10(np.abs(x).max())


def test_windows_outside_the_range_go_to_its_nearest_end_and_inside_it_are_untouched():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 32000)).astype(np.float32)
    loud = x / np.abs(x).max()  # 0 dBFS
    quiet = loud * np.float32(10 ** (-30 / 20))  # -30 dBFS
    fine = loud * np.float32(10 ** (-6 / 20))  # -6 dBFS
    y, g = match_training_level(loud)
    assert abs(_peak_db(y) - PEAK_RANGE_DBFS[1]) < 1e-3 and g < 0
    y, g = match_training_level(quiet)
    assert abs(_peak_db(y) - PEAK_RANGE_DBFS[0]) < 1e-3 and g > 0
    y, g = match_training_level(fine)
    assert y is fine and g == 0.0
    silent = np.zeros((2, 100), np.float32)
    assert match_training_level(silent)[0] is silent
    # the input is never modified
    assert _peak_db(loud) > -1e-3 and abs(_peak_db(quiet) + 30) < 1e-3


def test_windows_beyond_the_range_get_the_verdict_of_its_nearest_end():
    """Music at -30 dBFS is analysed as at -20 dBFS (both become -12 dBFS windows), and a master at
    full scale as the same master at -0.1 dBFS."""
    rng = np.random.default_rng(1)
    t = np.arange(32000 * 12) / 32000
    music = (
        0.5 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 331 * t + 1) + 0.05 * rng.standard_normal(t.size)
    ).astype(np.float32)
    audio = np.stack([music, np.roll(music, 7)])
    audio /= np.abs(audio).max()
    v = AudioDistortionValidator(backend="torch")

    def probs(db):
        r = v.analyze(audio * np.float32(10 ** (db / 20)), sample_rate=32000)
        return np.array([[s["probabilities"][k] for k in s["probabilities"]] for s in r["segments"]])

    assert np.abs(probs(-30.0) - probs(-20.0)).max() < 2e-3
    assert np.abs(probs(0.0) - probs(PEAK_RANGE_DBFS[1])).max() < 2e-3


def test_a_track_is_judged_on_the_mean_of_its_windows():
    """One odd window does not make a long clean track damaged; damage throughout does."""
    from adv.inference.windows import summarise

    n = 30
    sev = np.zeros((n, 5), np.float32)
    starts = [5.0 * i for i in range(n)]
    probs = np.zeros((n, 6), np.float32)
    probs[:, 0] = 0.8  # clean-looking windows
    probs[:3, 0], probs[:3, 4] = 0.1, 0.9  # three odd ones (eq)
    from adv.inference.decision import Decision

    clean = summarise(probs, sev, starts, 10.0, 155.0, Decision((0.7,) * 5))
    assert not clean["has_distortion"]
    assert abs(clean["confidence"] - (27 * 0.8 + 3 * 0.1) / 30) < 1e-3  # the mean P(clean)
    assert clean["segments"][0]["has_distortion"]  # the odd window stays visible
    probs[:, 0], probs[:, 2] = 0.1, 0.9  # MP3 throughout
    verdict = summarise(probs, sev, starts, 10.0, 155.0, Decision((0.7,) * 5))
    assert verdict["has_distortion"] and verdict["distortion_type"] == "mp3"
