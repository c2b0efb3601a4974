"""The level range of the training clips, and bringing an analysis window into it.

Every corpus clip is scaled to a peak drawn from ``PEAK_RANGE_DBFS`` before any damage is applied
(``adv.data.corpus_build``), so the model never saw clean audio outside it. Real tracks are often
outside it: masters peak at full scale, intros and fades sit far below -12 dBFS, and a model shown
them flags most such windows (docs/experiments.md, level matching). The validator therefore scales each window whose peak lies outside the range
to the nearest end of it (a level change only: nothing else about the window changes), and the
feature cache does the same to every corpus clip (``adv.features.feature_cache``), after a random
gain for the training clips, so the model learns from what it is shown at inference.
"""

from __future__ import annotations

import numpy as np

PEAK_RANGE_DBFS = (-12.0, -0.1)
SILENT_PEAK = 1e-5  # -100 dBFS: below this peak a signal counts as digital silence


def peak(x: np.ndarray) -> float:
    """max |x| without an |x| copy (0 for an empty array)."""
    return max(float(x.max()), -float(x.min())) if x.size else 0.0


def apply_gain_db(x: np.ndarray, gain_db: float) -> np.ndarray:
    """``x`` scaled by ``gain_db`` as float32 (a new array; ``x`` is not modified)."""
    return (x * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32, copy=False)


def match_training_level(
    window: np.ndarray, peak_range: tuple[float, float] = PEAK_RANGE_DBFS
) -> tuple[np.ndarray, float]:
    """``(window scaled into peak_range, gain in dB)``; the input is returned unchanged (not copied)
    when its peak is already in range or it is silent, and is never modified in place."""
    pk = peak(window)
    if pk <= SILENT_PEAK:
        return window, 0.0
    peak_db = 20.0 * np.log10(pk)
    target = min(max(peak_db, peak_range[0]), peak_range[1])
    if target == peak_db:
        return window, 0.0
    gain_db = float(target - peak_db)
    return apply_gain_db(window, gain_db), gain_db
