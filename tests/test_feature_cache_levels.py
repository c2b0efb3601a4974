"""The feature cache puts every clip through the validator's level matching (adv.levels), training clips
after a random, reproducible gain, so what the model learns from is what it is shown at inference."""

import numpy as np
import torch
import pandas as pd
import pytest

from adv.features.window_features import window_features
from adv.features.feature_cache import (
    CacheMismatchError,
    CachedSplit,
    build_feature_cache,
    clip_gain_db,
    leveled_clip,
    load_clip,
)
from adv.features.signal_features import compute_signal_features
from adv.levels import PEAK_RANGE_DBFS, apply_gain_db, match_training_level, peak

SR = 32000


def _peak_db(x):
    return 20 * np.log10(peak(x))


def test_clip_gain_is_reproducible_per_clip_and_inside_its_range():
    a = [clip_gain_db(f"c{i:04d}", (-12.0, 12.0), 1234) for i in range(400)]
    assert a == [clip_gain_db(f"c{i:04d}", (-12.0, 12.0), 1234) for i in range(400)]
    assert min(a) >= -12.0 and max(a) <= 12.0
    assert np.std(a) > 5.0  # spread over the range, not one value
    assert a != [clip_gain_db(f"c{i:04d}", (-12.0, 12.0), 99) for i in range(400)]
    assert clip_gain_db("c0001", (0.0, 0.0), 1234) == 0.0


def test_leveled_clip_lands_in_the_training_range():
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal((2, SR))).astype(np.float32)
    x /= peak(x)  # full scale
    y, g = leveled_clip(x)
    assert _peak_db(y) == pytest.approx(PEAK_RANGE_DBFS[1], abs=1e-3) and g < 0
    y, g = leveled_clip(x, gain_db=-30.0)  # far below the range
    assert _peak_db(y) == pytest.approx(PEAK_RANGE_DBFS[0], abs=1e-3) and g > 0
    y, g = leveled_clip(x, gain_db=-6.0)  # inside: only the gain
    assert _peak_db(y) == pytest.approx(-6.0, abs=1e-3) and g == 0.0
    assert peak(x) == pytest.approx(1.0)  # input untouched


@pytest.fixture(scope="module")
def level_cache(small_corpus, tmp_path_factory):
    corpus, _ = small_corpus
    out = tmp_path_factory.mktemp("features_levels")
    build_feature_cache(corpus, out, splits=("train", "test"), train_gain_db=(-12.0, 12.0), seed=7)
    return corpus, out


def test_cached_features_are_those_the_validator_computes(level_cache):
    """Test clips: level matching only (as the validator does to each window); training clips: their
    recorded gain first. The cached signal features equal a recomputation along that path."""
    corpus, out = level_cache
    m = pd.read_csv(corpus / "manifest.csv").set_index("clip_id")
    for split in ("test", "train"):
        cs = CachedSplit(out / split)
        if split == "test":
            assert (cs.index["level_gain_db"] == 0).all()
        else:
            assert cs.index["level_gain_db"].abs().max() > 1.0
            assert cs.index["level_gain_db"].between(-12.0, 12.0).all()
        for i in range(0, len(cs), max(1, len(cs) // 4)):
            row = cs.index.iloc[i]
            audio, rate = load_clip(corpus, m.loc[row.clip_id].rename(row.clip_id))
            if rate == SR:  # at the model's rate the path is: gain, level matching, features
                window, gain = match_training_level(apply_gain_db(audio, row.level_gain_db))
                expected = compute_signal_features(window, SR)
            else:  # at another rate, resampling first (window_features, the validator's function)
                _, expected, gain = window_features(audio, rate, SR, float(row.level_gain_db))
            assert gain == pytest.approx(row.match_gain_db, abs=2e-3)
            np.testing.assert_allclose(cs.signal[i], expected, rtol=1e-4, atol=2e-3)


def test_a_cache_made_with_other_level_settings_is_refused(level_cache):
    from adv.errors import AdvError

    assert issubclass(CacheMismatchError, AdvError)  # the CLI prints it as one line, exit 2
    corpus, out = level_cache
    with pytest.raises(CacheMismatchError, match=str(out / "train")):
        build_feature_cache(corpus, out, splits=("train",), train_gain_db=(-6.0, 6.0), seed=7)
    with pytest.raises(CacheMismatchError, match="level settings"):
        build_feature_cache(corpus, out, splits=("train",), seed=7)  # no gain at all
    build_feature_cache(corpus, out, splits=("test",), seed=123)  # test clips: no gain, seed irrelevant


def test_cached_features_equal_those_analyze_computes_on_the_clip_file(level_cache):
    """Train/serve parity: a test clip's cached signal features and log-mel input are those that
    AudioDistortionValidator.analyze computes on the clip file (one 10-s window)."""
    from adv.inference.validator import AudioDistortionValidator

    corpus, out = level_cache
    v = AudioDistortionValidator(backend="torch")
    cs = CachedSplit(out / "test")
    m = pd.read_csv(corpus / "manifest.csv").set_index("clip_id")
    picked: dict = {}  # one test clip per (rate, format): parity on the files users have
    for i, clip_id in enumerate(cs.index.clip_id):
        picked.setdefault((m.loc[clip_id].sample_rate, m.loc[clip_id].format), i)
    assert len({rate for rate, _ in picked}) >= 2 and len({fmt for _, fmt in picked}) >= 2, picked
    for i in picked.values():
        row = m.loc[cs.index.iloc[i].clip_id]
        ((start, mono, sig),) = v.features(corpus / row.path)
        assert start == 0.0
        np.testing.assert_allclose(cs.signal[i], sig, rtol=1e-4, atol=2e-3)
        mel = v.model.backbone.extract_logmel(torch.from_numpy(mono[None])).squeeze(1).numpy()[0]
        np.testing.assert_allclose(
            cs.logmel[i].astype(np.float32), mel[: cs.logmel.shape[1]], rtol=1e-3, atol=1e-2
        )  # float16
