"""Measured evidence in the verdict: what the measurements prove overrides what the model guesses.

Hard clipping leaves flat tops at the signal's ceiling, which adv.measurements.clipping counts at the
file's own rate (limiters, soft saturation and smooth peaks give none). A window in which at least
``CLIP_EVIDENCE_FRACTION`` of the samples are clipped has clipping whatever the model says: its
P(clipping) is raised to ``EVIDENCE_PROBABILITY`` (P(clean) lowered to match) and its clipping
severity is the measured one, on the corpus generator's map (severity = clipped fraction / 0.40,
adv.distortions.clipping). Windows without that evidence keep the model's probabilities and its
blind severity estimate (soft clipping, clipping after a lossy encode).
"""

from __future__ import annotations

import numpy as np

from adv import DISTORTION_KINDS

#: share of a window's samples in flat runs at the ceiling that proves clipping (1 in 1000)
CLIP_EVIDENCE_FRACTION = 1e-3
#: the probability given to a kind the measurements prove (above every kind's strong(t))
EVIDENCE_PROBABILITY = 0.99
#: clipped fraction at severity 1 on the corpus generator's map (adv.distortions.clipping.MAX_FRACTION,
#: kept equal by a test; not imported, so that analysis does not load the damage generators)
MAX_FRACTION = 0.40
_CLIP = DISTORTION_KINDS.index("clipping")


def clipping_severity(fraction: float) -> float:
    """Severity 0-1 of hard clipping from the clipped fraction of samples (0.40 or more is 1)."""
    return float(min(1.0, max(0.0, fraction) / MAX_FRACTION))


def apply_evidence(
    probs: np.ndarray, sevs: np.ndarray, measured: list[dict], min_fraction: float = CLIP_EVIDENCE_FRACTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probs [W, 6], severities [W, 5], proved [W, 5] bool) after the windows' ``measured``
    evidence (one measure_window dict per window) is applied; the inputs are not modified."""
    probs, sevs = probs.copy(), sevs.copy()
    proved = np.zeros(sevs.shape, dtype=bool)
    for j, m in enumerate(measured):
        frac = (m or {}).get("clipped_fraction")
        if frac is not None and frac >= min_fraction:
            proved[j, _CLIP] = True
            probs[j, 1 + _CLIP] = max(probs[j, 1 + _CLIP], EVIDENCE_PROBABILITY)
            probs[j, 0] = min(probs[j, 0], 1.0 - EVIDENCE_PROBABILITY)
            sevs[j, _CLIP] = clipping_severity(frac)
    return probs, sevs, proved
