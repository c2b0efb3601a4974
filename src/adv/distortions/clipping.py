"""Clipping (hard, soft and re-normalised hard clipping).

Severity -> fraction of clipped samples (linear): ``f = 0.40 * severity``, so the seed levels
5 / 10 / 20 / 40 % are severity 0.125 / 0.25 / 0.5 / 1.0. The clip threshold ``t`` is the
``(1 - f)`` quantile of ``|x|`` over all channels together (a master is clipped at one level for
both channels), so ``f`` of all samples exceed it.

Variants:

* ``hard``: ``y = clip(x, -t, t) / t``: the clip level lands exactly on 0 dBFS, as in a
  clipped master. Measured ``clipped_fraction`` = fraction of samples with ``|y| == 1``.
* ``soft``: linear below the threshold, tanh saturation above it (a soft-knee clipper):
  ``|y| = t + w * tanh((|x| - t) / w)`` for ``|x| > t``, with headroom ``w = h * t`` and
  ``h`` drawn from U(0.15, 0.5). The tanh drive is ``1 / w`` above the knee, and the knee sits at
  the ``(1 - f)`` quantile, so exactly the fraction ``f`` of samples is driven into the compressed
  region (``clipped_fraction`` counts them). The output is scaled so the ceiling ``t + w`` is
  0 dBFS (the peak stays just below it).
* ``renormalised``: hard clip at ``t``, then the peak (= clip level) is scaled to a random level
  drawn from U(-20, -1) dBFS, as when a clipped master is turned down afterwards (or clipped
  at a level below full scale, as a percentile-threshold clipper does).
  ``clipped_fraction`` = fraction of samples at the (new) peak level.

Severity 0 (f = 0) and silent input return the input unchanged (as a float32 copy). The output is
float32 of the input shape; the random draws (headroom, output peak) come only from ``rng``.
"""

from __future__ import annotations

import math

import numpy as np
from adv.distortions.common import check_audio_and_severity as _check
from adv.distortions.common import pick_variant

KIND = "clipping"
VARIANTS = ("hard", "soft", "renormalised")
MAX_FRACTION = 0.40


def _pick_variant(rng: np.random.Generator, variant: str | None) -> str:
    return pick_variant(rng, variant, VARIANTS, KIND)


def _db(v: float) -> float | None:
    return float(20.0 * math.log10(v)) if v > 0 else None


def apply(
    audio: np.ndarray, sample_rate: int, severity: float, rng: np.random.Generator, variant: str | None = None, **kwargs
) -> tuple[np.ndarray, dict]:
    """Clips ``audio`` [C, N]; returns (float32 [C, N], params)."""
    x = _check(audio, severity).astype(np.float64)
    severity = float(severity)
    variant = _pick_variant(rng, variant)
    target = MAX_FRACTION * severity
    # draw the variant's random parameters up front so rng use does not depend on the signal
    headroom = float(rng.uniform(0.15, 0.5)) if variant == "soft" else None
    out_peak_db = float(rng.uniform(-20.0, -1.0)) if variant == "renormalised" else None

    params: dict = {"kind": KIND, "variant": variant, "severity": severity, "target_fraction": target}
    mag = np.abs(x)
    peak = float(mag.max())
    if target <= 0.0 or peak <= 0.0:
        params.update(clipped_fraction=0.0, threshold=peak, threshold_dbfs=_db(peak), gain_db=0.0, unchanged=True)
        if headroom is not None:
            params["headroom_ratio"] = headroom
        if out_peak_db is not None:
            params["output_peak_dbfs"] = out_peak_db
        return np.array(audio, dtype=np.float32, copy=True), params

    thr = float(np.quantile(mag, 1.0 - target))
    if thr <= 0.0:  # more than 1 - f of the samples are exactly zero: clip at the smallest non-zero level
        thr = float(mag[mag > 0].min())
    above = mag > thr
    if variant == "soft":
        w = headroom * thr
        sat = thr + w * np.tanh((mag - thr) / w)
        y = np.where(above, np.sign(x) * sat, x)
        ceiling = thr + w
        gain = 1.0 / ceiling
        y *= gain
        measured = float(np.mean(above))
        params.update(
            headroom_ratio=headroom,
            drive=1.0 / (w * gain) if w > 0 else None,
            knee=thr * gain,
            knee_dbfs=_db(thr * gain),
            ceiling_dbfs=0.0,
        )
    else:
        y = np.clip(x, -thr, thr)
        level = 1.0 if variant == "hard" else 10.0 ** (out_peak_db / 20.0)
        gain = level / thr
        y *= gain
        measured = float(np.mean(np.abs(y) >= level * (1.0 - 1e-6)))
        if out_peak_db is not None:
            params["output_peak_dbfs"] = out_peak_db
    params.update(
        clipped_fraction=measured,
        threshold=thr,
        threshold_dbfs=_db(thr),
        gain_db=_db(gain),
        input_peak_dbfs=_db(peak),
        crest_reduction_db=_db(peak / thr),
    )
    return y.astype(np.float32), params
