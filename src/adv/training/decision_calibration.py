"""Choosing the per-kind decision thresholds (adv.inference.decision) on whole validation tracks
for a budget of clean tracks flagged.

Every kind's threshold is set at the same quantile level of its track score over the clean tracks
(the ``1 - q`` quantile of the kind's mean window probability), so each kind alone flags about the
same share ``q`` of clean tracks; ``q`` is then the largest level at which the full decision (means
and runs, all kinds together) flags at most the budget of clean tracks. Damaged tracks caught and
typed correctly are reported at that point, and for a table of budgets.
"""

from __future__ import annotations

import numpy as np

from adv import DISTORTION_KINDS
from adv.inference.decision import Decision

LEVELS = np.unique(np.concatenate([[0.0], np.geomspace(1e-4, 0.5, 80)]))  # 0: above every clean track
MIN_THRESHOLD, MAX_THRESHOLD = 0.05, 0.995


def track_probs(row: dict) -> np.ndarray:
    """[W, 5] kind probabilities of a track's non-silent windows (a track_check.py row)."""
    p = np.asarray(row["window_probs"], dtype=np.float64)[:, 1:]
    silent = np.asarray(row.get("window_silent") or [False] * len(p), bool)
    return p[~silent]


def thresholds_at(clean_scores: np.ndarray, q: float) -> Decision:
    t = np.quantile(clean_scores, 1.0 - q, axis=0) if len(clean_scores) else np.full(len(DISTORTION_KINDS), 0.5)
    return Decision(tuple(float(v) for v in np.clip(t + 1e-6, MIN_THRESHOLD, MAX_THRESHOLD)))


def evaluate(decision: Decision, rows: list[dict]) -> dict:
    """Clean tracks flagged, damaged tracks caught (all and per kind) and typed correctly."""
    clean = [r for r in rows if r["kind"] == "clean"]
    damaged = [r for r in rows if r["kind"] != "clean"]

    def verdict(r):
        d = decision.track(track_probs(r))
        if not d["detected"].any():
            return False, "clean"
        scores = np.where(d["detected"], d["scores"], -1.0)
        return True, DISTORTION_KINDS[int(np.argmax(scores))]

    cv = [verdict(r)[0] for r in clean]
    dv = [verdict(r) for r in damaged]
    by_kind = {}
    for k in DISTORTION_KINDS:
        flags = [v[0] for r, v in zip(damaged, dv) if r["kind"] == k]
        if flags:
            by_kind[k] = round(100 * float(np.mean(flags)), 1)
    return {
        "clean_tracks_flagged_pct": round(100 * float(np.mean(cv)), 2) if cv else None,
        "damaged_tracks_caught_pct": round(100 * float(np.mean([v[0] for v in dv])), 1) if dv else None,
        "damaged_typed_correctly_pct": round(100 * float(np.mean([v[1] == r["kind"] for r, v in zip(damaged, dv)])), 1)
        if dv
        else None,
        "caught_pct_by_kind": by_kind,
        "clean_tracks": len(cv),
        "damaged_tracks": len(dv),
    }


def calibrate(rows: list[dict], budget: float) -> tuple[Decision, dict]:
    """The decision with the most damaged tracks caught among those flagging at most ``budget``
    (a fraction) of the clean tracks; with its evaluation on ``rows``."""
    clean_scores = np.array([track_probs(r).mean(axis=0) for r in rows if r["kind"] == "clean" and len(track_probs(r))])
    best = None
    for q in LEVELS:
        d = thresholds_at(clean_scores, float(q))
        m = evaluate(d, rows)
        if m["clean_tracks_flagged_pct"] is not None and m["clean_tracks_flagged_pct"] <= 100 * budget + 1e-9:
            key = (m["damaged_tracks_caught_pct"] or 0.0, -m["clean_tracks_flagged_pct"])
            if best is None or key > best[0]:
                best = (key, d, {**m, "level": float(q)})
    if best is None:  # nothing fits the budget: the strictest level
        d = thresholds_at(clean_scores, float(LEVELS[0]))
        return d, {**evaluate(d, rows), "level": float(LEVELS[0]), "over_budget": True}
    return best[1], best[2]


def tradeoff(rows: list[dict], budgets=(0.01, 0.02, 0.05, 0.10, 0.20)) -> list[dict]:
    out = []
    for b in budgets:
        d, m = calibrate(rows, b)
        out.append({"budget_pct": round(100 * b, 1), "thresholds": d.as_dict(), **m})
    return out
