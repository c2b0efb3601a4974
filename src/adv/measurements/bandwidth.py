"""Effective bandwidth: the frequency above which the long-term spectrum has been cut off.

Lossy encoders low-pass the signal (MP3 at 128 kbps near 16-17 kHz, lower at lower bit rates),
and upsampled or band-limited masters stop well below their Nyquist frequency. Music's long-term
spectrum above 1 kHz is smooth and falls gently (a few dB per octave); a low-pass makes it fall
steeply and stay down. The cut-off is reported as the -3 dB point relative to the spectrum's local
trend, the usual definition of a filter's cut-off frequency.

Method, on the long-term power spectrum (~10-Hz bins, channels averaged), smoothed over 1/48 octave
(at least 250 Hz) and sampled every 1/96 octave from ``LOW_HZ`` up to 0.995 x Nyquist:

1. at each frequency f, a straight line (dB against log-frequency) is fitted to the spectrum between
   f/2 and f/1.15 and extrapolated to f; ``drop`` = line - spectrum;
2. the first f where ``drop`` reaches 3 dB is the cut-off if the fall is a low-pass's: over the next
   0.2 octave the drop stays at or above 2.5 dB and grows to at least 3 dB + ``STEEPNESS`` dB/octave
   (a 4th-order slope, 7 dB at 0.2 octave; natural roll-offs are 6-12 dB/octave), and the spectrum
   never comes back up to within 3 dB of the (non-rising) trend line anywhere above it (2 % of the
   points may: tones);
3. the 3-dB point is then located more precisely: at a cliff (a fall of 20 dB within 1/24 octave
   near the onset: MP3 and other encoders, brick-wall filters) it is 3 dB below the level where
   the cliff starts, because lossy encoders often sag by a few dB in the octave below their
   low-pass and the edge is the bandwidth that matters; otherwise it is the zero of a straight-line
   fit of log10(10^(drop/10) - 1) against log-frequency over the transition band (exact for a
   Butterworth fall, and it averages over the spectrum's own +-1 dB structure);
4. with no such point the signal is full-band and the cut-off is its Nyquist frequency.

Measured on 10-s windows of the synthetic mixes at 44.1/48/96 kHz (``scripts/measurement_accuracy.py``
and a wider sweep of 7 seeds): brick-wall low-passes 4-20 kHz within 90 Hz; 8th-order Butterworth
low-passes within 300 Hz (90 % within 125 Hz; the error comes from the mix's own +-1 dB spectral
structure under a gentle -24 dB/octave knee); lame MP3 at 96/128/192 kbps within 130 Hz of the
encoder's reported transition band; full-band mixes at Nyquist.
"""

from __future__ import annotations

import numpy as np

LOW_HZ = 1000.0
GRID_PER_OCTAVE = 96
SMOOTH_OCTAVES = 1.0 / 48.0
SMOOTH_MIN_HZ = 250.0  # ... but at least 250 Hz wide (sparse harmonics at low frequencies)
FIT_RANGE = (2.0, 1.15)  # the trend line is fitted over [f / 2, f / 1.15]
CHECK_RATIO = 1.15  # steepness is checked over [f, 1.15 f]
DROP_DB = 3.0
STEEPNESS = 20.0  # dB / octave
TOP_FRACTION = 0.995


CLIFF_DB = 20.0  # a fall of 20 dB within CLIFF_SPAN grid points (1/24 octave, ~500 dB per
CLIFF_SPAN = 4  # octave) is an encoder's or a brick-wall filter's edge
CLIFF_BACK = 10  # grid points below the onset where a cliff may start
CLIFF_MAX_SAG = 6.0  # dB below the trend where a cliff may start
REFINE = True
REFINE_RANGE = (-0.15, 0.3)
REFINE_DB = (1.5, 15.0)


def _refine(x: np.ndarray, d: np.ndarray, k: int, xc: float) -> float:
    """3-dB point from every point of the transition band: for a Butterworth-like fall,
    log10(10^(d/10) - 1) is a straight line in log-frequency (slope 2 x order), zero at the 3-dB
    point; averaging over the band makes the result far less sensitive to the spectrum's own
    +-1 dB structure than the single crossing."""
    lo = np.searchsorted(x, x[k] + REFINE_RANGE[0])
    hi = np.searchsorted(x, x[k] + REFINE_RANGE[1])
    seg_x, seg_d = x[lo:hi], d[lo:hi]
    sel = (seg_d >= REFINE_DB[0]) & (seg_d <= REFINE_DB[1])
    if np.count_nonzero(sel) < 4:
        return xc
    z = np.log10(10.0 ** (seg_d[sel] / 10.0) - 1.0)
    slope, icpt = np.polyfit(seg_x[sel], z, 1)
    if slope <= 0:
        return xc
    xr = -icpt / slope
    return float(xr) if abs(xr - xc) < 0.1 else xc


def _cliff(x: np.ndarray, s: np.ndarray, line: np.ndarray, k: int, end: int) -> float | None:
    """Position (octaves) of the 3-dB point at the top of a cliff (a fall of ``CLIFF_DB`` within
    1/24 octave) near the onset ``k``, or None. A lossy encoder often thins the top octave before
    its low-pass (quantisation empties the quiet high bands), so the spectrum sags a few dB, which
    passes the trend test first, and then drops off the edge of its filter; the edge is what the
    encoder's bandwidth is. The cliff must start less than ``CLIFF_MAX_SAG`` dB below the trend
    ``line`` and after a gentle stretch (under 3.3 dB in the 1/24 octave before it): a digital
    Butterworth's zeros at Nyquist also end in a cliff, but far down a steep slope."""
    span = CLIFF_SPAN
    lo = max(k - CLIFF_BACK, 1)
    hi = min(end, len(s) - 1 - span)
    if hi <= lo:
        return None
    fall = s[lo : hi + 1] - s[lo + span : hi + 1 + span]
    j = int(np.argmax(fall))
    if fall[j] < CLIFF_DB:
        return None
    top = lo + j
    while top > lo and s[top - 1] - s[top] > CLIFF_DB / CLIFF_SPAN / 2:  # back to where the steep fall starts
        top -= 1
    if line[top] - s[top] > CLIFF_MAX_SAG or (top >= span and s[top - span] - s[top] > CLIFF_DB / 6):
        return None  # not a shelf ending in a cliff
    level = s[top] - DROP_DB
    after = np.flatnonzero(s[top : hi + 1 + span] <= level)
    if after.size == 0 or after[0] == 0:
        return None
    i1 = top + int(after[0])
    s0, s1 = s[i1 - 1], s[i1]
    t = (s0 - level) / (s0 - s1) if s0 > s1 else 1.0
    return float(x[i1 - 1] + t * (x[i1] - x[i1 - 1]))


def cutoff_hz(freqs: np.ndarray, power: np.ndarray, sample_rate: int) -> float | None:
    """Cut-off frequency (Hz) of the long-term power spectrum ``power`` at ``freqs`` (uniform bins);
    the Nyquist frequency for full-band audio, None for silence and DC. Audio with (next to)
    nothing above ``LOW_HZ`` gets the highest bin within 60 dB of its spectrum's maximum."""
    nyq = sample_rate / 2.0
    lo_hz = min(LOW_HZ, nyq / 4.0)
    top = TOP_FRACTION * nyq
    p = np.asarray(power, dtype=np.float64)
    df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 0.0
    if df <= 0 or not np.isfinite(p).all():
        return None
    total = float(p[1:].sum())
    above = float(p[freqs >= lo_hz].sum())
    if total <= 0:
        return None
    if above <= 1e-6 * total:
        # everything lies below LOW_HZ: the highest bin within 60 dB of the spectrum's maximum
        # (above 20 Hz; None when there is nothing there: DC, infrasound)
        audible = freqs >= 20.0
        if float(p[audible].sum()) <= 1e-9 * total:
            return None
        ok = np.flatnonzero(audible & (p >= 1e-6 * float(p[audible].max())))
        return float(freqs[ok[-1]])
    # 1/48-octave band means at 1/96-octave spacing, from the cumulative spectrum (fractional bins)
    a = int(round(GRID_PER_OCTAVE * np.log2(FIT_RANGE[0])))
    b = int(round(GRID_PER_OCTAVE * np.log2(FIT_RANGE[1])))
    g0 = lo_hz / 2.0 ** (a / GRID_PER_OCTAVE)  # the first candidate has a full fit window
    n_grid = int(np.floor(GRID_PER_OCTAVE * np.log2(top / g0))) + 1
    if n_grid < a + 40:
        return None
    x = np.arange(n_grid) / GRID_PER_OCTAVE  # octaves above g0
    fg = g0 * 2.0**x
    cum = np.r_[0.0, np.cumsum(p)]
    width = np.maximum(fg * (2.0 ** (SMOOTH_OCTAVES / 2) - 2.0 ** (-SMOOTH_OCTAVES / 2)), SMOOTH_MIN_HZ)
    e_lo = np.clip((fg - width / 2) / df + 0.5, 0, len(p))
    e_hi = np.clip(np.maximum((fg + width / 2) / df + 0.5, e_lo + 1.0), 0, len(p))
    band = (np.interp(e_hi, np.arange(len(cum)), cum) - np.interp(e_lo, np.arange(len(cum)), cum)) / (e_hi - e_lo)
    s = 10.0 * np.log10(np.maximum(band, total * 1e-20))

    # local trend line over [i - a, i - b] for every i, from windowed sums
    csx, csy = np.r_[0.0, np.cumsum(x)], np.r_[0.0, np.cumsum(s)]
    csxx, csxy = np.r_[0.0, np.cumsum(x * x)], np.r_[0.0, np.cumsum(x * s)]
    i = np.arange(n_grid)
    j0 = np.maximum(i - a, 0)
    j1 = i - b + 1  # exclusive
    m = (j1 - j0).astype(np.float64)
    valid = i >= a
    j1c = np.maximum(j1, 0)
    sx, sy = csx[j1c] - csx[j0], csy[j1c] - csy[j0]
    sxx, sxy = csxx[j1c] - csxx[j0], csxy[j1c] - csxy[j0]
    with np.errstate(invalid="ignore", divide="ignore"):
        den = m * sxx - sx * sx
        slope = np.where(valid & (den > 0), (m * sxy - sx * sy) / den, 0.0)
        icpt = np.where(valid, (sy - slope * sx) / np.maximum(m, 1), 0.0)
    trend = icpt + slope * x
    drop = np.where(valid, trend - s, 0.0)

    check = max(int(round(GRID_PER_OCTAVE * np.log2(CHECK_RATIO))), 1)
    onsets = np.flatnonzero((drop[1:] >= DROP_DB) & (drop[:-1] < DROP_DB)) + 1
    for k in onsets[:200]:
        end = min(k + check, n_grid - 1)
        line = icpt[k] + slope[k] * x
        d = line[k : end + 1] - s[k : end + 1]
        if d.size > 1 and d[1:].min() < DROP_DB - 0.5:
            continue
        if end - k >= 4 and d[-1] < DROP_DB + STEEPNESS * (x[end] - x[k]):
            continue
        if end < n_grid - 1:
            limit = trend[k] + min(slope[k], 0.0) * (x[end + 1 :] - x[k]) - DROP_DB
            if np.mean(s[end + 1 :] > limit) > 0.02:
                continue
        # interpolate the 3-dB crossing between grid points k-1 and k
        d0, d1 = drop[k - 1], drop[k]
        t = (DROP_DB - d0) / (d1 - d0) if d1 > d0 else 1.0
        xc = x[k - 1] + t * (x[k] - x[k - 1])
        cliff = _cliff(x, s, line, k, end)
        if cliff is not None:
            xc = cliff
        elif REFINE:
            xc = _refine(x, line - s, k, xc)
        return float(g0 * 2.0**xc)
    return float(nyq)
