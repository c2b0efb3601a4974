"""Hand-crafted signal features of the raw (stereo) waveform.

They complement the CNN embedding, which only sees a mono log-mel (64 bins, 50 Hz-14 kHz) and is
therefore blind to stereo/phase damage, weak above 14 kHz and at sample-level clipping.

Five groups (see :data:`FEATURE_GROUPS`):

* ``stereo``   L/R correlation, side/mid energy, mono-downmix loss, inter-channel delay (GCC-PHAT on
                the frame-averaged cross spectrum), per-band correlation / coherence / side ratio,
                anti-phase energy fraction, cross-spectrum phase spread, channel balance.
* ``highband`` codec detection: long-term spectral cut-off ("falls steeply and stays down"), occupied
                bandwidth, depth/steepness of the drop, 8-16 kHz band ratios, spectral holes, high
                band energy flux, per-frame bandwidth statistics.
* ``clipping`` peak level, crest factor, near-peak / full-scale sample fractions, flat runs, the
                amplitude histogram's edge spike, kurtosis and high-percentile amplitude ratios.
* ``spectral`` level, spectral shape (centroid, roll-off, band ratios, slope, curvature, residual
                of a smooth fit), flatness per band, noise floor per band, tilt variance, mains hum.
* ``eqshape``  the long-term spectrum in 16 fixed half-octave bands (50 Hz - 12.8 kHz) relative to
                its 250 Hz - 4 kHz level, plus the lowest and highest frequency within 25 dB of that
                level: the head learns from clean music what a normal spectral balance looks like,
                and EQ / band-limiting shows up as a departure from it.

Everything is computed from ONE short-time Fourier transform (~32 ms frames, 50 % overlap, Hann) of
each channel plus a few cheap time-domain passes; a 10-s stereo 32-kHz clip takes ~10 ms of one core.

Mono input: the stereo group takes the values of a perfectly identical L=R signal (correlation 1,
side ratio at its floor, delay 0, ...). Silence, DC and very short inputs give finite values.
All level-type features are ratios in dB, so the features do not depend on the absolute gain
except for the explicitly absolute ones (``sp_rms_dbfs``, ``clip_peak_dbfs``, ``clip_frac_fullscale``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft as _fft
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["FEATURE_GROUPS", "FEATURE_NAMES", "compute_signal_features"]

_STEREO_BANDS = (("low", 0.0, 250.0), ("mid", 250.0, 2000.0), ("high", 2000.0, 6000.0), ("vhigh", 6000.0, 1e9))
_HB_BANDS = (
    ("8_11k", 8000.0, 11000.0),
    ("11_13k", 11000.0, 13000.0),
    ("13_14k5", 13000.0, 14500.0),
    ("14k5_16k", 14500.0, 16000.0),
)
_FLAT_BANDS = (("lo", 50.0, 500.0), ("lmid", 500.0, 2000.0), ("hmid", 2000.0, 8000.0), ("hi", 8000.0, 16000.0))
_EQ_BANDS = 16  # half-octave bands from 50 Hz (the last ends at 12.8 kHz)
_EQ_FLOOR_DB = -80.0
_FLOOR_BANDS = (("full", 0.0, 1e9), ("low", 50.0, 500.0), ("mid", 500.0, 4000.0), ("high", 4000.0, 16000.0))

FEATURE_GROUPS: dict[str, list[str]] = {
    "stereo": [
        "st_corr",  # Pearson L/R correlation, whole clip
        "st_corr_p10",  # 10th percentile of the correlation over 0.5-s frames
        "st_side_mid_db",  # side/mid energy ratio, dB, floor -60
        "st_downmix_loss_db",  # (P(L)+P(R))/2 over P((L+R)/2), dB (>= 0)
        "st_delay_abs_ms",  # |inter-channel delay| from the GCC-PHAT peak within +-3 ms
        "st_delay_peak",  # signed height of that (whitened) cross-correlation peak, 1 = identical
        "st_corr_at_delay",  # Pearson correlation after compensating the estimated delay
        "st_corr_gain",  # st_corr_at_delay - st_corr
        *[f"st_band_corr_{b}" for b, _, _ in _STEREO_BANDS],  # Re-correlation per band
        *[f"st_band_coh_{b}" for b, _, _ in _STEREO_BANDS],  # magnitude-squared coherence per band
        *[f"st_band_side_db_{b}" for b, _, _ in _STEREO_BANDS],  # side/mid ratio per band
        "st_antiphase_frac",  # power fraction of frequency bins whose long-term |L+R|^2 < 0.1 |L-R|^2
        "st_phase_absmean",  # power-weighted mean |phase| of the cross spectrum, / pi
        "st_balance_db",  # |L/R level difference|, dB
    ],
    "highband": [
        "hb_cutoff_khz",  # where the long-term spectrum falls steeply and stays down (Nyquist if none)
        "hb_drop_db",  # depth of the drop at that cut-off (0 if none)
        "hb_min_slope_db_oct",  # steepest long-term spectral slope between 2 kHz and 0.9 Nyquist
        "hb_bw30_khz",  # highest frequency within 30 dB of the 1-4 kHz level
        "hb_bw60_khz",  # ... within 60 dB
        *[f"hb_ratio_{b}_db" for b, _, _ in _HB_BANDS],  # band energy vs 1-8 kHz
        "hb_hole_frac",  # fraction of 8 kHz..cut-off subband frames > 20 dB below their median
        "hb_hole_spectral_frac",  # ... > 20 dB below the median of the same frame's subbands
        "hb_hole_isolated_frac",  # holes whose neighbouring frames are not holes
        "hb_flux_db",  # mean |frame-to-frame change| of the 8 kHz..cut-off band energy
        "hb_flux_rel_db",  # hb_flux_db minus the same for 1-8 kHz
        "hb_ratio_std_db",  # std over frames of (8k..cut-off energy - 1-8k energy)
        "hb_frame_bw_median_khz",  # median per-frame bandwidth (-50 dB re the frame's 1-4 kHz level)
        "hb_frame_bw_std_khz",  # its standard deviation
    ],
    "clipping": [
        "clip_peak_dbfs",
        "clip_crest_db",
        "clip_frac_near_peak",  # samples within 0.1 % of the channel's peak
        "clip_frac_fullscale",  # samples with |x| >= 0.999
        "clip_flat_frac",  # samples in runs of >= 3 equal samples above half the peak
        "clip_longest_run_log2",  # log2 of the longest such run (samples)
        "clip_edge_ratio_db",  # density of |x| in the top 1 % of the peak vs 95-99 %
        "clip_kurtosis_log10",
        "clip_p999_p99",  # ratio of 99.9th to 99th percentile of |x|
        "clip_p99_rms_db",  # 99th percentile of |x| over RMS, dB
    ],
    "spectral": [
        "sp_rms_dbfs",
        "sp_centroid_khz",
        "sp_rolloff85_khz",
        "sp_rolloff95_khz",
        "sp_flatness_db",  # per-frame spectral flatness 50 Hz-8 kHz, dB, mean over active frames
        *[f"sp_flatness_{b}_db" for b, _, _ in _FLAT_BANDS],
        "sp_low100_db",  # < 100 Hz energy vs total
        "sp_low300_db",  # < 300 Hz
        "sp_tel_db",  # 300-3400 Hz
        "sp_hi4k_db",  # > 4 kHz
        "sp_slope_db_oct",  # linear fit of the long-term spectrum vs log2 f (80 Hz-10 kHz)
        "sp_curvature_db_oct2",  # quadratic coefficient of that fit
        "sp_resid_std_db",  # residual of the quadratic fit (peaking / shelving EQ)
        "sp_resid_max_db",
        "sp_tilt_std",  # std over frames of the per-frame slope
        *[f"sp_floor_{b}_db" for b, _, _ in _FLOOR_BANDS],  # p10 - median of frame energy per band
        "sp_hum_db",  # 50/60 Hz (+ harmonics) peak over neighbouring bins
    ],
    "eqshape": [
        *[f"eq_band{j:02d}_db" for j in range(_EQ_BANDS)],  # band j: 50 * 2**(j/2) .. 50 * 2**((j+1)/2) Hz
        "eq_low_edge_oct",  # log2(f / 50 Hz) of the lowest band within 25 dB of the reference
        "eq_high_edge_oct",  # ... of the highest such band
    ],
}
FEATURE_NAMES: list[str] = [name for names in FEATURE_GROUPS.values() for name in names]

# values of the stereo group for a perfectly identical L=R signal (used for mono input)
_NEUTRAL_STEREO = {
    "st_corr": 1.0,
    "st_corr_p10": 1.0,
    "st_side_mid_db": -60.0,
    "st_downmix_loss_db": 0.0,
    "st_delay_abs_ms": 0.0,
    "st_delay_peak": 1.0,
    "st_corr_at_delay": 1.0,
    "st_corr_gain": 0.0,
    **{f"st_band_corr_{b}": 1.0 for b, _, _ in _STEREO_BANDS},
    **{f"st_band_coh_{b}": 1.0 for b, _, _ in _STEREO_BANDS},
    **{f"st_band_side_db_{b}": -60.0 for b, _, _ in _STEREO_BANDS},
    "st_antiphase_frac": 0.0,
    "st_phase_absmean": 0.0,
    "st_balance_db": 0.0,
}

_REF_SR = 32000
_REF_NFFT = 1024  # 32 ms at 32 kHz; scaled with the sample rate so bins stay ~31.25 Hz
_SIDE_FLOOR_DB = -60.0
_EPS = 1e-30
_SILENT_VAR = 1e-14  # per-sample power below which a channel counts as silent (-140 dBFS)
_LN10_10 = 10.0 / np.log(10.0)


# ----------------------------------------------------------------------------------------------
# helpers


def _db(num: float, den: float, lo: float, hi: float) -> float:
    """10 log10(num/den) clipped to [lo, hi]; 0/0 gives 0 dB (inside the clip range)."""
    v = 10.0 * np.log10((max(float(num), 0.0) + _EPS) / (max(float(den), 0.0) + _EPS))
    return float(min(max(v, lo), hi))


def _side_db(side: float, mid: float, silent: float) -> float:
    """Side/mid ratio in dB with the floor as the neutral value (identical or silent channels)."""
    if side + mid <= silent:
        return _SIDE_FLOOR_DB
    return _db(side, mid, _SIDE_FLOOR_DB, 40.0)


def _corr_from_moments(sab, saa, sbb, silent):
    """Correlation from (co)variances; both silent -> 1 (identical), one silent -> 0. Vectorised."""
    sab, saa, sbb = np.asarray(sab, np.float64), np.asarray(saa, np.float64), np.asarray(sbb, np.float64)
    qa, qb = saa > silent, sbb > silent
    den = np.sqrt(np.where(qa & qb, saa * sbb, 1.0))
    c = np.where(qa & qb, sab / den, np.where(~qa & ~qb, 1.0, 0.0))
    return np.clip(c, -1.0, 1.0)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum's own loop: np.dot would go to a (possibly multi-threaded) BLAS, which is much slower
    # for one vector product when the BLAS threads have to wake up
    return float(np.einsum("i,i->", a, b))


@lru_cache(maxsize=16)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def _bin_range(lo_hz: float, hi_hz: float, df: float, k: int, first: int = 0) -> tuple[int, int]:
    a = max(int(np.ceil(lo_hz / df - 1e-9)), first)
    b = min(int(np.ceil(hi_hz / df - 1e-9)), k)
    return a, max(a, b)


@lru_cache(maxsize=16)
def _half_octave_bands(k: int, df: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start bins, bin counts and centre frequencies of half-octave bands from 50 Hz to Nyquist."""
    nyq = (k - 1) * df
    edges = 50.0 * 2.0 ** (np.arange(0, 60) / 2.0)
    edges = edges[edges < nyq]
    starts = np.unique(np.ceil(edges / df - 1e-9).astype(np.int64))
    starts = starts[starts < k]
    ends = np.append(starts[1:], k)
    counts = ends - starts
    centres = np.sqrt(np.maximum(starts, 1) * df * np.maximum(ends - 1, 1) * df)
    return starts, counts, centres


def _prepare(audio) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"audio must be [channels, samples], got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("audio has no channels")
    if x.shape[0] > 2:
        x = x[:2]
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(x)


# ----------------------------------------------------------------------------------------------
# groups


def _moments(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float, float, int]:
    """Raw sums (a, b, aa, bb, ab) of two equally long float32 vectors, float64 results."""
    return (float(a.sum(dtype=np.float64)), float(b.sum(dtype=np.float64)), _dot(a, a), _dot(b, b), _dot(a, b), a.size)


def _corr_from_sums(sa, sb, saa, sbb, sab, n):
    """Pearson correlation from raw sums (vectorised); silence rules as in _corr_from_moments."""
    sa, sb, saa, sbb, sab = (np.asarray(v, np.float64) for v in (sa, sb, saa, sbb, sab))
    ma, mb = sa / n, sb / n
    vaa = saa / n - ma * ma
    vbb = sbb / n - mb * mb
    vab = sab / n - ma * mb
    # a (near-)constant channel counts as silent; the relative term absorbs float32 rounding
    silent_a = vaa <= 1e-6 * saa / n + _SILENT_VAR
    silent_b = vbb <= 1e-6 * sbb / n + _SILENT_VAR
    vaa = np.where(silent_a, 0.0, vaa)
    vbb = np.where(silent_b, 0.0, vbb)
    return _corr_from_moments(vab, vaa, vbb, 0.0)


def _stereo_features(
    x: np.ndarray, spec: np.ndarray, pch: np.ndarray, sr: int, n_fft: int, df: float
) -> dict[str, float]:
    """``pch``: per-channel power summed over frames, [2, K]."""
    out: dict[str, float] = {}
    left, right = x[0], x[1]
    n = left.size

    # 0.5-s frame sums; the whole-clip sums are their total plus the tail
    fl = max(int(sr // 2), 1)
    nf = n // fl
    a = left[: nf * fl].reshape(nf, fl)
    b = right[: nf * fl].reshape(nf, fl)
    fs = [
        a.sum(axis=1, dtype=np.float64),
        b.sum(axis=1, dtype=np.float64),
        np.einsum("ij,ij->i", a, a).astype(np.float64),
        np.einsum("ij,ij->i", b, b).astype(np.float64),
        np.einsum("ij,ij->i", a, b).astype(np.float64),
    ]
    tail = _moments(left[nf * fl :], right[nf * fl :])
    tot = [float(v.sum()) + t for v, t in zip(fs, tail[:5])]
    corr = float(_corr_from_sums(*tot, n))
    out["st_corr"] = corr
    out["st_corr_p10"] = float(np.percentile(_corr_from_sums(*fs, fl), 10)) if nf >= 1 else corr

    # mid / side powers (not mean-removed)
    sll, srr, slr = tot[2] / n, tot[3] / n, tot[4] / n
    p_mid = max((sll + srr + 2.0 * slr) / 4.0, 0.0)
    p_side = max((sll + srr - 2.0 * slr) / 4.0, 0.0)
    out["st_side_mid_db"] = _side_db(p_side, p_mid, _SILENT_VAR)
    if p_mid + p_side <= _SILENT_VAR:
        out["st_downmix_loss_db"] = 0.0
    else:
        out["st_downmix_loss_db"] = _db(p_mid + p_side, p_mid, 0.0, 60.0)
    if sll <= _SILENT_VAR and srr <= _SILENT_VAR:
        out["st_balance_db"] = 0.0
    else:
        out["st_balance_db"] = abs(_db(sll, srr, -60.0, 60.0))

    # frame-summed cross spectrum
    g = (spec[0] * np.conj(spec[1])).sum(axis=0).astype(np.complex128)
    pl = pch[0].astype(np.float64)
    pr = pch[1].astype(np.float64)
    k = pl.size
    n_frames = spec.shape[1]
    silent_spec = _SILENT_VAR * n_fft * n_frames * 0.375  # Hann: sum w^2 = 0.375 n_fft
    gr = g.real
    ga = np.abs(g)
    geo = np.sqrt(pl * pr)

    # anti-phase bins: |L+R|^2 < 0.1 |L-R|^2 in the long-term average, weighted by power
    ps = pl[1:] + pr[1:]
    tot_p = float(ps.sum())
    if tot_p > silent_spec:
        anti = (ps + 2.0 * gr[1:]) < 0.1 * (ps - 2.0 * gr[1:])
        out["st_antiphase_frac"] = float(ps[anti].sum() / tot_p)
    else:
        out["st_antiphase_frac"] = 0.0

    for name, lo, hi in _STEREO_BANDS:
        ia, ib = _bin_range(lo, hi, df, k, first=1)
        s_l, s_r, s_c = pl[ia:ib].sum(), pr[ia:ib].sum(), gr[ia:ib].sum()
        out[f"st_band_corr_{name}"] = float(_corr_from_moments(s_c, s_l, s_r, silent_spec))
        wsum = geo[ia:ib].sum()
        if wsum > silent_spec:
            gg = geo[ia:ib]
            num = np.divide(ga[ia:ib] ** 2, gg, out=np.zeros_like(gg), where=gg > 0).sum()
            out[f"st_band_coh_{name}"] = float(min(max(num / wsum, 0.0), 1.0))
        else:
            out[f"st_band_coh_{name}"] = 1.0 if (s_l <= silent_spec and s_r <= silent_spec) else 0.0
        out[f"st_band_side_db_{name}"] = _side_db(
            max((s_l + s_r - 2 * s_c) / 4, 0.0), max((s_l + s_r + 2 * s_c) / 4, 0.0), silent_spec
        )

    gsum = ga[1:].sum()
    if gsum > silent_spec:
        out["st_phase_absmean"] = float((ga[1:] * np.abs(np.angle(g[1:]))).sum() / gsum / np.pi)
    else:
        out["st_phase_absmean"] = 0.0

    # delay: GCC-PHAT on the frame-summed cross spectrum, lags within +-3 ms
    reg = 1e-3 * geo.mean() + _EPS
    w = g / (geo + reg)
    w[0] = 0.0
    cc = _fft.irfft(w, n=n_fft)
    norm = float(_fft.irfft(np.abs(w), n=n_fft)[0])
    maxlag = int(min(round(0.003 * sr), n_fft // 2 - 2))
    lags = np.concatenate([np.arange(0, maxlag + 1), np.arange(-maxlag, 0)])
    cand = cc[lags % n_fft]
    i = int(np.argmax(np.abs(cand)))
    lag = int(lags[i])
    sgn = 1.0 if cand[i] >= 0 else -1.0
    y0, ym, yp = sgn * cc[lag % n_fft], sgn * cc[(lag - 1) % n_fft], sgn * cc[(lag + 1) % n_fft]
    den = ym - 2.0 * y0 + yp
    frac = float(np.clip(0.5 * (ym - yp) / den, -0.5, 0.5)) if den < -1e-300 else 0.0
    out["st_delay_abs_ms"] = round(abs(lag + frac) * 1000.0 / sr, 6)  # exact 0 for identical channels
    out["st_delay_peak"] = float(np.clip(cand[i] / norm, -1.0, 1.0)) if norm > 1e-12 else 1.0

    # cc[tau] = sum_n l[n + tau] r[n]
    if lag == 0 or abs(lag) >= n:
        c_lag = corr
    elif lag > 0:
        c_lag = float(_corr_from_sums(*_moments(left[lag:], right[: n - lag])))
    else:
        c_lag = float(_corr_from_sums(*_moments(left[: n + lag], right[-lag:])))
    out["st_corr_at_delay"] = c_lag
    out["st_corr_gain"] = c_lag - corr
    return out


def _estimate_cutoff(ldb: np.ndarray, df: float) -> tuple[int | None, float, np.ndarray, np.ndarray]:
    """Cut-off bin of the smoothed long-term spectrum in dB.

    A bin k is a cut-off candidate when (a) the local slope over +-1/24 octave is steeper than
    -60 dB/octave and (b) everything from a quarter octave above k (at most ~200 Hz below Nyquist)
    up to Nyquist stays at least 15 dB below the mean level of the 1/6..1/24 octave just below k.
    The first candidate is refined to the first bin that lies 6 dB below that reference level (the
    filter's "-6 dB point").
    Returns (bin or None, drop depth in dB, the candidate bins, their slopes).
    """
    k = ldb.size
    kmin = max(int(np.ceil(1000.0 / df)), 8)
    if kmin >= k - 2:
        return None, 0.0, np.zeros(0, np.int64), np.zeros(0)
    ks = np.arange(kmin, k - 1)
    lo = np.minimum(np.round(ks * 2.0 ** (-1 / 24)).astype(np.int64), ks - 1)
    hi = np.maximum(np.minimum(np.round(ks * 2.0 ** (1 / 24)).astype(np.int64), k - 1), ks + 1)
    slope = (ldb[hi] - ldb[lo]) / np.log2(hi / lo)
    csum = np.concatenate([[0.0], np.cumsum(ldb)])
    a = np.minimum(np.floor(ks * 2.0 ** (-1 / 6)).astype(np.int64), lo - 1)
    b = lo + 1
    ref = (csum[b] - csum[a]) / (b - a)
    env = np.maximum.accumulate(ldb[::-1])[::-1]  # max of everything from bin k upwards
    # the region that must stay down spans at least ~6 bins below Nyquist (a digital filter's
    # zero at Nyquist alone is no cut-off)
    above = np.minimum(np.round(ks * 2.0**0.25).astype(np.int64), k - 7)
    ok = (slope <= -60.0) & (ref - env[np.maximum(above, 0)] >= 15.0) & (above >= ks + 4)
    if not ok.any():
        return None, 0.0, ks, slope
    j = int(np.argmax(ok))
    below = np.nonzero(ldb[lo[j] :] < ref[j] - 6.0)[0]
    cut = int(lo[j] + below[0]) if below.size else int(ks[j])
    far = min(int(round(cut * 2.0**0.125)), k - 1)
    drop = float(ref[j] - env[far])
    return cut, drop, ks, slope


def _highband_features(
    ltas: np.ndarray, sub: np.ndarray, sub_db: np.ndarray, sub_w: float, active: np.ndarray, df: float, nyq: float
) -> tuple[dict[str, float], float]:
    out: dict[str, float] = {}
    k = ltas.size
    floor = ltas.max() * 1e-13 + _EPS
    padded = np.pad(ltas, 2, mode="edge")
    smooth = np.convolve(padded, np.full(5, 0.2), mode="valid")
    ldb = 10.0 * np.log10(smooth + floor)

    cut_bin, drop, ks, slope = _estimate_cutoff(ldb, df)
    cutoff = nyq if cut_bin is None else cut_bin * df
    out["hb_cutoff_khz"] = cutoff / 1000.0
    out["hb_drop_db"] = float(np.clip(drop, 0.0, 150.0))
    sel = (ks * df >= 2000.0) & (ks * df <= 0.9 * nyq)
    out["hb_min_slope_db_oct"] = float(np.clip(slope[sel].min(), -400.0, 50.0)) if sel.any() else 0.0

    a, b = _bin_range(1000.0, 4000.0, df, k)
    ref14 = 10.0 * np.log10(ltas[a:b].mean() + floor) if b > a else ldb.max()
    for x_db, name in ((30.0, "hb_bw30_khz"), (60.0, "hb_bw60_khz")):
        idx = np.nonzero(ldb >= ref14 - x_db)[0]
        out[name] = (idx[-1] * df if idx.size else nyq) / 1000.0

    a18, b18 = _bin_range(1000.0, 8000.0, df, k)
    p18 = ltas[a18:b18].sum()
    for name, lo, hi in _HB_BANDS:
        a, b = _bin_range(lo, hi, df, k)
        out[f"hb_ratio_{name}_db"] = _db(ltas[a:b].sum(), p18, -120.0, 20.0)

    # holes / flux / per-frame bandwidth on 250-Hz subbands
    nsub = sub_db.shape[1]
    s_lo = int(np.ceil(8000.0 / sub_w))
    s_hi = min(int(np.floor(min(cutoff, 16000.0) / sub_w)), nsub)
    m_lo, m_hi = int(np.ceil(1000.0 / sub_w)), min(int(np.floor(8000.0 / sub_w)), nsub)
    act = sub_db[active]
    act_lin = sub[active]
    hb_keys = (
        "hb_hole_frac",
        "hb_hole_spectral_frac",
        "hb_hole_isolated_frac",
        "hb_flux_db",
        "hb_flux_rel_db",
        "hb_ratio_std_db",
    )
    if s_hi - s_lo >= 2 and m_hi > m_lo and act.shape[0] >= 3:
        hb = act[:, s_lo:s_hi]
        d = hb - np.median(hb, axis=0)
        holes = d < -20.0
        out["hb_hole_frac"] = float(holes.mean())
        # holes within a frame: > 20 dB below the median of the frame's high subbands
        fmed = np.median(hb, axis=1, keepdims=True)
        out["hb_hole_spectral_frac"] = float((hb < fmed - 20.0).mean())
        out["hb_hole_isolated_frac"] = float((holes[1:-1] & (d[:-2] > -6.0) & (d[2:] > -6.0)).mean())
        fl = float(ltas.max()) * 1e-12 + _EPS
        e_hf = 10.0 * np.log10(act_lin[:, s_lo:s_hi].sum(axis=1) + fl)
        e_mid = 10.0 * np.log10(act_lin[:, m_lo:m_hi].sum(axis=1) + fl)
        flux_hf = float(np.abs(np.diff(e_hf)).mean())
        out["hb_flux_db"] = flux_hf
        out["hb_flux_rel_db"] = flux_hf - float(np.abs(np.diff(e_mid)).mean())
        out["hb_ratio_std_db"] = float(np.std(e_hf - e_mid))
    else:
        for key in hb_keys:
            out[key] = 0.0

    r_lo, r_hi = int(np.ceil(1000.0 / sub_w)), min(int(np.floor(4000.0 / sub_w)), nsub)
    if r_hi > r_lo and act.shape[0] >= 1:
        ref_t = 10.0 * np.log10(act_lin[:, r_lo:r_hi].mean(axis=1) + float(ltas.max()) * 8e-13 + _EPS)
        mask = act >= (ref_t - 50.0)[:, None]
        top = nsub - 1 - np.argmax(mask[:, ::-1], axis=1)
        bw = np.where(mask.any(axis=1), (top + 1) * sub_w, 0.0) / 1000.0
        out["hb_frame_bw_median_khz"] = float(np.median(bw))
        out["hb_frame_bw_std_khz"] = float(np.std(bw))
    else:
        out["hb_frame_bw_median_khz"] = nyq / 1000.0
        out["hb_frame_bw_std_khz"] = 0.0
    return out, cutoff


def _clipping_features(x: np.ndarray, sample_rate: int = _REF_SR) -> tuple[dict[str, float], float]:
    """Clipping group; also returns the mean square of the clip (for the RMS level). Run lengths are
    counted in samples at ``_REF_SR`` (the rate the model learnt them at), whatever the clip's rate."""
    out: dict[str, float] = {}
    c, n = x.shape
    a = np.abs(x)
    pk = a.max(axis=1).astype(np.float64)  # [C]
    gpk = float(pk.max())
    s1 = x.sum(axis=1, dtype=np.float64)
    s2 = np.einsum("ij,ij->i", x, x).astype(np.float64)
    ms = s2 / n
    ms_all = float(ms.mean())
    rms = float(np.sqrt(ms_all))
    out["clip_peak_dbfs"] = float(np.clip(20.0 * np.log10(gpk + 1e-12), -120.0, 20.0))
    out["clip_crest_db"] = float(np.clip(20.0 * np.log10((gpk + 1e-12) / (rms + 1e-12)), 0.0, 80.0))

    hi = a > (0.5 * pk).astype(np.float32)[:, None]  # samples above half the channel's peak
    nb = 2048  # histogram bins over [0, peak]
    near, edge, full, p999_p99, p99_rms = [], [], [], [], []
    for ch in range(c):
        if pk[ch] <= 1e-7:
            near.append(0.0)
            edge.append(0.0)
            full.append(0.0)
            p999_p99.append(1.0)
            p99_rms.append(0.0)
            continue
        ac = a[ch]
        p = np.float32(pk[ch])
        near.append(np.count_nonzero(ac >= np.float32(0.999) * p) / n)
        full.append(np.count_nonzero(ac >= 0.999) / n if pk[ch] >= 0.999 else 0.0)
        # density of |x| in the top 1 % of the peak vs in 95-99 % (per 1 % width, +1 pseudo-count)
        n_top = np.count_nonzero(ac >= np.float32(0.99) * p)
        n_next = np.count_nonzero(ac >= np.float32(0.95) * p) - n_top
        edge.append(_db(n_top / 1.0 + 1.0, n_next / 4.0 + 1.0, -40.0, 40.0))
        # high percentiles from a histogram of every 4th sample
        sub = ac[::4]
        hs = np.bincount((sub * np.float32((nb - 1e-3) / pk[ch])).astype(np.int32), minlength=nb)[:nb]
        from_top = np.cumsum(hs[::-1])
        i99 = nb - 1 - int(np.searchsorted(from_top, 0.01 * sub.size))
        i999 = nb - 1 - int(np.searchsorted(from_top, 0.001 * sub.size))
        v99, v999 = (i99 + 0.5) / nb * pk[ch], (i999 + 0.5) / nb * pk[ch]
        p999_p99.append(float(np.clip(v999 / v99, 1.0, 20.0)))
        p99_rms.append(float(np.clip(20 * np.log10(v99 / (np.sqrt(ms[ch]) + 1e-12)), 0.0, 60.0)))
    out["clip_frac_near_peak"] = float(max(near))
    out["clip_frac_fullscale"] = float(max(full))
    out["clip_edge_ratio_db"] = float(max(edge))
    out["clip_p999_p99"] = float(min(p999_p99))
    out["clip_p99_rms_db"] = float(min(p99_rms))

    # flat runs (>= 3 equal samples, tolerance 1e-6 of the peak) above half the peak; two samples
    # within the tolerance are both above half the peak when one is
    flat_frac, longest = 0.0, 1
    if n >= 3:
        d = np.subtract(x[:, 1:], x[:, :-1], out=a[:, :-1])  # reuse the |x| buffer
        np.abs(d, out=d)
        pair = d <= (1e-6 * pk).astype(np.float32)[:, None]
        pair &= hi[:, 1:]  # pair[i]: samples i, i+1 equal
        for ch in range(c):
            idx = np.flatnonzero(pair[ch])
            if idx.size == 0:
                continue
            brk = np.flatnonzero(np.diff(idx) != 1)
            lens = np.diff(np.concatenate(([-1], brk, [idx.size - 1])))  # equal pairs per run
            longest = max(longest, int(lens.max()) + 1)
            flat_frac = max(flat_frac, float((lens[lens >= 2] + 1).sum()) / n)
    out["clip_flat_frac"] = flat_frac
    out["clip_longest_run_log2"] = float(np.log2(max(1.0, longest * _REF_SR / sample_rate)))

    # kurtosis about the mean (least kurtotic live channel), from raw moments
    x2 = np.multiply(x, x, out=a)
    s3 = np.einsum("ij,ij->i", x2, x).astype(np.float64)
    s4 = np.einsum("ij,ij->i", x2, x2).astype(np.float64)
    kurts = []
    for ch in range(c):
        mu, e2, e3, e4 = s1[ch] / n, s2[ch] / n, s3[ch] / n, s4[ch] / n
        m2 = e2 - mu * mu
        if m2 > 1e-6 * e2 + _SILENT_VAR:
            m4 = e4 - 4 * mu * e3 + 6 * mu * mu * e2 - 3 * mu**4
            kurts.append(m4 / (m2 * m2))
    kurt = min(kurts) if kurts else 3.0
    out["clip_kurtosis_log10"] = float(np.log10(np.clip(kurt, 1.0, 1e4)))
    return out, ms_all


def _hum_db(x: np.ndarray, sr: int) -> float:
    """Mains hum: 50 or 60 Hz harmonic peaks over the median of neighbouring bins (dB)."""
    q = max(1, int(round(sr / 2000.0)))
    fs = sr / q
    m = x.shape[1] // q
    if m < 256:
        return 0.0
    y = np.add.reduceat(x[:, : m * q], np.arange(0, m * q, q), axis=1)  # boxcar decimation
    y -= y.mean(axis=1, keepdims=True)
    nseg = 4096 if m >= 4096 else 1 << int(np.floor(np.log2(m)))
    segs = sliding_window_view(y, nseg, axis=1)[:, :: nseg // 2]
    s = np.abs(_fft.rfft(segs * _hann(nseg), axis=-1)) ** 2
    s = s.sum(axis=(0, 1), dtype=np.float64)
    res = fs / nseg
    f = np.arange(s.size) * res
    tiny = s.mean() * 1e-12 + _EPS
    best = -20.0
    for base in (50.0, 60.0):
        scores = []
        for h in range(1, 5):
            fh = base * h
            if fh > 0.45 * fs:
                break
            dist = np.abs(f - fh)
            peak = s[dist <= max(1.0, 0.6 * res)]
            neigh = s[(dist >= max(3.0, 2.5 * res)) & (dist <= max(10.0, 8.0 * res))]
            if peak.size == 0 or neigh.size < 2:
                continue
            scores.append(10.0 * np.log10((peak.max() + tiny) / (np.median(neigh) + tiny)))
        if scores:
            scores.sort(reverse=True)
            best = max(best, float(np.mean(scores[:2])))
    return float(np.clip(best, -20.0, 80.0))


def _spectral_features(
    x: np.ndarray,
    ms: float,
    pm: np.ndarray,
    ltas: np.ndarray,
    band_sum: np.ndarray,
    active: np.ndarray,
    df: float,
    nyq: float,
    sr: int,
) -> dict[str, float]:
    out: dict[str, float] = {}
    k = ltas.size
    freqs = np.arange(k) * df
    out["sp_rms_dbfs"] = float(np.clip(10.0 * np.log10(ms + 1e-12), -120.0, 20.0))

    p = ltas[1:]
    tot = p.sum()
    if tot > _EPS:
        out["sp_centroid_khz"] = float((p * freqs[1:]).sum() / tot / 1000.0)
        cum = np.cumsum(p) / tot
        out["sp_rolloff85_khz"] = float(freqs[1 + min(int(np.searchsorted(cum, 0.85)), p.size - 1)] / 1000.0)
        out["sp_rolloff95_khz"] = float(freqs[1 + min(int(np.searchsorted(cum, 0.95)), p.size - 1)] / 1000.0)
    else:
        out["sp_centroid_khz"] = out["sp_rolloff85_khz"] = out["sp_rolloff95_khz"] = 0.0

    # flatness per frame (geometric over arithmetic mean of the power), mean over active frames
    floor = np.float32(float(ltas.max()) * 1e-10 + _EPS)
    a_all, b_all = _bin_range(50.0, 16000.0, df, k)
    pa = (pm[:, a_all:b_all] if active.all() else pm[active, a_all:b_all]) + floor
    lpa = np.log(pa)
    band_l, band_p, band_n = [], [], []
    for name, lo, hi in _FLAT_BANDS:
        ia, ib = _bin_range(lo, hi, df, k)
        ia, ib = max(ia, a_all) - a_all, min(ib, b_all) - a_all
        if ib - ia >= 2 and pa.shape[0]:
            band_l.append(lpa[:, ia:ib].sum(axis=1, dtype=np.float64))
            band_p.append(pa[:, ia:ib].sum(axis=1, dtype=np.float64))
            band_n.append(ib - ia)
            fl = _LN10_10 * (band_l[-1] / band_n[-1] - np.log(band_p[-1] / band_n[-1]))
            out[f"sp_flatness_{name}_db"] = float(np.clip(fl.mean(), -60.0, 0.0))
        else:
            out[f"sp_flatness_{name}_db"] = 0.0
            band_l.append(None)
    # 50 Hz - 8 kHz = the first three bands
    if all(v is not None for v in band_l[:3]):
        cnt = float(sum(band_n[:3]))
        fl = _LN10_10 * (sum(band_l[:3]) / cnt - np.log(sum(band_p[:3]) / cnt))
        out["sp_flatness_db"] = float(np.clip(fl.mean(), -60.0, 0.0))
    else:
        out["sp_flatness_db"] = 0.0

    for key, lo, hi in (
        ("sp_low100_db", 0.0, 100.0),
        ("sp_low300_db", 0.0, 300.0),
        ("sp_tel_db", 300.0, 3400.0),
        ("sp_hi4k_db", 4000.0, 1e9),
    ):
        a, b = _bin_range(lo, hi, df, k, first=1)
        out[key] = _db(ltas[a:b].sum(), tot, -120.0, 0.0)

    # smooth fits over half-octave bands (80 Hz - 10 kHz)
    starts, counts, centres = _half_octave_bands(k, df)
    lt_band = np.add.reduceat(ltas, starts) / counts
    bfloor = float(lt_band.max()) * 1e-12 + _EPS
    sel = (centres >= 80.0) & (centres <= min(10000.0, 0.9 * nyq))
    keys = ("sp_slope_db_oct", "sp_curvature_db_oct2", "sp_resid_std_db", "sp_resid_max_db", "sp_tilt_std")
    if sel.sum() >= 4:
        xo = np.log2(centres[sel] / 1000.0)
        yb = 10.0 * np.log10(lt_band[sel] + bfloor)
        out["sp_slope_db_oct"] = float(np.polyfit(xo, yb, 1)[0])
        c2 = np.polyfit(xo, yb, 2)
        resid = yb - np.polyval(c2, xo)
        out["sp_curvature_db_oct2"] = float(c2[0])
        out["sp_resid_std_db"] = float(resid.std())
        out["sp_resid_max_db"] = float(np.abs(resid).max())
        xc = xo - xo.mean()
        beta = xc / (xc * xc).sum()
        fb = band_sum[active][:, sel] / counts[sel]
        fdb = 10.0 * np.log10(fb + bfloor)
        tilts = (fdb * beta).sum(axis=1)
        out["sp_tilt_std"] = float(tilts.std()) if tilts.size else 0.0
    else:
        for key in keys:
            out[key] = 0.0

    # noise floor: 10th percentile of frame energy relative to its median, per band
    bfreq = starts * df
    efloor = float(band_sum.sum(axis=1).max()) * 1e-10 + _EPS
    for name, lo, hi in _FLOOR_BANDS:
        bsel = (bfreq >= lo) & (bfreq < hi)
        if not bsel.any():
            out[f"sp_floor_{name}_db"] = 0.0
            continue
        e = 10.0 * np.log10(band_sum[:, bsel].sum(axis=1) + efloor)
        p10, p50 = np.percentile(e, [10, 50])
        out[f"sp_floor_{name}_db"] = float(np.clip(p10 - p50, -80.0, 0.0))

    out["sp_hum_db"] = _hum_db(x, sr)
    return out


def _eq_shape_features(ltas: np.ndarray, df: float) -> dict[str, float]:
    k = ltas.size
    ref_a, ref_b = _bin_range(250.0, 4000.0, df, k, first=1)
    ref = float(ltas[ref_a:ref_b].mean()) if ref_b > ref_a else 0.0
    out: dict[str, float] = {}
    levels = np.full(_EQ_BANDS, _EQ_FLOOR_DB)
    if ref > _EPS:
        for j in range(_EQ_BANDS):
            a, b = _bin_range(50.0 * 2.0 ** (j / 2), 50.0 * 2.0 ** ((j + 1) / 2), df, k, first=1)
            if b > a:  # bands above Nyquist stay at the floor
                levels[j] = float(np.clip(10.0 * np.log10(ltas[a:b].mean() / ref + 1e-12), _EQ_FLOOR_DB, 40.0))
    for j in range(_EQ_BANDS):
        out[f"eq_band{j:02d}_db"] = float(levels[j])
    within = np.flatnonzero(levels >= -25.0)
    out["eq_low_edge_oct"] = float(within[0] / 2) if within.size else 0.0
    out["eq_high_edge_oct"] = float((within[-1] + 1) / 2) if within.size else 0.0
    return out


# ----------------------------------------------------------------------------------------------
# public API


def compute_signal_features(
    audio: np.ndarray, sample_rate: int = 32000, native: tuple[np.ndarray, int] | None = None
) -> np.ndarray:
    """Feature vector (float32, ``len(FEATURE_NAMES)``, always finite) of one clip.

    ``audio``: float ``[channels, samples]`` (or 1-D mono); beyond two channels only the first two
    are used. Non-finite samples are replaced (NaN -> 0, +-inf -> +-1). Clips shorter than one
    analysis frame (~32 ms) are zero-padded. ``native``: the same clip at the rate it came at,
    ``(audio, rate)``, when ``audio`` was resampled from it: the clipping group is measured there,
    because resampling rounds off the flat tops of clipped samples.
    """
    sr = int(sample_rate)
    if sr <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    x = _prepare(audio)
    n_fft = max(64, 2 * int(round(_REF_NFFT * sr / _REF_SR / 2)))
    hop = n_fft // 2
    if x.shape[1] < n_fft:
        x = np.pad(x, ((0, 0), (0, n_fft - x.shape[1])))
    c, n = x.shape
    df = sr / n_fft
    nyq = sr / 2.0

    n_frames = 1 + (n - n_fft) // hop
    frames = sliding_window_view(x, n_fft, axis=1)[:, ::hop][:, :n_frames]
    spec = _fft.rfft(frames * _hann(n_fft), axis=-1)  # [C, T, K] complex64
    power = np.abs(spec)
    power *= power  # [C, T, K] float32
    if c == 2:
        pm = power[0] + power[1]
        pm *= np.float32(0.5)  # mean channel power [T, K]
    else:
        pm = power[0]
    k = pm.shape[1]
    ltas = pm.mean(axis=0).astype(np.float64)  # long-term average spectrum

    # frame activity (-60 dB re the loudest frame)
    e_frame = pm.sum(axis=1, dtype=np.float64)
    active = e_frame > max(e_frame.max() * 1e-6, _EPS)
    if active.sum() < 3:
        active = np.ones_like(active)

    # 250-Hz subbands (linear and dB) and half-octave band energies
    sub_w = 8 * df
    nsub = (k - 1) // 8
    sub = np.add.reduceat(pm, np.arange(0, nsub * 8, 8), axis=1).astype(np.float64)  # last one takes Nyquist
    sub_db = 10.0 * np.log10(sub + float(ltas.max()) * 8e-13 + _EPS)
    starts, _, _ = _half_octave_bands(k, df)
    band_sum = np.add.reduceat(pm, starts, axis=1).astype(np.float64)

    feats: dict[str, float] = {}
    if c == 2:
        feats.update(_stereo_features(x, spec, power.sum(axis=1), sr, n_fft, df))
    else:
        feats.update(_NEUTRAL_STEREO)
    hb, _ = _highband_features(ltas, sub, sub_db, sub_w, active, df, nyq)
    feats.update(hb)
    clip, ms = _clipping_features(x)
    if native is not None and int(native[1]) != sr:
        clip, _ = _clipping_features(_prepare(native[0]), int(native[1]))
    feats.update(clip)
    feats.update(_spectral_features(x, ms, pm, ltas, band_sum, active, df, nyq, sr))
    feats.update(_eq_shape_features(ltas, df))

    vec = np.array([feats[name] for name in FEATURE_NAMES], dtype=np.float64)
    vec = np.nan_to_num(vec, nan=0.0, posinf=1e4, neginf=-1e4)
    return np.clip(vec, -1e4, 1e4).astype(np.float32)
