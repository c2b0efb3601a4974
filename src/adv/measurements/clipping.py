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

The rule is written as a run evaluator (``evaluate_runs``) shared by the window path here and the
streaming ``track_meter``: runs are given as entries (a sample, or a stretch of equal samples with
its count), and besides each run's verdict at a ceiling ``c`` it can tell whether that verdict
holds at every higher ceiling until the run is gone, so that a stream can judge runs before it
knows its final ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adv.measurements._common import SILENT_PEAK
from adv.measurements.truepeak import BLOCK, COARSE

TOLERANCE_DB = 0.05
CORE_TOLERANCE = 10.0 ** (0.002 / 20.0) - 1.0
MIN_RUN = 3
FLATNESS = 0.2
PAIR_TOLERANCE = 2.0**-18
EVIDENCE_RUNS = 3


def tolerance(tolerance_db: float = TOLERANCE_DB) -> float:
    """Relative depth below the ceiling within which samples are candidates."""
    return 1.0 - 10.0 ** (-tolerance_db / 20.0)


def f32_floor(t: float) -> np.float32:
    """Largest float32 <= ``t``: a float32 pre-filter with it never drops a sample the float64 test keeps."""
    f = np.float32(t)
    return f if float(f) <= t else np.nextafter(f, np.float32(-np.inf))


def _next32(v: np.ndarray, toward: float) -> np.ndarray:
    return np.nextafter(v.astype(np.float32), np.float32(toward)).astype(np.float64)


def highest_ceiling(approx: np.ndarray, holds, floor) -> np.ndarray:
    """Largest float32 ceiling near ``approx`` (float64, within a few ulps of the true bound) for
    which ``holds(c)`` (a vectorised predicate, true below the bound) is true; at least ``floor``
    (where it holds by construction). Ceilings are channel extremes, hence float32 values."""
    base = np.minimum(approx, 3.0e38).astype(np.float32).astype(np.float64)
    up1 = _next32(base, np.inf)
    dn1 = _next32(base, -np.inf)
    out = np.array(np.broadcast_to(floor, approx.shape), dtype=np.float64)
    done = np.zeros(approx.shape, dtype=bool)
    for cand in (_next32(up1, np.inf), up1, base, dn1, _next32(dn1, -np.inf)):  # highest first
        ok = ~done & holds(cand) & (cand >= out)
        out[ok] = cand[ok]
        done |= ok
    return out


@dataclass
class RunVerdicts:
    """Per run: ``clip``, ``span_len`` (samples of its flat core span), ``top``, and with keys:
    ``void`` (the highest ceiling at which its top is still a candidate: above it the run is gone)
    and ``stable`` (its verdict holds at every ceiling up to ``void``). Per sample of a non-clip
    run at the ceiling (within ``PAIR_TOLERANCE``), entry ``exact_idx`` of run ``exact_run``:
    ``exact_n`` samples, at the ceiling up to ceiling ``exact_key``."""

    clip: np.ndarray
    span_len: np.ndarray
    top: np.ndarray
    void: np.ndarray | None
    stable: np.ndarray | None
    exact_idx: np.ndarray
    exact_run: np.ndarray
    exact_n: np.ndarray
    exact_key: np.ndarray | None


def evaluate_runs(
    hi: np.ndarray,
    lo: np.ndarray,
    cnt: np.ndarray,
    first: np.ndarray,
    n_ent: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    c,
    tol: float,
    keys: bool = True,
) -> RunVerdicts:
    """The clip rule on runs of candidate samples (sign-adjusted float64, all >= ``c`` (1 - ``tol``)).

    Entries: ``hi``/``lo``/``cnt`` (a sample: hi == lo, cnt 1; a stretch of equal samples: its
    count; hi != lo only for a lossily summarised stretch, whose verdict is then approximate). Runs:
    entries ``first[r]`` .. ``first[r] + n_ent[r] - 1``; ``before``/``after``: the samples next to
    the run (NaN at the signal's ends); ``c``: the ceiling, one or one per run.

    With ``keys``, a run is stable when its verdict holds for every higher ceiling until it is
    gone: its span (if it clips or is long enough to) is flat at its top, so it loses no span
    sample before its top goes; it has no valley (a sample lower than samples on both sides of it,
    whose loss would split it: it rises and then falls), so it only loses samples at its ends, which
    cannot form runs of their own; and no sample outside its span joins the core before then.
    A run too short to clip only gets shorter, so its span need not be flat."""
    E, R = hi.size, first.size
    if R == 0:
        e, z = np.empty(0), np.zeros(0, np.int64)
        return RunVerdicts(
            np.zeros(0, bool),
            z,
            e,
            e if keys else None,
            np.zeros(0, bool) if keys else None,
            z,
            z,
            z,
            e if keys else None,
        )
    run_of = np.repeat(np.arange(R), n_ent)
    scalar = np.ndim(c) == 0
    cr = np.full(R, float(c)) if scalar else np.asarray(c, dtype=np.float64)
    top = np.maximum.reduceat(hi, first)
    core = hi >= (top - CORE_TOLERANCE * cr)[run_of]
    k = np.arange(E)
    span_lo = np.minimum.reduceat(np.where(core, k, E), first)
    span_hi = np.maximum.reduceat(np.where(core, k, -1), first)
    cs = np.r_[0, np.cumsum(cnt)]
    span_len = (cs[span_hi + 1] - cs[span_lo]).astype(np.int64)
    bounds = np.empty(2 * R, dtype=np.int64)
    bounds[0::2], bounds[1::2] = span_lo, span_hi + 1
    min_span = np.minimum.reduceat(np.r_[lo, 0.0], bounds)[0::2]
    spread = top - min_span
    last = first + n_ent - 1
    x_before = np.where(span_lo > first, hi[np.maximum(span_lo - 1, 0)], before)
    x_after = np.where(span_hi < last, hi[np.minimum(span_hi + 1, E - 1)], after)
    b = hi[span_lo] - x_before
    a = hi[span_hi] - x_after
    count = np.isfinite(b).astype(np.int64) + np.isfinite(a)
    edge = (np.nan_to_num(b) + np.nan_to_num(a)) / np.maximum(count, 1)
    clip = (edge > 0) & (spread <= FLATNESS * edge) & (span_len >= MIN_RUN)

    thr = float(c) * (1.0 - PAIR_TOLERANCE) if scalar else (cr * (1.0 - PAIR_TOLERANCE))[run_of]
    ex = np.flatnonzero((hi >= thr) & ~clip[run_of])
    exact_n = np.where(lo[ex] >= (thr if scalar else thr[ex]), cnt[ex], 1).astype(np.int64)
    void = stable = exact_key = None
    if keys:
        void = highest_ceiling(top / (1.0 - tol), lambda cc: top >= cc * (1.0 - tol), cr)
        # rises then falls: no strict descent before a strict ascent (pair k: entries k, k + 1)
        inside = np.ones(E, dtype=bool)
        inside[last] = False
        nxt = np.r_[hi[1:], -np.inf]
        first_down = np.minimum.reduceat(np.where(inside & (nxt < hi), k, E), first)
        last_up = np.maximum.reduceat(np.where(inside & (nxt > hi), k, -1), first)
        flat_span = (min_span >= top) | (~clip & (span_len < MIN_RUN))
        outside = (k < span_lo[run_of]) | (k > span_hi[run_of])
        max_out = np.maximum.reduceat(np.where(outside, hi, -np.inf), first)
        stable = flat_span & (last_up < first_down) & (max_out < top - CORE_TOLERANCE * void)
        h = hi[ex]
        exact_key = highest_ceiling(
            h / (1.0 - PAIR_TOLERANCE), lambda cc: h >= cc * (1.0 - PAIR_TOLERANCE), cr[run_of[ex]]
        )
    return RunVerdicts(clip, span_len, top, void, stable, ex, run_of[ex], exact_n, exact_key)


def side_result(n_clip: int, clip_samples: int, exact_samples: int, longest: int) -> tuple[int, int]:
    """(clipped samples, longest clip) of one side from its clip runs and the exact samples outside
    them: single samples and pairs at the ceiling count only on a side with enough clear clips."""
    if n_clip == 0:
        return 0, 0
    if n_clip < EVIDENCE_RUNS:
        return int(clip_samples), int(longest)
    return int(clip_samples + exact_samples), int(longest)


def runs_of_positions(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, length) of the runs of consecutive integers in sorted ``pos``."""
    if pos.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    brk = np.flatnonzero(np.diff(pos) != 1) + 1
    first = np.r_[0, brk]
    return first, np.diff(np.r_[first, pos.size])


def candidates(ext, c: int, sign: float, thr: float, start: int = 0) -> np.ndarray:
    """Sorted positions ``>= start`` in channel ``c`` of ``ext.x`` where sign * x >= ``thr`` (> 0),
    found through the block extremes (only the 16-sample blocks that reach it are read)."""
    x = ext.x
    n = x.shape[1]
    t32 = f32_floor(thr)
    coarse = ext.coarse_max[c] if sign > 0 else -ext.coarse_min[c]
    hot_coarse = np.flatnonzero(coarse >= t32)
    hot_coarse = hot_coarse[hot_coarse >= start // COARSE]
    if hot_coarse.size == 0:
        return np.empty(0, dtype=np.int64)
    if hot_coarse.size * COARSE > (n - start) // 4:  # much of it: one pass over the channel
        seg = x[c, start:]
        idx = np.flatnonzero(seg >= t32 if sign > 0 else seg <= -t32) + start
    else:
        fine, fmax, fmin = ext.fine(c, hot_coarse)
        hot = fine[(fmax >= t32) if sign > 0 else (fmin <= -t32)]
        idx = (hot[:, None] * BLOCK + np.arange(BLOCK)).ravel()
        idx = idx[(idx < n) & (idx >= start)]
        idx = idx[(x[c, idx] >= t32) if sign > 0 else (x[c, idx] <= -t32)]
    v = sign * x[c, idx].astype(np.float64)
    return idx[v >= thr]


def _side(xc: np.ndarray, idx: np.ndarray, ceiling: float, tol: float, sign: float) -> tuple[int, int]:
    """(clipped samples, longest clip) on one side (sign +1: top, -1: bottom) of a whole signal;
    ``idx``: the sorted positions of its candidates."""
    c = abs(ceiling)
    n = xc.shape[0]
    first, lengths = runs_of_positions(idx)
    if not (lengths >= MIN_RUN).any():
        return 0, 0
    v = sign * xc[idx].astype(np.float64)
    start, end = idx[first], idx[first + lengths - 1]
    before = np.where(start > 0, sign * xc[np.maximum(start - 1, 0)].astype(np.float64), np.nan)
    after = np.where(end < n - 1, sign * xc[np.minimum(end + 1, n - 1)].astype(np.float64), np.nan)
    r = evaluate_runs(v, v, np.ones(v.size, np.int64), first, lengths, before, after, c, tol, keys=False)
    longest = int(r.span_len[r.clip].max()) if r.clip.any() else 0
    return side_result(int(np.count_nonzero(r.clip)), int(r.span_len[r.clip].sum()), int(r.exact_n.sum()), longest)


def clipping_stats(ext, tolerance_db: float = TOLERANCE_DB) -> list[dict]:
    """Per channel: {"clipped_samples", "longest_clip_run"} from the flat runs at that channel's
    ceilings. ``ext`` is the signal's ``truepeak.Extrema``: only the 16-sample blocks that reach
    a ceiling are visited."""
    x = ext.x
    C, n = x.shape
    tol = tolerance(tolerance_db)
    out = []
    for c in range(C):
        hi = float(ext.coarse_max[c].max()) if n else 0.0
        lo = float(ext.coarse_min[c].min()) if n else 0.0
        total, longest = 0, 0
        for ceiling, sign in ((hi, 1.0), (lo, -1.0)):
            if sign * ceiling <= SILENT_PEAK:
                continue
            idx = candidates(ext, c, sign, abs(ceiling) * (1.0 - tol))
            s, m = _side(x[c], idx, ceiling, tol, sign)
            total += s
            longest = max(longest, m)
        out.append({"clipped_samples": total, "longest_clip_run": longest})
    return out
