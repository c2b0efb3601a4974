"""Hand-crafted signal features: shapes, robustness and the direction of each damage indicator,
checked on small synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from adv.features.signal_features import (
    FEATURE_GROUPS,
    FEATURE_NAMES,
    compute_signal_features,
)

SR = 32000
IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def feat(audio, sr=SR) -> dict[str, float]:
    v = compute_signal_features(audio, sr)
    return {name: float(v[i]) for i, name in enumerate(FEATURE_NAMES)}


def music_like(seconds: float = 10.0, sr: int = SR, seed: int = 0, width: float = 0.2) -> np.ndarray:
    """Correlated stereo: a shared part (tones with decaying envelopes + coloured noise) plus a
    little independent noise per channel; peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    mid = np.zeros(n)
    for i in range(12):
        f0 = 110.0 * 2 ** (rng.integers(0, 30) / 12)
        start = rng.uniform(0, seconds - 1.0)
        env = np.where(t >= start, np.exp(-(t - start) * rng.uniform(1.0, 4.0)), 0.0)
        for h in range(1, 6):
            mid += 0.5**h * env * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    b, a = signal.butter(1, 800 / (sr / 2))
    mid += 0.3 * signal.lfilter(b, a, rng.standard_normal(n)) + 0.02 * rng.standard_normal(n)
    side = rng.standard_normal((2, n)) * 0.05
    x = mid[None, :] + width * side
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def stereo() -> np.ndarray:
    return music_like()


# ------------------------------------------------------------------------------------------ api


def test_feature_names_and_groups():
    assert set(FEATURE_GROUPS) == {"stereo", "highband", "clipping", "spectral", "eqshape"}
    flat = [n for names in FEATURE_GROUPS.values() for n in names]
    assert flat == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert 40 <= len(FEATURE_NAMES) <= 120
    assert all(len(v) >= 5 for v in FEATURE_GROUPS.values())


@pytest.mark.parametrize(
    "case",
    [
        "stereo",
        "mono1d",
        "mono2d",
        "silence",
        "silence_mono",
        "dc",
        "half_second",
        "48k",
        "one_channel_silent",
        "nan",
        "tiny",
        "loud",
    ],
)
def test_shape_dtype_finite(case, stereo):
    rng = np.random.default_rng(1)
    sr = SR
    audio = {
        "stereo": lambda: stereo,
        "mono1d": lambda: stereo[0],
        "mono2d": lambda: stereo[:1],
        "silence": lambda: np.zeros((2, 10 * SR), np.float32),
        "silence_mono": lambda: np.zeros((1, 10 * SR), np.float32),
        "dc": lambda: np.full((2, 10 * SR), 0.5, np.float32),
        "half_second": lambda: stereo[:, : SR // 2],
        "48k": lambda: music_like(3.0, 48000),
        "one_channel_silent": lambda: np.stack([stereo[0], np.zeros_like(stereo[0])]),
        "nan": lambda: np.where(rng.random(stereo.shape) < 0.01, np.nan, stereo).astype(np.float32),
        "tiny": lambda: stereo[:, :100],
        "loud": lambda: stereo * 50.0,
    }[case]()
    if case == "48k":
        sr = 48000
    v = compute_signal_features(audio, sr)
    assert v.shape == (len(FEATURE_NAMES),)
    assert v.dtype == np.float32
    assert np.isfinite(v).all(), [n for n, x in zip(FEATURE_NAMES, v) if not np.isfinite(x)]


def test_mono_stereo_group_equals_identical_channels(stereo):
    mono = feat(stereo[0])
    dual = feat(np.stack([stereo[0], stereo[0]]))
    for name in FEATURE_GROUPS["stereo"]:
        assert mono[name] == pytest.approx(dual[name], abs=1e-4), name
    # and silence, mono or stereo, gives the same neutral stereo values
    s1, s2 = feat(np.zeros(SR, np.float32)), feat(np.zeros((2, SR), np.float32))
    for name in FEATURE_GROUPS["stereo"]:
        assert s1[name] == s2[name], name


def test_level_invariance_of_ratio_features(stereo):
    a, b = feat(stereo), feat(stereo * 0.1)
    absolute = {"sp_rms_dbfs", "clip_peak_dbfs"}
    for name in FEATURE_NAMES:
        if name not in absolute:
            assert a[name] == pytest.approx(b[name], rel=1e-2, abs=0.05), name
    assert b["sp_rms_dbfs"] == pytest.approx(a["sp_rms_dbfs"] - 20.0, abs=0.01)


# --------------------------------------------------------------------------------------- stereo


def test_identical_channels(stereo):
    f = feat(np.stack([stereo[0], stereo[0]]))
    assert f["st_corr"] == pytest.approx(1.0, abs=1e-6)
    assert f["st_delay_abs_ms"] == 0.0
    assert f["st_downmix_loss_db"] == pytest.approx(0.0, abs=1e-6)
    assert f["st_side_mid_db"] == -60.0


def test_polarity_inversion(stereo):
    clean = feat(stereo)
    inv = feat(np.stack([stereo[0], -stereo[1]]))
    assert clean["st_corr"] > 0.8
    assert inv["st_corr"] < -0.8
    assert inv["st_downmix_loss_db"] > 10.0 > clean["st_downmix_loss_db"] + 5.0
    assert inv["st_side_mid_db"] > 0.0 > clean["st_side_mid_db"]
    assert all(inv[f"st_band_corr_{b}"] < -0.5 for b in ("low", "mid", "high"))
    assert inv["st_antiphase_frac"] > 0.5 > clean["st_antiphase_frac"]
    assert inv["st_delay_peak"] < -0.5 < clean["st_delay_peak"]


@pytest.mark.parametrize("delay_ms", [1.0, -0.5, 2.2])
def test_delay_estimate(stereo, delay_ms):
    d = int(round(delay_ms * SR / 1000))
    right = np.roll(stereo[1], d)
    f = feat(np.stack([stereo[0], right]))
    assert f["st_delay_abs_ms"] == pytest.approx(abs(delay_ms), abs=0.1)
    assert f["st_corr_at_delay"] > 0.8
    assert f["st_corr_gain"] > 0.3


def test_allpass_smearing_decorrelates(stereo):
    y = stereo[1].astype(np.float64)
    for fc in (300.0, 1500.0):
        c = (np.tan(np.pi * fc / SR) - 1) / (np.tan(np.pi * fc / SR) + 1)
        y = signal.lfilter([c, 1.0], [1.0, c], y)
    clean, smeared = feat(stereo), feat(np.stack([stereo[0], y]).astype(np.float32))
    assert smeared["st_corr"] < clean["st_corr"] - 0.3
    # a linear filter keeps the channels coherent
    assert smeared["st_band_coh_mid"] > 0.5


# ------------------------------------------------------------------------------------- clipping


def _normalise(x: np.ndarray, dbfs: float) -> np.ndarray:
    return (x / np.abs(x).max() * 10 ** (dbfs / 20)).astype(np.float32)


def test_hard_clipping(stereo):
    clean = _normalise(stereo, -3.0)
    thr = 0.2 * np.abs(stereo).max()
    clipped = np.clip(stereo, -thr, thr)
    fc, fk = feat(clean), feat(clipped)
    for name in ("clip_frac_near_peak", "clip_flat_frac", "clip_edge_ratio_db", "clip_longest_run_log2"):
        assert fk[name] > fc[name], name
    assert fk["clip_edge_ratio_db"] > 10.0
    assert fk["clip_kurtosis_log10"] < fc["clip_kurtosis_log10"]
    assert fk["clip_p999_p99"] < fc["clip_p999_p99"]
    # renormalised to -3 dBFS after clipping: nothing reaches full scale, the edge spike remains
    renorm = feat(_normalise(clipped, -3.0))
    assert renorm["clip_frac_fullscale"] == 0.0
    for name in ("clip_frac_near_peak", "clip_flat_frac", "clip_edge_ratio_db"):
        assert renorm[name] > fc[name] and renorm[name] == pytest.approx(fk[name], rel=0.05, abs=0.5), name
    # at 0 dBFS the full-scale count picks it up as well
    assert feat(_normalise(clipped, 0.0))["clip_frac_fullscale"] > 0.01


def test_soft_clipping_compresses_the_top(stereo):
    clean = feat(_normalise(stereo, -1.0))
    soft = feat(_normalise(np.tanh(6.0 * stereo), -1.0))
    assert soft["clip_p999_p99"] < clean["clip_p999_p99"]
    assert soft["clip_crest_db"] < clean["clip_crest_db"]
    assert soft["clip_kurtosis_log10"] < clean["clip_kurtosis_log10"]


# ------------------------------------------------------------------------------------- highband


@pytest.fixture(scope="module")
def white() -> np.ndarray:
    return (0.1 * np.random.default_rng(5).standard_normal((2, 10 * SR))).astype(np.float32)


def test_cutoff_unfiltered(white, stereo):
    assert feat(white)["hb_cutoff_khz"] > 15.0
    assert feat(white)["hb_drop_db"] == 0.0


@pytest.mark.parametrize("fc,order", [(11000.0, 8), (11000.0, 12), (13500.0, 10), (7000.0, 8)])
def test_cutoff_lowpassed(white, fc, order):
    sos = signal.butter(order, fc / (SR / 2), output="sos")
    y = signal.sosfiltfilt(sos, white, axis=1).astype(np.float32)
    f = feat(y)
    assert f["hb_cutoff_khz"] == pytest.approx(fc / 1000.0, abs=1.0)
    assert f["hb_drop_db"] > 15.0
    ref = feat(white)
    assert f["hb_ratio_14k5_16k_db"] < ref["hb_ratio_14k5_16k_db"] - 30.0


def test_spectral_holes(white):
    # zero random 1-kHz blocks above 8 kHz for runs of frames, like a starved lossy encoder
    rng = np.random.default_rng(2)
    n_fft, hop = 1024, 512
    f, _, z = signal.stft(white, SR, nperseg=n_fft, noverlap=n_fft - hop)
    holes = z.copy()
    for fi in range(0, holes.shape[-1], 4):
        for lo in range(8000, 16000, 1000):
            if rng.random() < 0.3:
                holes[:, (f >= lo) & (f < lo + 1000), fi : fi + 4] = 0
    _, y = signal.istft(holes, SR, nperseg=n_fft, noverlap=n_fft - hop)
    ref, dam = feat(white), feat(y[:, : white.shape[1]].astype(np.float32))
    assert dam["hb_hole_frac"] > ref["hb_hole_frac"] + 0.05
    assert dam["hb_hole_spectral_frac"] > ref["hb_hole_spectral_frac"] + 0.05
    assert dam["hb_flux_db"] > ref["hb_flux_db"]


# ------------------------------------------------------------------------------------- spectral


def test_hum(stereo):
    t = np.arange(stereo.shape[1]) / SR
    hum = 0.01 * (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 100 * t))
    clean, hummed = feat(stereo), feat((stereo + hum[None, :]).astype(np.float32))
    assert hummed["sp_hum_db"] > clean["sp_hum_db"] + 6.0
    hum60 = feat((stereo + 0.01 * np.sin(2 * np.pi * 60 * t)[None, :]).astype(np.float32))
    assert hum60["sp_hum_db"] > clean["sp_hum_db"] + 6.0


def test_telephone_band_pass(stereo):
    sos = signal.butter(4, [300 / (SR / 2), 3400 / (SR / 2)], btype="band", output="sos")
    tel = signal.sosfilt(sos, stereo, axis=1).astype(np.float32)
    ref, f = feat(stereo), feat(tel)
    assert f["sp_low300_db"] < ref["sp_low300_db"] - 5.0
    assert f["sp_low100_db"] < ref["sp_low100_db"] - 20.0
    assert f["sp_hi4k_db"] < ref["sp_hi4k_db"] - 10.0
    assert f["sp_tel_db"] > ref["sp_tel_db"]
    assert f["sp_curvature_db_oct2"] < ref["sp_curvature_db_oct2"] - 2.0


def test_eq_slope(white):
    hp = signal.sosfilt(signal.butter(2, 1500 / (SR / 2), "high", output="sos"), white, axis=1)
    lp = signal.sosfilt(signal.butter(2, 1500 / (SR / 2), "low", output="sos"), white, axis=1)
    ref = feat(white)["sp_slope_db_oct"]
    assert feat(hp.astype(np.float32))["sp_slope_db_oct"] > ref + 3.0
    assert feat(lp.astype(np.float32))["sp_slope_db_oct"] < ref - 3.0


def test_added_noise_raises_the_floor(stereo):
    # silence between bursts: added noise fills it
    env = (np.arange(stereo.shape[1]) // (SR // 2)) % 2 == 0
    gated = stereo * env[None, :]
    noisy = gated + 0.01 * np.random.default_rng(3).standard_normal(gated.shape).astype(np.float32)
    f0, f1 = feat(gated.astype(np.float32)), feat(noisy.astype(np.float32))
    assert f1["sp_floor_full_db"] > f0["sp_floor_full_db"] + 10.0
    assert f1["sp_flatness_hi_db"] > f0["sp_flatness_hi_db"]


# ------------------------------------------------------------------------------------------ eq shape


def test_eq_shape_follows_filters(stereo):
    """Band-limiting lowers the top half-octave bands and the high edge; a bass cut lowers the
    bottom bands and raises the low edge; the 250 Hz - 4 kHz reference keeps the middle near its level."""
    base = feat(stereo)
    lp = feat(signal.sosfiltfilt(signal.butter(6, 4000, fs=SR, output="sos"), stereo, axis=1).astype(np.float32))
    hp = feat(
        signal.sosfiltfilt(signal.butter(4, 400, btype="highpass", fs=SR, output="sos"), stereo, axis=1).astype(
            np.float32
        )
    )
    assert lp["eq_band14_db"] < base["eq_band14_db"] - 30
    assert lp["eq_high_edge_oct"] < base["eq_high_edge_oct"]
    assert abs(lp["eq_band08_db"] - base["eq_band08_db"]) < 3
    assert hp["eq_band00_db"] < base["eq_band00_db"] - 20
    assert hp["eq_low_edge_oct"] > base["eq_low_edge_oct"]
    assert feat(stereo * 0.1)["eq_band03_db"] == pytest.approx(base["eq_band03_db"], abs=0.01)  # level-free
