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
    if np.issubdtype(x.dtype, np.integer):  # PCM integers: full scale = 2^(bits - 1)
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
    return round(v, digits) + 0.0 if math.isfinite(v) else None  # + 0.0: no "-0.0"


def block_view(x: np.ndarray, size: int) -> np.ndarray:
    """[channels, n // size, size] view of the complete blocks of ``x`` (no copy)."""
    nb = x.shape[1] // size
    return x[:, : nb * size].reshape(x.shape[0], nb, size)


def sig(v: float, digits: int = 4) -> float:
    """``v`` rounded to ``digits`` significant digits."""
    return float(f"{v:.{digits}g}")


class ExactSums:
    """Per-channel sums of float32 values, exact whatever the order or grouping of the additions
    (so a stream and one pass over the same samples agree to the bit): each value's 24-bit
    mantissa is added, as an integer, to a float64 bin of its binary exponent (exact while a bin
    stays below 2^53, i.e. for up to 2^29 values), and ``total`` adds the bins up exactly."""

    _E_MIN, _BINS = -149, 280  # frexp exponents of float32 values: -148 .. 128

    def __init__(self, channels: int):
        self.acc = np.zeros((channels, self._BINS), dtype=np.float64)

    def add(self, v: np.ndarray) -> None:
        """Adds ``v`` [C, k] (float32) channel by channel."""
        m, e = np.frexp(np.asarray(v, dtype=np.float32))
        mant = (m * np.float32(2.0**24)).astype(np.float64)  # exact integers, |m| < 2^24
        idx = (e - self._E_MIN).astype(np.intp)
        for c in range(self.acc.shape[0]):
            self.acc[c] += np.bincount(idx[c], weights=mant[c], minlength=self._BINS)

    def total(self) -> np.ndarray:
        """[C] float64: the exact sums, rounded once."""
        shift = self._E_MIN - 24
        out = np.empty(self.acc.shape[0])
        for c, row in enumerate(self.acc):
            s = sum(int(v) << i for i, v in enumerate(row) if v)
            out[c] = math.ldexp(float(s), shift) if s else 0.0
        return out
