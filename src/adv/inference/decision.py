"""The decision rule: which damage kinds a window or a track has, from the model's probabilities.

Each kind has its own threshold (chosen on validation tracks for a clean false-alarm budget,
``scripts/calibrate_decision.py``; stored in the model file as ``kind_thresholds``). A window has
a kind when the kind's probability reaches its threshold. A track has a kind when the kind's mean
probability over the track's windows reaches it, or when the kind is clearly present
(probability >= ``strong(t)``) in ``RUN_WINDOWS`` consecutive windows: damage confined to a part of
a track. A track or window is damaged exactly when it has a kind, so a verdict never contradicts
the probabilities it reports. Digitally silent windows carry no evidence and are left out.
Before this rule, measured evidence (adv.inference.evidence: flat tops at the ceiling) sets the
probabilities of the windows it proves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adv import DISTORTION_KINDS
from adv.inference.evidence import CLIP_EVIDENCE_FRACTION

RUN_WINDOWS = 3  # consecutive windows (20 s at the 5-s hop) that make a clearly damaged section
RUN_STRENGTH = 1.0 / 6.0  # a window is clearly damaged by a kind when 1 - P(kind) < (1 - threshold) * this


def strong(threshold: float | np.ndarray) -> float | np.ndarray:
    """The probability at which a kind counts as clearly present in one window."""
    return 1.0 - (1.0 - threshold) * RUN_STRENGTH


@dataclass(frozen=True)
class Decision:
    thresholds: tuple[float, ...]  # one per DISTORTION_KINDS
    clip_evidence_fraction: float = CLIP_EVIDENCE_FRACTION  # adv.inference.evidence

    @classmethod
    def from_meta(cls, meta: dict, override: float | None = None) -> "Decision":
        """The model file's per-kind thresholds (older files: their one ``kind_threshold`` for every
        kind); ``override`` sets every kind's threshold to one value."""
        evidence = float(meta.get("clip_evidence_fraction", CLIP_EVIDENCE_FRACTION))
        if override is not None:
            return cls(tuple(float(override) for _ in DISTORTION_KINDS), evidence)
        per = meta.get("kind_thresholds")
        if per:
            return cls(tuple(float(per[k]) for k in DISTORTION_KINDS), evidence)
        t = float(meta.get("kind_threshold", meta.get("threshold", 0.5)))
        return cls(tuple(t for _ in DISTORTION_KINDS), evidence)

    def as_dict(self) -> dict[str, float]:
        return {k: round(t, 4) for k, t in zip(DISTORTION_KINDS, self.thresholds)}

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.thresholds, dtype=np.float64)

    def window_kinds(self, kind_probs: np.ndarray) -> np.ndarray:
        """[W, 5] bool: the kinds each window has (``kind_probs`` [W, 5])."""
        return kind_probs >= self.array

    def longest_run(self, kind_probs: np.ndarray) -> tuple[int, int, int] | None:
        """``(kind index, first, last)`` window of the longest run of at least RUN_WINDOWS consecutive
        windows in which one kind is clearly present; None when there is none."""
        clear = kind_probs >= strong(self.array)
        best = None
        for k in range(clear.shape[1]):
            start = None
            for i, flag in enumerate(np.append(clear[:, k], False)):
                if flag and start is None:
                    start = i
                elif not flag and start is not None:
                    if i - start >= RUN_WINDOWS and (best is None or i - start > best[2] - best[1] + 1):
                        best = (k, start, i - 1)
                    start = None
        return best

    def track(self, kind_probs: np.ndarray) -> dict:
        """Track decision from its windows' kind probabilities [W, 5] (silent windows removed):
        ``{"scores": [5] mean probabilities (over the run's windows for a run-flagged track),
        "detected": [5] bool, "run": (kind, first, last) or None, "evidence": slice}``."""
        if kind_probs.shape[0] == 0:
            return {
                "scores": np.zeros(len(DISTORTION_KINDS)),
                "detected": np.zeros(len(DISTORTION_KINDS), bool),
                "run": None,
                "evidence": slice(0, 0),
            }
        scores = kind_probs.mean(axis=0)
        detected = scores >= self.array
        run = self.longest_run(kind_probs)
        evidence = slice(None)
        if not detected.any() and run is not None:
            evidence = slice(run[1], run[2] + 1)
            scores = kind_probs[evidence].mean(axis=0)
            detected = scores >= self.array  # the run's kind always is: its windows are all above strong(t)
        return {"scores": scores, "detected": detected, "run": run, "evidence": evidence}
