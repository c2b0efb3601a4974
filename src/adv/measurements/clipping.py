"""Clipped samples: flat runs at the signal's own ceiling.

A clipper cuts every excursion beyond its threshold to the threshold itself, so a clipped waveform
has flat tops: runs of consecutive samples at the same extreme value, entered and left with a steep
step. The ceiling is taken from the data (the channel's largest sample for the positive side, its
smallest for the negative side), so audio that was clipped and then turned down (ceiling at, say,
-3 dBFS) is found as well as audio clipped at full scale.

Per channel and side:

1. candidate runs: consecutive samples within ``TOLERANCE_DB`` (0.05 dB) of the ceiling;
2. each run's flat core: its samples within ``CORE_TOLERANCE`` (0.002 dB, room for dither or
   re-quantisation of a clipped top: +-2 LSB of 16-bit at -6 dBFS) of the run's own top;
3. a core of ``MIN_RUN`` (3) or more samples is a clip when it is flat: the spread of its values is at
   most ``FLATNESS`` (0.2) times the mean step into and out of it. A smooth (unclipped) maximum is a
   parabola near its top, and any 3 or more of its samples give a ratio of 1/3 or more at any sample
   rate, however close they lie to the ceiling (a 50-Hz sine has 4 samples within 0.001 dB of its
   peak at 44.1 kHz); a brick-wall limiter's peaks approach the ceiling smoothly and fail the same
   way; a clipper's flat tops pass however long they are;
4. once a side has ``EVIDENCE_RUNS`` (3) such clips, the pairs and single samples sitting exactly at
   its ceiling (within ``PAIR_TOLERANCE``, 2^-18) are clipped too: a clipper leaves many of those
   (light clipping of a transient), but on its own a pair of equal samples is also what a sine peak
   halfway between two samples looks like, and a single sample at the peak is just the peak.

Measured on hard-clipped synthetic mixes (``scripts/measurement_accuracy.py``): the clipped fraction
is within 1 % of the truth from 0.5 to 40 % clipped, at 0 dBFS, turned down to -3 dBFS and
re-quantised to 16 bit; clean mixes, full-scale sines, limited and tanh-saturated mixes give 0.
Lossy-decoded clipping (an MP3 of a clipped master) has rippling tops that overshoot the clip level
by 1-3 dB, so it is not found here (0 at any tolerance from 0.05 to 1 dB); its inter-sample overs
(``truepeak``) and a sample peak above 0 dBFS show it instead.
"""

from __future__ import annotations

import numpy as np

from adv.measurements._common import SILENT_PEAK
from adv.measurements.truepeak import COARSE

TOLERANCE_DB = 0.05
CORE_TOLERANCE = 10.0 ** (0.002 / 20.0) - 1.0
MIN_RUN = 3
FLATNESS = 0.2
PAIR_TOLERANCE = 2.0 ** -18
EVIDENCE_RUNS = 3


def _runs(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start index, length) of runs of consecutive integers in sorted ``pos``."""
    if pos.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    brk = np.flatnonzero(np.diff(pos) != 1) + 1
    first = np.r_[0, brk]
    lengths = np.diff(np.r_[first, pos.size])
    return first, lengths


def _side(xc: np.ndarray, idx: np.ndarray, vals: np.ndarray, ceiling: float,
          tol: float, sign: float) -> tuple[int, int]:
    """(clipped samples, longest clip) on one side (sign +1: top, -1: bottom).

    ``idx``/``vals``: sorted sample positions (and their values) that may reach the ceiling."""
    c = abs(ceiling)
    v_all = sign * vals.astype(np.float64)          # the side's extreme is now a maximum
    near = v_all >= c * (1.0 - tol)
    pos = idx[near]
    v = v_all[near]
    first, lengths = _runs(pos)
    if not (lengths >= MIN_RUN).any():
        return 0, 0
    # flat core of every run: from its first to its last sample within CORE_TOLERANCE of its top
    run_of = np.repeat(np.arange(len(first)), lengths)
    top = np.maximum.reduceat(v, first)
    core = v >= top[run_of] - CORE_TOLERANCE * c
    k = np.arange(v.size)
    span_lo = np.minimum.reduceat(np.where(core, k, v.size), first)
    span_hi = np.maximum.reduceat(np.where(core, k, -1), first)
    span_len = span_hi - span_lo + 1
    bounds = np.empty(2 * len(span_lo), dtype=np.int64)
    bounds[0::2], bounds[1::2] = span_lo, span_hi + 1
    spread = top - np.minimum.reduceat(np.r_[v, 0.0], bounds)[0::2]
    n = xc.shape[0]
    start, end = pos[span_lo], pos[span_hi]
    x_before = sign * xc[np.maximum(start - 1, 0)].astype(np.float64)
    x_after = sign * xc[np.minimum(end + 1, n - 1)].astype(np.float64)
    before = np.where(start > 0, v[span_lo] - x_before, np.nan)
    after = np.where(end < n - 1, v[span_hi] - x_after, np.nan)
    count = np.isfinite(before).astype(np.int64) + np.isfinite(after)
    edge = (np.nan_to_num(before) + np.nan_to_num(after)) / np.maximum(count, 1)
    flat = (edge > 0) & (spread <= FLATNESS * edge)
    clip = flat & (span_len >= MIN_RUN)
    if not clip.any():
        return 0, 0
    if np.count_nonzero(clip) < EVIDENCE_RUNS:
        return int(span_len[clip].sum()), int(span_len[clip].max())
    # a clearly clipped side: shorter runs and single samples exactly at the ceiling count as well
    exact = v >= c * (1.0 - PAIR_TOLERANCE)
    cover = np.bincount(span_lo[clip], minlength=v.size + 1) - np.bincount(span_hi[clip] + 1, minlength=v.size + 1)
    in_clip = np.cumsum(cover[:-1]) > 0
    return int(np.count_nonzero(in_clip | exact)), int(span_len[clip].max())


def clipping_stats(ext, tolerance_db: float = TOLERANCE_DB) -> list[dict]:
    """Per channel: {"clipped_samples", "longest_clip_run"} from the flat runs at that channel's
    ceilings. ``ext`` is the signal's ``truepeak.Extrema``: only the 16-sample blocks that reach
    a ceiling are visited."""
    x = ext.x
    C, n = x.shape
    tol = 1.0 - 10.0 ** (-tolerance_db / 20.0)
    block = 16
    out = []
    for c in range(C):
        hi = float(ext.coarse_max[c].max()) if n else 0.0
        lo = float(ext.coarse_min[c].min()) if n else 0.0
        total, longest = 0, 0
        for ceiling, sign, coarse in ((hi, 1.0, ext.coarse_max[c]), (lo, -1.0, ext.coarse_min[c])):
            if sign * ceiling <= SILENT_PEAK:
                continue
            thr = ceiling * (1.0 - tol)
            hot_coarse = np.flatnonzero(sign * coarse >= sign * thr)
            if hot_coarse.size * COARSE > n // 4:          # much of it: one pass over the channel
                idx = np.flatnonzero(x[c] >= thr if sign > 0 else x[c] <= thr)
            else:
                fine, fmax, fmin = ext.fine(c, hot_coarse)
                hot = fine[sign * (fmax if sign > 0 else fmin) >= sign * thr]
                idx = (hot[:, None] * block + np.arange(block)).ravel()
                idx = idx[idx < n]
            s, m = _side(x[c], idx, x[c, idx], ceiling, tol, sign)
            total += s
            longest = max(longest, m)
        out.append({"clipped_samples": total, "longest_clip_run": longest})
    return out
