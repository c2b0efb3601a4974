"""Levels: sample peak, DC offset, integrated loudness (ITU-R BS.1770-4 / EBU R128) and loudness
range (EBU Tech 3342).

Loudness is computed from the K-weighted mean square of every 100-ms block (``_blocks``: Parseval
on the block spectra with |K(f)|^2 of pyloudnorm's ITU-matching filter design). That needs no
time-domain IIR pass (the two biquads alone take ~120 ms on a 3-min stereo track here, pyloudnorm's
integrated_loudness ~450 ms) and stays within 0.03 LU of pyloudnorm's time-domain result and 0.05 LU
of ffmpeg's ebur128 on the synthetic mixes (``scripts/measurement_accuracy.py``). Gating as in BS.1770-4: 400-ms
blocks with 75 % overlap (4 consecutive 100-ms blocks), absolute gate -70 LUFS, relative gate
-10 LU. LRA as in Tech 3342: short-term loudness of 3-s windows every 100 ms, absolute gate
-70 LUFS, relative gate -20 LU below the power mean of the absolute-gated values, then the spread
between the 10th and the 95th percentile (nearest rank, as ffmpeg's ebur128 filter takes them).
"""

from __future__ import annotations

import numpy as np

from adv.measurements._common import db_amp

ABS_GATE_LUFS = -70.0
REL_GATE_LU = -10.0
LRA_REL_GATE_LU = -20.0
LRA_PERCENTILES = (10.0, 95.0)


def channel_weights(n_channels: int) -> np.ndarray:
    """BS.1770 channel weights: 1.0 for L, R, C; 1.41 for the surrounds; 0 for the LFE. Six
    channels are taken as 5.1 in WAV/SMPTE order (L R C LFE Ls Rs); other counts weigh every
    channel 1.0."""
    if n_channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(n_channels)


def sample_peak_dbfs(channel_peaks: np.ndarray) -> float | None:
    """Highest |sample| over all channels in dBFS (None for digital silence)."""
    return db_amp(float(np.max(channel_peaks))) if channel_peaks.size else None


def dc_offset(channel_sums: np.ndarray, n_samples: int) -> float:
    """Largest absolute per-channel mean: a DC offset shifts the waveform and wastes headroom."""
    if n_samples == 0:
        return 0.0
    return float(np.max(np.abs(channel_sums)) / n_samples)


def _to_lufs(power: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(power)


def weighted_energy(k_energy: np.ndarray) -> np.ndarray:
    """[B] channel-weighted K-weighted mean square per 100-ms block, from [C, B] (or already [B]);
    a per-channel sum, not a matrix product: the same value whatever the number of blocks."""
    k = np.asarray(k_energy, dtype=np.float64)
    if k.ndim == 1:
        return k
    w = channel_weights(k.shape[0])
    out = np.zeros(k.shape[1])
    for c in range(k.shape[0]):
        if w[c]:
            out += w[c] * k[c]
    return out


def integrated_lufs(k_energy: np.ndarray) -> float | None:
    """Gated integrated loudness in LUFS from K-weighted mean squares of 100-ms blocks ([C, B], or
    [B] already channel-weighted); None when no 400-ms block passes the absolute gate (silence, or
    shorter than 400 ms)."""
    weighted = weighted_energy(k_energy)
    if weighted.size < 4:
        return None
    cs = np.r_[0.0, np.cumsum(weighted)]
    blocks = (cs[4:] - cs[:-4]) / 4.0  # 400-ms blocks, hop 100 ms
    lk = _to_lufs(blocks)
    gated = blocks[lk >= ABS_GATE_LUFS]
    if gated.size == 0:
        return None
    rel = _to_lufs(np.array([gated.mean()]))[0] + REL_GATE_LU
    final = blocks[(lk >= ABS_GATE_LUFS) & (lk > rel)]
    if final.size == 0:
        return None
    return float(_to_lufs(np.array([final.mean()]))[0])


def short_term_loudness(k_energy: np.ndarray) -> np.ndarray:
    """Short-term loudness (3-s window) every 100 ms, LUFS (-inf for silent windows); input as for
    ``integrated_lufs``."""
    weighted = weighted_energy(k_energy)
    if weighted.size < 30:
        return np.empty(0)
    cs = np.r_[0.0, np.cumsum(weighted)]
    return _to_lufs((cs[30:] - cs[:-30]) / 30.0)


def loudness_range_lu(k_energy: np.ndarray) -> float | None:
    """EBU Tech 3342 loudness range (LU): how much the short-term loudness varies over the track,
    ignoring silence and the quietest passages. None under 3 s or when nothing passes the gates."""
    st = short_term_loudness(k_energy)
    st = st[st >= ABS_GATE_LUFS]
    if st.size == 0:
        return None
    mean_power = float(np.mean(10.0 ** (st / 10.0)))
    rel = 10.0 * np.log10(mean_power) + LRA_REL_GATE_LU
    st = st[st >= rel]
    if st.size == 0:
        return None
    st = np.sort(st)
    lo, hi = (st[max(int(p / 100.0 * st.size + 0.5) - 1, 0)] for p in LRA_PERCENTILES)
    return float(hi - lo)
