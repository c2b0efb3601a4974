"""adv.measurements against ground truth on synthetic signals: clipping counts, cut-off, channel
delay and polarity, loudness and true peak (against ffmpeg's ebur128 filter), hum, noise, spectral
deviation, and valid results for degenerate inputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import lru_cache

import numpy as np
import pytest

from adv.measurements import TRACK_KEYS, WINDOW_KEYS, measure_track, measure_window
from adv.measurements import spectrum
from adv.measurements.synth import add_hum, add_noise, delay_right, hard_clip_fraction, lowpass, music_like

RATES = (44100, 48000, 96000)


@lru_cache(maxsize=None)
def music(sr: int, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    x = music_like(seconds, sr, seed=seed)
    x.setflags(write=False)
    return x


# ------------------------------------------------------------------------------------------- clipping


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2, 0.4])
def test_hard_clip_fraction_within_10_percent(sr, fraction):
    y, truth = hard_clip_fraction(music(sr), fraction)
    m = measure_window(y, sr)
    assert abs(m["clipped_fraction"] / truth - 1.0) <= 0.10
    assert m["longest_clip_run"] >= 2
    per = m["clipping_per_channel"]
    assert len(per) == 2 and sum(p["clipped_samples"] for p in per) == m["clipped_samples"]
    assert m["intersample_overs"] > 0  # a clipped master overshoots between samples


@pytest.mark.parametrize("sr", RATES)
def test_clip_then_normalise_to_minus_3_dbfs(sr):
    y, truth = hard_clip_fraction(music(sr), 0.1)
    quiet = (y * 10 ** (-3 / 20)).astype(np.float32)
    m = measure_window(quiet, sr)
    assert abs(m["clipped_fraction"] / truth - 1.0) <= 0.10
    assert m["sample_peak_dbfs"] == pytest.approx(-3.0, abs=0.01)
    assert m["true_peak_dbtp"] > m["sample_peak_dbfs"] + 0.3  # the clipped edges overshoot
    pcm16 = (np.round(quiet * 32767) / 32767).astype(np.float32)
    assert abs(measure_window(pcm16, sr)["clipped_fraction"] / truth - 1.0) <= 0.10


def test_no_clipping_on_clean_signals():
    for sr in RATES:
        assert measure_window(music(sr), sr)["clipped_samples"] == 0
        t = np.arange(2 * sr) / sr
        for f0 in (50.0, 100.0, 440.0, 1000.0):  # full-scale sines touch their peak every cycle
            m = measure_window(np.sin(2 * np.pi * f0 * t + 0.1).astype(np.float32)[None], sr)
            assert m["clipped_samples"] == 0 and m["intersample_overs"] == 0


def test_no_clipping_on_limited_and_soft_knee_signals():
    from adv.data.mastering import limit

    sr = 44100
    x = music(sr)
    for thr in (-3.0, -12.0):  # brick-wall limited: peaks approach the ceiling
        z = limit(x, sr, thr, 0.002, 0.1)
        assert measure_window(z / np.abs(z).max(), sr)["clipped_fraction"] <= 1e-5
    soft = np.tanh(2.0 * x / np.abs(x).max()).astype(np.float32)  # rounded, not flat, tops
    assert measure_window(soft, sr)["clipped_fraction"] <= 1e-5


def test_lone_peak_is_not_clipping_but_a_flat_run_is():
    x = music(44100).copy()
    x[0, 1000] = 1.0  # one sample at the ceiling
    assert measure_window(x, 44100)["clipped_samples"] == 0
    x[0, 5000:5004] = 1.0  # a flat run of four at the same ceiling
    m = measure_window(x, 44100)
    assert m["clipping_per_channel"][0]["clipped_samples"] >= 4
    assert m["clipping_per_channel"][1]["clipped_samples"] == 0
    assert m["longest_clip_run"] == 4


def test_true_peak_between_samples():
    sr = 48000
    t = np.arange(sr)
    x = np.sin(2 * np.pi * t / 4 + np.pi / 4).astype(np.float32)[None]  # fs/4, samples at +-0.707
    m = measure_window(x, sr)
    assert m["sample_peak_dbfs"] == pytest.approx(-3.01, abs=0.02)
    assert m["true_peak_dbtp"] == pytest.approx(0.0, abs=0.2)
    y = (x * 1.1).astype(np.float32)  # true peak +0.8 dBTP
    m = measure_window(y, sr)
    assert m["intersample_overs"] > 0.9 * sr / 2 and m["clipped_samples"] == 0


def test_pruned_true_peak_equals_full_oversampling():
    from adv.measurements.truepeak import Extrema, inter_sample_peaks

    x = music(44100)
    for y in (x, hard_clip_fraction(x, 0.1)[0], hard_clip_fraction(x, 0.4)[0]):
        ext = Extrema(y)
        pruned, everything = inter_sample_peaks(ext), inter_sample_peaks(ext, margin_db=60.0)
        np.testing.assert_allclose(pruned[0], everything[0])
        np.testing.assert_array_equal(pruned[1], everything[1])


# ------------------------------------------------------------------------------------------- bandwidth


@pytest.mark.parametrize("sr", RATES)
def test_cutoff_of_known_lowpasses(sr):
    x = music(sr, seconds=10.0)
    full = measure_window(x, sr)["cutoff_hz"]
    assert full >= 0.97 * sr / 2
    for fc in (4000, 8000, 12000, 16000, 19000):
        for kind in ("butter", "brick"):
            c = measure_window(lowpass(x, sr, fc, kind=kind), sr)["cutoff_hz"]
            assert abs(c - fc) <= 300, (sr, fc, kind, c)


# ------------------------------------------------------------------------------------------- stereo


@pytest.mark.parametrize("sr", RATES)
def test_channel_delay_within_one_sample(sr):
    x = music(sr)
    for d in (3, 13, 44, -7):
        m = measure_window(delay_right(x, d), sr)
        assert abs(m["channel_delay_ms"] * sr / 1000.0 - d) <= 1.0, (sr, d, m["channel_delay_ms"])
        assert m["polarity_inverted"] is False
    assert abs(measure_window(x, sr)["channel_delay_ms"]) * sr / 1000.0 < 0.5


def test_polarity_inversion_and_mono_downmix():
    sr = 44100
    x = music(sr)
    m = measure_window(x, sr)
    assert m["polarity_inverted"] is False and m["lr_correlation"] > 0.5
    assert 0.0 <= m["mono_downmix_loss_db"] < 1.0
    y = x.copy()
    y[1] *= -1.0
    m = measure_window(y, sr)
    assert m["polarity_inverted"] is True
    assert m["lr_correlation"] < -0.5
    assert m["mono_downmix_loss_db"] > 10.0
    assert measure_window(delay_right(y, 13), sr)["polarity_inverted"] is True
    mono_in_stereo = np.vstack([x[0], x[0]])
    m = measure_window(mono_in_stereo, sr)
    assert m["lr_correlation"] == pytest.approx(1.0) and m["mono_downmix_loss_db"] == pytest.approx(0.0, abs=1e-3)


# ------------------------------------------------------------------------------------------- loudness


def _ffmpeg_ebur128(x: np.ndarray, sr: int, tmp_path) -> dict:
    import soundfile as sf

    path = tmp_path / f"x{sr}.wav"
    sf.write(path, x.T, sr, subtype="FLOAT")
    err = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = err[err.rfind("Summary:") :]
    return {k: float(re.search(k + r":\s+(-?[\d.]+)", summary).group(1)) for k in ("I", "LRA", "Peak")}


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("sr", RATES)
def test_loudness_and_true_peak_match_ffmpeg(sr, tmp_path):
    x = music(sr, seconds=12.0, seed=1)
    ramp = np.linspace(10 ** (-12 / 20), 1.0, x.shape[1]).astype(np.float32)  # some loudness range
    for y in (x, x * ramp):
        m = measure_track(y, sr)
        f = _ffmpeg_ebur128(y, sr, tmp_path)
        assert abs(m["integrated_lufs"] - f["I"]) <= 0.3
        assert abs(m["loudness_range_lu"] - f["LRA"]) <= 0.3
        assert abs(m["true_peak_dbtp"] - f["Peak"]) <= 0.3


def test_loudness_reference_values():
    sr = 48000
    t = np.arange(10 * sr) / sr
    sine = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    # BS.1770: a 0 dBFS 1 kHz sine in one channel of stereo reads -3.01 LKFS, in both 0 LKFS
    assert measure_track(np.vstack([sine, 0 * sine]), sr)["integrated_lufs"] == pytest.approx(-3.01, abs=0.05)
    assert measure_track(np.vstack([sine, sine]), sr)["integrated_lufs"] == pytest.approx(0.0, abs=0.05)
    rng = np.random.default_rng(0)
    steps = rng.standard_normal((2, 30 * sr)).astype(np.float32) * 0.05
    steps[:, 10 * sr : 20 * sr] *= 10 ** (-10 / 20)  # 10 LU steps: LRA ~ 10 LU
    assert measure_track(steps, sr)["loudness_range_lu"] == pytest.approx(10.0, abs=0.3)
    dc = music(sr) + np.float32(0.02)
    assert measure_track(dc, sr)["dc_offset"] == pytest.approx(0.02, rel=0.01)


def test_k_weighting_matches_the_itu_filters_at_48k():
    from scipy.signal import freqz

    from adv.measurements._blocks import k_weighting_power

    f = np.array([20.0, 100.0, 1000.0, 2000.0, 10000.0, 20000.0])
    # BS.1770-4 Table 1 and 2 (48 kHz)
    _, h1 = freqz(
        [1.53512485958697, -2.69169618940638, 1.19839281085285],
        [1.0, -1.69065929318241, 0.73248077421585],
        worN=f,
        fs=48000,
    )
    _, h2 = freqz([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621], worN=f, fs=48000)
    np.testing.assert_allclose(10 * np.log10(k_weighting_power(48000, f)), 20 * np.log10(np.abs(h1 * h2)), atol=0.01)


# ------------------------------------------------------------------------------------------- noise, hum


def test_hum_50_vs_60_vs_none():
    sr = 48000
    x = music(sr, seconds=10.0)
    assert measure_track(x, sr)["hum_hz"] is None
    assert measure_track(add_hum(x, sr, 50, snr_db=10.0), sr)["hum_hz"] == 50
    assert measure_track(add_hum(x, sr, 60, snr_db=10.0), sr)["hum_hz"] == 60
    assert measure_window(x, sr).get("hum_hz") is None


def test_snr_tracks_added_noise():
    sr = 44100
    x = music(sr, seconds=10.0)
    rng = np.random.default_rng(1)
    clean = measure_window(x, sr)["snr_db"]
    est = {snr: measure_window(add_noise(x, snr, rng), sr)["snr_db"] for snr in (0.0, 10.0, 20.0)}
    for snr, e in est.items():
        assert abs(e - snr) <= 4.0, (snr, e)
    assert clean > est[20.0] + 5.0


# ------------------------------------------------------------------------------------------- spectrum


def test_spectral_deviation_against_a_fitted_reference(tmp_path):
    from scipy import signal

    from adv.measurements._blocks import block_spectra

    sr = 44100
    ref = spectrum.fit_reference([(music(sr, 10.0, s), sr) for s in (0, 1, 2)], source="test")
    assert ref["n_tracks"] == 3 and len(ref["level_db"]) == len(spectrum.NOMINAL)
    path = tmp_path / "ref.json"
    spectrum.save_reference(ref, path)
    levels = spectrum.reference_levels(path)

    def deviation(x):
        bs = block_spectra(x, sr)
        return spectrum.spectral_deviation(bs.freqs, bs.psd.mean(0), sr, levels)

    clean = music(sr, 10.0, 3)  # not among the fitted tracks
    dev_clean, _, _ = deviation(clean)
    # +12 dB peaking EQ at 2 kHz (RBJ cookbook, Q 1.4)
    A, w0 = 10 ** (12 / 40), 2 * np.pi * 2000 / sr
    alpha = np.sin(w0) / (2 * 1.4)
    b = [1 + alpha * A, -2 * np.cos(w0), 1 - alpha * A]
    a = [1 + alpha / A, -2 * np.cos(w0), 1 - alpha / A]
    dev_eq, band_hz, band_db = deviation(signal.lfilter(b, a, clean, axis=-1).astype(np.float32))
    assert dev_clean < 2.0 and dev_eq > dev_clean + 2.0
    assert 1600 <= band_hz <= 2500 and band_db > 8.0
    # the shipped reference file is complete (generic shape until re-fitted on the corpus)
    shipped = json.loads(spectrum.REFERENCE_PATH.read_text())
    assert len(shipped["level_db"]) == len(spectrum.NOMINAL) and shipped["source"]
    assert measure_track(clean, sr)["spectral_deviation_db"] > 0


# ------------------------------------------------------------------------------------------- robustness


def _check_result(r: dict, keys) -> None:
    assert tuple(r) == tuple(keys)
    json.dumps(r)
    for k, v in r.items():
        if k == "clipping_per_channel":
            assert all(
                set(d) == {"clipped_samples", "clipped_fraction", "longest_clip_run", "intersample_overs"} for d in v
            )
        else:
            assert v is None or type(v) in (bool, int, float), (k, type(v))
            assert not (isinstance(v, float) and not np.isfinite(v)), k


@pytest.mark.parametrize("name", ["silence", "dc", "mono", "short", "tiny", "empty", "six", "nan", "rate8k"])
def test_degenerate_inputs_give_valid_results(name):
    sr = 48000
    audio = {
        "silence": np.zeros((2, 3 * sr), np.float32),
        "dc": np.full((2, 3 * sr), 0.3, np.float32),
        "mono": music(sr)[:1],
        "short": music(sr)[:, : sr // 2],
        "tiny": music(sr)[:, :7],
        "empty": np.zeros((2, 0), np.float32),
        "six": np.vstack([music(sr)] * 3),
        "nan": np.where(np.arange(sr) % 97 == 0, np.nan, music(sr)[:, :sr]).astype(np.float32),
        "rate8k": music_like(2.0, 8000),
    }[name]
    rate = 8000 if name == "rate8k" else sr
    t, w = measure_track(audio, rate), measure_window(audio, rate)
    _check_result(t, TRACK_KEYS)
    _check_result(w, WINDOW_KEYS)
    if name == "silence":
        assert t["integrated_lufs"] is None and t["sample_peak_dbfs"] is None and t["cutoff_hz"] is None
        assert t["lr_correlation"] is None and t["clipped_samples"] == 0
    if name == "dc":
        assert t["dc_offset"] == pytest.approx(0.3) and t["clipped_samples"] == 0
        assert t["integrated_lufs"] is None and t["true_peak_dbtp"] == pytest.approx(t["sample_peak_dbfs"])
    if name == "mono":
        assert all(
            t[k] is None for k in ("lr_correlation", "channel_delay_ms", "polarity_inverted", "mono_downmix_loss_db")
        )
        assert t["integrated_lufs"] is not None
    if name == "short":
        assert t["integrated_lufs"] is not None and t["loudness_range_lu"] is None
    if name == "six":
        assert len(t["clipping_per_channel"]) == 6 and t["lr_correlation"] is not None
    if name == "nan":
        assert t["sample_peak_dbfs"] is not None and t["integrated_lufs"] is not None


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 88200, 96000, 192000])
def test_k_weighting_matches_pyloudnorm(rate):
    """The K-weighting biquads equal pyloudnorm's (the maintained reference) at any rate, and the
    ITU-R BS.1770-4 coefficients at 48 kHz."""
    from pyloudnorm import Meter

    from adv.measurements._blocks import k_weighting_biquads

    ours = k_weighting_biquads(rate)
    theirs = [(f.b, f.a) for f in Meter(rate, filter_class="DeMan")._filters.values()]
    for (b, a), (rb, ra) in zip(ours, theirs):
        assert np.allclose(b, rb, rtol=0, atol=1e-10) and np.allclose(a, ra, rtol=0, atol=1e-10)
    if rate == 48000:
        assert np.allclose(ours[0][0], [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-6)
        assert np.allclose(ours[1][1], [1.0, -1.99004745483398, 0.99007225036621], atol=1e-6)
