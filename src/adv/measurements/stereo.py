"""Stereo image and phase: L/R correlation, inter-channel delay, polarity and mono compatibility.

Only the first two channels are used (L and R in every common layout); mono input gives None.

* ``lr_correlation``: Pearson correlation of L and R over the whole signal: 1 for mono-in-stereo,
  around 0.3-0.9 for mixes, near 0 for unrelated channels, negative when one channel is inverted.
* ``channel_delay_ms``: lag of R behind L (positive: R is late, R[n] = L[n - d]) at the peak of
  the smoothed-coherence (SCOT) cross-correlation, searched over +-5 ms, with parabolic sub-sample
  interpolation. From the Hann-windowed ~100-ms block spectra; None when the channels are too
  unrelated for the lag to mean anything (coherence peak < 0.1). A few samples of delay between
  channels comb-filter the mono downmix and smear the stereo image.
* ``polarity_inverted``: True when the plain correlation at that lag is strongly negative (<= -0.3):
  one channel has had its sign flipped.
* ``mono_downmix_loss_db``: level of (L+R)/2 below the mean level of L and R, in dB (0 for
  identical channels, 3 dB for unrelated ones, very large when they cancel); capped at 100 dB.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

MAX_LAG_SECONDS = 0.005
MIN_COHERENCE = 0.1
INVERTED_BELOW = -0.3
MAX_LOSS_DB = 100.0


def correlation_and_loss(
    e_l: float, e_r: float, e_lr: float, m_l: float, m_r: float, n: int
) -> tuple[float | None, float | None]:
    """(lr_correlation, mono_downmix_loss_db) from the sums of L^2, R^2, L*R and the means."""
    if n == 0:
        return None, None
    var_l = e_l / n - m_l * m_l
    var_r = e_r / n - m_r * m_r
    cov = e_lr / n - m_l * m_r
    corr = None
    if var_l > 1e-20 and var_r > 1e-20:
        corr = float(np.clip(cov / math.sqrt(var_l * var_r), -1.0, 1.0))
    mean_pow = 0.5 * (e_l + e_r)
    if mean_pow <= 1e-30:
        return corr, None
    mid_pow = max(0.25 * (e_l + e_r + 2.0 * e_lr), 0.0)
    loss = MAX_LOSS_DB if mid_pow <= mean_pow * 10.0 ** (-MAX_LOSS_DB / 10.0) else 10.0 * math.log10(mean_pow / mid_pow)
    return corr, float(loss)


def delay_and_polarity(
    cross: np.ndarray | None, psd_l: np.ndarray, psd_r: np.ndarray, n_analysed: int, block_len: int, sample_rate: int
) -> tuple[float | None, bool | None]:
    """(channel_delay_ms, polarity_inverted) from the summed cross spectrum conj(L) R and the
    channels' long-term power spectra (``_blocks.BlockSpectra``)."""
    if cross is None or n_analysed == 0:
        return None, None
    auto_l = psd_l * n_analysed * block_len
    auto_r = psd_r * n_analysed * block_len
    norm = math.sqrt(float(auto_l.sum()) * float(auto_r.sum()))
    if norm <= 0.0:
        return None, None
    floor = 1e-12 * max(float(auto_l.max()), float(auto_r.max()))
    gamma = cross / np.sqrt((auto_l + floor) * (auto_r + floor))
    gamma[0] = 0.0  # DC says nothing about a lag
    coh = sfft.irfft(gamma, n=block_len)
    plain = sfft.irfft(cross, n=block_len)
    max_lag = min(int(round(MAX_LAG_SECONDS * sample_rate)), block_len // 2 - 1)
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    c = coh[lags % block_len]  # mean coherence at each lag
    i = int(np.argmax(np.abs(c)))
    if abs(c[i]) < MIN_COHERENCE:
        return None, None
    lag = float(lags[i])
    # parabolic interpolation on |c| around the peak (neighbours in lag order)
    order = np.argsort(lags)
    pos = int(np.flatnonzero(order == i)[0])
    if 0 < pos < len(order) - 1:
        y0, y1, y2 = np.abs(c[order[pos - 1]]), np.abs(c[i]), np.abs(c[order[pos + 1]])
        den = y0 - 2.0 * y1 + y2
        if den < 0:
            lag += float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
    # plain[tau] = sum of l[n] r[n + tau]; each channel's energy is 2 sum(auto) / block_len
    rho = float(plain[int(lags[i]) % block_len]) * block_len / (2.0 * norm)
    return lag * 1000.0 / sample_rate, bool(rho <= INVERTED_BELOW)
