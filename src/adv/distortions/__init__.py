"""Distortion generators for the six-class damage detector (clean, clipping, mp3, noise, eq, phase).

Each kind is a module with ``KIND``, ``VARIANTS`` and
``apply(audio, sample_rate, severity, rng, variant=None, **kwargs) -> (audio, params)``:
``audio`` is float32 [channels, samples] (never modified in place), ``severity`` in [0, 1] maps
monotonically onto the module's physical parameter (see each module's docstring), all randomness
comes from ``rng`` and ``params`` is a JSON-serialisable dict that always holds ``kind``,
``variant`` and ``severity``. Unknown keyword arguments are ignored by every generator, so one set
of keywords (e.g. ``noise_bank=``) can be passed to all of them.

``combine.apply_combination`` chains several kinds in a fixed, realistic order.

Severity maps, version 2 (``SEVERITY_MAPS_VERSION``): any severity above 0 starts at a
just-audible strength (MP3 128 kbps, SNR 24 dB, EQ stop band -4 dB, a polarity flip above 4 kHz,
...) and grows to gross damage at 1. Version 1 started from nothing, so about a quarter of its
severity range was inaudible yet labelled damaged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from adv.distortions import clipping, eq, mp3, noise, phase

SEVERITY_MAPS_VERSION = 2

_MODULES = {m.KIND: m for m in (clipping, mp3, noise, eq, phase)}

GENERATORS: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {k: m.apply for k, m in _MODULES.items()}
VARIANTS: dict[str, tuple[str, ...]] = {k: tuple(m.VARIANTS) for k, m in _MODULES.items()}
KINDS: tuple[str, ...] = tuple(GENERATORS)


def apply_distortion(
    kind: str, audio: np.ndarray, sr: int, severity: float, rng: np.random.Generator, **kw
) -> tuple[np.ndarray, dict]:
    """Applies the generator of ``kind``; keywords (``variant=``, ``noise_bank=``, ...) pass through."""
    try:
        generator = GENERATORS[kind]
    except KeyError:
        raise ValueError(f"unknown distortion kind {kind!r}; expected one of {KINDS}") from None
    return generator(audio, sr, severity, rng, **kw)


from adv.distortions.combine import CHAIN_ORDER, apply_combination  # noqa: E402

__all__ = [
    "SEVERITY_MAPS_VERSION",
    "GENERATORS",
    "VARIANTS",
    "KINDS",
    "CHAIN_ORDER",
    "apply_distortion",
    "apply_combination",
    "clipping",
    "mp3",
    "noise",
    "eq",
    "phase",
]
