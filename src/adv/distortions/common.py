"""Argument checks and the severity-floor map shared by the distortion generators."""

from __future__ import annotations

import numpy as np


def check_audio_and_severity(audio: np.ndarray, severity: float) -> np.ndarray:
    """The input as an array; ValueError unless it is non-empty [channels, samples] and 0 <= severity <= 1."""
    arr = np.asarray(audio)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"audio must be a non-empty [channels, samples] array, got shape {arr.shape}")
    sev = float(severity)
    if not (0.0 <= sev <= 1.0):
        raise ValueError(f"severity must lie in [0, 1], got {severity!r}")
    return arr


def pick_variant(rng: np.random.Generator, variant: str | None, variants: tuple[str, ...], kind: str) -> str:
    """The requested variant (checked), or one drawn uniformly with rng."""
    if variant is None:
        return str(variants[int(rng.integers(len(variants)))])
    if variant not in variants:
        raise ValueError(f"unknown {kind} variant {variant!r}; expected one of {variants}")
    return variant


def floored_strength(severity: float, at_start: float, at_one: float) -> float:
    """Severity maps v2: 0 at severity 0, else linear from ``at_start`` (just above 0, the
    just-audible strength) to ``at_one`` (severity 1)."""
    return 0.0 if severity <= 0.0 else at_start + (at_one - at_start) * severity
