"""Input checks and small numeric helpers shared by the measurement modules."""

from __future__ import annotations

import math

import numpy as np

SILENT_PEAK = 1e-7  # below this peak (-140 dBFS) a channel counts as digital silence


def as_audio(audio: np.ndarray, check_finite: bool = True) -> np.ndarray:
    """``audio`` as C-contiguous float32 [channels, samples] (1-D input is mono, integer PCM is
    scaled to [-1, 1)); non-finite values
    become 0 (unless ``check_finite`` is False: the caller checks) so that nothing raises on them."""
    x = np.asarray(audio)
    if np.issubdtype(x.dtype, np.integer):          # PCM integers: full scale = 2^(bits - 1)
        x = x.astype(np.float32) / np.float32(2.0 ** (8 * x.dtype.itemsize - 1))
    if x.ndim == 1:
        x = x[None, :]
    elif x.ndim != 2:
        raise ValueError(f"audio must be [channels, samples] or [samples], got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if check_finite and x.size and not (np.isfinite(x.max()) and np.isfinite(x.min())):
        x = finite(x)
    return x


def finite(x: np.ndarray) -> np.ndarray:
    """Copy of ``x`` with NaN and infinities set to 0."""
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def db_amp(v: float) -> float | None:
    """20*log10(v), None for v <= 0."""
    return 20.0 * math.log10(v) if v > 0 else None


def db_pow(v: float) -> float | None:
    """10*log10(v), None for v <= 0."""
    return 10.0 * math.log10(v) if v > 0 else None


def rnd(v, digits: int):
    """Rounded plain float (None and non-finite values stay None)."""
    if v is None:
        return None
    v = float(v)
    return round(v, digits) + 0.0 if math.isfinite(v) else None   # + 0.0: no "-0.0"


def block_view(x: np.ndarray, size: int) -> np.ndarray:
    """[channels, n // size, size] view of the complete blocks of ``x`` (no copy)."""
    nb = x.shape[1] // size
    return x[:, : nb * size].reshape(x.shape[0], nb, size)
