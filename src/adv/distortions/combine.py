"""Several distortions on one signal, applied in a fixed, realistic chain order.

Order: ``eq`` -> ``phase`` -> ``noise`` -> ``clipping`` -> ``mp3``: colouring and stereo problems
arise in recording/mixing, noise is picked up along the way, clipping happens at mastering (it
also clips the noise) and lossy encoding is the last step before distribution. The order of the
input list does not matter; a kind listed twice is applied twice (in list order, at its place in
the chain).

Keywords: ``variants={kind: variant}`` fixes a variant per kind; ``variant=`` is refused (it would
be ambiguous); every other keyword (e.g. ``noise_bank=``) is passed to all generators, which
ignore what they do not use. ``phase`` turns mono input into stereo, so later steps see 2 channels.
"""

from __future__ import annotations

import numpy as np

CHAIN_ORDER: tuple[str, ...] = ("eq", "phase", "noise", "clipping", "mp3")


def apply_combination(
    kinds_and_severities: list[tuple[str, float]], audio: np.ndarray, sr: int, rng: np.random.Generator, **kw
) -> tuple[np.ndarray, list[dict]]:
    """Applies each (kind, severity) in chain order; returns (audio, param dicts in applied order)."""
    from adv.distortions import GENERATORS

    if "variant" in kw:
        raise TypeError("apply_combination takes variants={kind: variant}, not variant=")
    variants = dict(kw.pop("variants", None) or {})
    steps = list(kinds_and_severities)
    for kind, _ in steps:
        if kind not in GENERATORS or kind not in CHAIN_ORDER:
            raise ValueError(f"unknown distortion kind {kind!r}; expected one of {CHAIN_ORDER}")
    unknown = set(variants) - set(CHAIN_ORDER)
    if unknown:
        raise ValueError(f"variants given for unknown kinds {sorted(unknown)}")
    ordered = sorted(range(len(steps)), key=lambda i: (CHAIN_ORDER.index(steps[i][0]), i))
    out = np.asarray(audio)
    params: list[dict] = []
    for i in ordered:
        kind, severity = steps[i]
        out, p = GENERATORS[kind](out, sr, float(severity), rng, variant=variants.get(kind), **kw)
        params.append(p)
    if not params:
        out = np.array(audio, dtype=np.float32, copy=True)
    return out, params
