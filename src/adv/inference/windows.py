"""Cuts a track into analysis windows and folds per-window results into a track summary."""

from __future__ import annotations

import numpy as np

from adv import CLASSES, DISTORTION_KINDS
from adv.inference.decision import Decision


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


def summarise(
    probs: np.ndarray,
    sev: np.ndarray,
    starts_s: list[float],
    window_s: float,
    duration: float,
    decision: Decision,
    silent: np.ndarray | None = None,
    proved: np.ndarray | None = None,
) -> dict:
    """Track-level verdict from window probabilities [W, 6] and severities [W, 5] (adv.inference.decision).

    Every kind's entry gives its probability (mean over the windows, or over the clearly damaged
    run's windows when only the run makes the track damaged), the ``threshold`` it was judged
    against and whether it is ``detected``; the track is damaged exactly when some kind is.
    ``confidence`` is the probability of the verdict given: the main kind's for a damaged track,
    the mean P(clean) for a clean one (1.0 when every window is digital silence). ``silent`` [W]
    marks windows of digital silence: they are reported clean and carry no evidence. ``proved``
    [W, 5] marks the windows whose kind the measurements prove (adv.inference.evidence); each kind
    reports how many (``measured_windows``).
    """
    w = probs.shape[0]
    silent = np.zeros(w, bool) if silent is None else np.asarray(silent, bool)
    live = np.flatnonzero(~silent)
    thr = decision.array
    tr = decision.track(probs[live, 1:])
    flagged_w = decision.window_kinds(probs[:, 1:]) & ~silent[:, None]
    types = {}
    for i, kind in enumerate(DISTORTION_KINDS):
        f = flagged_w[:, i]
        sv = sev[f, i] if f.any() else (sev[live, i] if live.size else np.zeros(1))
        types[kind] = {
            "probability": round(float(tr["scores"][i]), 4),
            "threshold": round(float(thr[i]), 4),
            "detected": bool(tr["detected"][i]),
            "severity": round(float(np.median(sv)) * 100, 1),
            "worst_severity": round(float(sv.max()) * 100, 1),
            "flagged_windows": int(f.sum()),
            "measured_windows": int(proved[:, i].sum()) if proved is not None else 0,
        }
    has = bool(tr["detected"].any())
    if has:
        main = max((k for k in DISTORTION_KINDS if types[k]["detected"]), key=lambda k: types[k]["probability"])
        confidence = types[main]["probability"]
    else:
        main = "clean"
        confidence = float(probs[live, 0].mean()) if live.size else 1.0
    segments = []
    for j, s in enumerate(starts_s):
        kinds = np.flatnonzero(flagged_w[j])
        wd = kinds.size > 0
        k = int(kinds[np.argmax(probs[j, 1 + kinds])]) if wd else -1
        seg = {
            "start": round(s, 2),
            "end": round(min(s + window_s, duration), 2),
            "has_distortion": wd,
            "distortion_type": DISTORTION_KINDS[k] if wd else "clean",
            "confidence": round(float(probs[j, 1 + k] if wd else (1.0 if silent[j] else probs[j, 0])), 4),
            "probabilities": {c: round(float(probs[j, i]), 4) for i, c in enumerate(CLASSES)},
            "severity": {kd: round(float(sev[j, i]) * 100, 1) for i, kd in enumerate(DISTORTION_KINDS)},
        }
        if silent[j]:
            seg["silent"] = True
        segments.append(seg)
    run = tr["run"]
    section = None
    if run is not None:
        a, b = live[run[1]], live[run[2]]
        section = {
            "start": round(starts_s[a], 2),
            "end": round(min(starts_s[b] + window_s, duration), 2),
            "kind": DISTORTION_KINDS[run[0]],
        }
    return {
        "has_distortion": has,
        "distortion_type": main,
        "severity": types[main]["severity"] if has else 0.0,
        "worst_severity": types[main]["worst_severity"] if has else 0.0,
        "confidence": round(confidence, 4),
        "types": types,
        "detected_types": [k for k in DISTORTION_KINDS if types[k]["detected"]],
        "section": section,
        "segments": segments,
    }
