"""Cuts a track into analysis windows and folds per-window results into a track summary."""

from __future__ import annotations

import numpy as np

from adv import CLASSES, DISTORTION_KINDS


def window_starts(n_samples: int, sr: int, window_s: float, hop_s: float, max_windows: int) -> list[int]:
    """Start samples of windows covering the track (last window flush with the end).

    Tracks shorter than one window give a single window of their own length. When more than
    `max_windows` would be needed the hop is widened so the windows still span the whole track,
    but never beyond the window length: every sample is analysed.
    """
    win = int(window_s * sr)
    if n_samples <= win:
        return [0]
    span = n_samples - win
    hop = max(int(hop_s * sr), 1)
    n = span // hop + 1
    if n > max_windows:
        n = max(max_windows, int(np.ceil(span / win)) + 1)
        hop = span / (n - 1)
    starts = [int(round(i * hop)) for i in range(n)]
    if starts[-1] < span:
        starts.append(span)
    return starts


# A track's damage score is the mean over its most damaged TRACK_TOP_FRACTION of windows. Measured on
# the 75 validation tracks (whole files up to 180 s, clean and with two random damages each, level
# matching on): the most damaged quarter flagged 32 % of the clean tracks at the clips' threshold,
# against 19 % for the mean over all windows (13 % of clean validation clips), for 91 vs 84 % of the
# damaged tracks; with a threshold giving 19 % on both, the quarter found 83 %. The quarter is a
# maximum in disguise: a long clean track has more windows that can look odd.
TRACK_TOP_FRACTION = 1.0

# The mean misses damage confined to part of a track. With a quarter of each track damaged (45 s of
# 180, scripts/track_check.py --partial 0.25, model runs/v10), the mean flagged 28 % of those validation
# tracks although 88 % of the windows inside the section were flagged. A track is therefore also
# damaged when TRACK_RUN_WINDOWS consecutive windows (20 s at a 5-s hop) each have a clean score below
# threshold x TRACK_RUN_SCORE_FACTOR (0.05 at the 0.3 threshold). Chosen on validation as the rule
# with the most sectional damage found for at most 2.5 points more clean tracks flagged (runs of
# 2-5 windows, factors 1/6-2/3): partial damage found 28 -> 65 %, clean tracks flagged 18.7 -> 20.0 %;
# on test 20.5 -> 66.7 % and 15.4 -> 17.9 %, whole-track damage 85.9 -> 87.2 %.
# With runs/v13 (threshold 0.25, run below 0.04): 60 % (test 64 %) of those tracks found, 16.0 % (16.7 %)
# of clean tracks flagged; with the shipped runs/v14 (same threshold): 59 % (64 %), 14.7 % (16.7 %).
TRACK_RUN_WINDOWS = 3
TRACK_RUN_SCORE_FACTOR = 1.0 / 6.0


def damaged_run(distorted: np.ndarray, threshold: float) -> tuple[int, int] | None:
    """``(first, last)`` window of the longest run of at least TRACK_RUN_WINDOWS consecutive windows
    whose clean score (1 - distorted) is below ``threshold * TRACK_RUN_SCORE_FACTOR``; None if none."""
    strong = (1.0 - distorted) < threshold * TRACK_RUN_SCORE_FACTOR
    best, start = None, None
    for i, flag in enumerate(np.append(strong, False)):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start >= TRACK_RUN_WINDOWS and (best is None or i - start > best[1] - best[0] + 1):
                best = (start, i - 1)
            start = None
    return best


def _top_mean(x: np.ndarray, frac: float = TRACK_TOP_FRACTION) -> float:
    k = max(1, int(np.ceil(len(x) * frac)))
    return float(np.sort(x)[-k:].mean())


def summarise(probs: np.ndarray, sev: np.ndarray, starts_s: list[float], window_s: float,
              duration: float, threshold: float, kind_threshold: float | None = None) -> dict:
    """Track-level verdict from window probabilities [W, 6] and severities [W, 5].

    ``threshold`` acts on the clean score (column 0); a damaged track lists every kind whose
    probability reaches ``kind_threshold`` (default: ``threshold``) and always its most likely kind.

    The track's probability of damage is the mean over its most damaged ``TRACK_TOP_FRACTION`` of
    windows (all of them: see the constant); each window's own verdict is in ``segments``. A track
    whose mean looks clean is still damaged when a run of windows is clearly damaged (``damaged_run``):
    then ``section`` gives the run's time span, and the kinds' probabilities and the confidence are
    the means over the run's windows instead of the whole track.
    """
    distorted = 1.0 - probs[:, 0]
    p_dist = _top_mean(distorted)
    has = p_dist >= 1.0 - threshold
    run = damaged_run(distorted, threshold)
    evidence = slice(None)                       # the windows the kinds and the confidence come from
    if run is not None and not has:
        has, evidence = True, slice(run[0], run[1] + 1)
        p_dist = float(distorted[evidence].mean())
    kt = threshold if kind_threshold is None else kind_threshold
    types = {}
    for i, kind in enumerate(DISTORTION_KINDS):
        p = probs[evidence, i + 1]
        flagged = (probs[:, i + 1] >= kt) & (distorted >= 1.0 - threshold)
        sv = sev[flagged, i] if flagged.any() else sev[:, i]
        types[kind] = {
            "probability": round(_top_mean(p), 4),
            "detected": bool(has and _top_mean(p) >= kt),
            "severity": round(float(np.median(sv)) * 100, 1),
            "worst_severity": round(float(sv.max()) * 100, 1),
            "flagged_windows": int(flagged.sum()),
        }
    if has:
        main = max(DISTORTION_KINDS, key=lambda k: types[k]["probability"])
        types[main]["detected"] = True
    else:
        main = "clean"
    segments = []
    for w, s in enumerate(starts_s):
        wd = float(distorted[w]) >= 1.0 - threshold
        kind_idx = int(np.argmax(probs[w, 1:]))
        segments.append({
            "start": round(s, 2), "end": round(min(s + window_s, duration), 2),
            "has_distortion": wd,
            "distortion_type": DISTORTION_KINDS[kind_idx] if wd else "clean",
            "confidence": round(float(distorted[w] if wd else 1 - distorted[w]), 4),
            "probabilities": {c: round(float(probs[w, j]), 4) for j, c in enumerate(CLASSES)},
            "severity": {k: round(float(sev[w, j]) * 100, 1) for j, k in enumerate(DISTORTION_KINDS)},
        })
    return {
        "has_distortion": bool(has),
        "distortion_type": main,
        "severity": types[main]["severity"] if has else 0.0,
        "worst_severity": types[main]["worst_severity"] if has else 0.0,
        "confidence": round(p_dist if has else 1.0 - p_dist, 4),
        "types": types,
        "detected_types": [k for k in DISTORTION_KINDS if types[k]["detected"]],
        "section": ({"start": round(starts_s[run[0]], 2), "end": round(min(starts_s[run[1]] + window_s, duration), 2)}
                    if run is not None else None),
        "segments": segments,
    }
