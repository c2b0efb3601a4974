"""Loud-master limiting of clean source audio in corpus builds (adv.data.mastering)."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adv.config import CONFIG_DIR
from adv.data.corpus_build import build_corpus
from adv.data.mastering import Mastering, limit, master
from adv.features.signal_features import FEATURE_NAMES, compute_signal_features

SR = 32000


def _music(seconds=4.0, seed=0):
    """A few decaying tones with sharp attacks (peaks well above the average level)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros((2, t.size))
    for onset in np.arange(0.0, seconds, 0.25):
        f = rng.uniform(110, 880)
        env = np.where(t >= onset, np.exp(-(t - onset) * 6), 0.0)
        x += env * np.sin(2 * np.pi * f * t) * rng.uniform(0.2, 1.0, size=(2, 1))
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


def test_limiter_reduces_peaks_without_clipping_or_delay():
    x = _music()
    before = x.copy()
    y = limit(x, SR, -9.0, attack_s=0.002, release_s=0.1)
    assert np.array_equal(x, before)  # the input is not touched
    peak_drop_db = 20 * np.log10(np.abs(y).max() / np.abs(x).max())
    assert -10.0 < peak_drop_db < -7.5
    crest = lambda a: 20 * np.log10(np.abs(a).max() / np.sqrt((a**2).mean()))  # noqa: E731
    assert crest(y) < crest(x) - 4.0  # louder relative to its peak, like a master
    # aligned with the input (no look-ahead delay left) and no flat-topped samples
    assert np.corrcoef(x[0], y[0])[0, 1] > 0.9
    top = np.abs(y[0]) >= 0.999 * np.abs(y).max()
    assert top.sum() < 5
    limited_feats = dict(zip(FEATURE_NAMES, compute_signal_features(y / np.abs(y).max() * 0.99, SR)))
    plain_feats = dict(zip(FEATURE_NAMES, compute_signal_features(x / np.abs(x).max() * 0.99, SR)))
    for name in ("clip_flat_frac", "clip_longest_run_log2"):  # flat runs are what clipping leaves
        assert limited_feats[name] <= plain_feats[name] + 1e-3, name
    # no reduction asked: the signal comes back unchanged
    assert np.allclose(limit(x, SR, 0.0, 0.002, 0.1), x, atol=1e-6)
    assert np.array_equal(limit(np.zeros((2, 100), np.float32), SR, -6.0, 0.002, 0.1), np.zeros((2, 100)))


def test_master_draws_nothing_when_off_and_is_reproducible():
    x = _music(2.0)
    rng = np.random.default_rng(5)
    y, params = master(x, SR, rng, Mastering(fraction=0.0))
    assert y is x and params == {}
    assert rng.uniform() == np.random.default_rng(5).uniform()  # the clip's random stream is untouched

    cfg = Mastering(fraction=1.0, limit_db=(-10.0, -4.0), attack_s=(0.001, 0.003), release_s=(0.1, 0.2))
    a, pa = master(x, SR, np.random.default_rng(7), cfg)
    b, pb = master(x, SR, np.random.default_rng(7), cfg)
    assert pa == pb and np.array_equal(a, b)
    assert -10.0 <= pa["limit_db"] <= -4.0 and 0.001 <= pa["attack_s"] <= 0.003 and 0.1 <= pa["release_s"] <= 0.2
    shares = [bool(master(x[:, :3200], SR, np.random.default_rng(s), Mastering(fraction=0.5))[1]) for s in range(200)]
    assert 0.35 < np.mean(shares) < 0.65


@pytest.mark.parametrize(
    "table",
    [
        {"fraction": 1.5},
        {"limit_db": [-2.0, -12.0]},
        {"limit_db": [-6.0, 3.0]},
        {"attack_s": [0.0, 0.01]},
        {"fractoin": 0.5},
    ],
)
def test_bad_mastering_settings_are_refused(table):
    with pytest.raises(ValueError, match="mastering"):
        Mastering.from_config(table)


def test_extra_build_masters_its_clips_and_records_it(tmp_path):
    """`adv data build --extra-train TABLE`: the named table's plan seed and mastering apply; the
    manifest records each clip's limiter settings; clean clips stay labelled clean."""
    cfg = (CONFIG_DIR / "data.toml").read_text() + (
        "\n[extra_mastered_test]\nplan_seed = 3\nmastering = { fraction = 1.0, limit_db = [-9.0, -3.0] }\n"
    )
    (tmp_path / "data.toml").write_text(cfg)
    out = tmp_path / "extra"
    summary = build_corpus(
        out, config=tmp_path / "data.toml", small=True, n_clips=24, extra_train="extra_mastered_test"
    )
    m = pd.read_csv(out / "manifest.csv")
    assert len(m) > 0 and set(m.split) == {"train"} and m.clip_id.str.startswith("x3_").all()
    settings = [json.loads(s) for s in m.mastering]
    assert all(-9.0 <= s["limit_db"] <= -3.0 for s in settings)
    assert summary["mastered_clips"] == len(m) and summary["extra_train"]["table"] == "extra_mastered_test"
    clean = m[m.labels == "clean"]
    assert len(clean) > 0
    for row in clean.head(3).itertuples():
        audio, sr = sf.read(out / row.path)
        assert sr == row.sample_rate and np.abs(audio).max() < 1.0  # at the clip's drawn rate ([storage])
    with pytest.raises(ValueError, match="no_such_table"):
        build_corpus(tmp_path / "x", config=tmp_path / "data.toml", small=True, extra_train="no_such_table")


def test_main_corpus_has_no_mastering_by_default(small_corpus):
    out, summary = small_corpus
    m = pd.read_csv(out / "manifest.csv")
    assert (m.mastering == "{}").all() and summary["mastered_clips"] == 0


def test_cli_extra_train_names_a_table():
    from adv.cli import build_parser

    p = build_parser()
    assert p.parse_args(["data", "build", "--out", "x"]).extra_train is False
    assert p.parse_args(["data", "build", "--extra-train", "--out", "x"]).extra_train is True
    named = p.parse_args(["data", "build", "--extra-train", "extra_train_mastered", "--out", "x"])
    assert named.extra_train == "extra_train_mastered"
