"""Where to listen in a file, and a short FLAC excerpt of it for the report.

The focus of a flagged file is its damaged section (or the most severe flagged window in it); of a
file passed as ok, the window that came closest to a threshold, so a miss can be checked by ear.
The excerpt is collected from a decode stream without holding the rest of the file.
"""

from __future__ import annotations

import io
import math

import numpy as np

EXCERPT_SECONDS = 8.0
MAX_EXCERPT_RATE = 48000  # higher rates are resampled: the excerpt is for listening


def _num(value, default: float = 0.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def _segments(result: dict) -> list[dict]:
    return [s for s in (result.get("segments") or []) if isinstance(s, dict) and "start" in s and "end" in s]


def worst_window(result: dict) -> dict | None:
    """The flagged window of the main kind with the highest severity, else any flagged window."""
    kind = result.get("distortion_type")
    flagged = [s for s in _segments(result) if s.get("has_distortion")]
    if not flagged:
        return None
    section = result.get("section") if isinstance(result.get("section"), dict) else None
    if section:
        inside = [
            s
            for s in flagged
            if _num(s["end"]) > _num(section.get("start")) and _num(s["start"]) < _num(section.get("end"))
        ]
        flagged = inside or flagged

    def score(s: dict) -> tuple[bool, float, bool]:
        sev = s.get("severity") if isinstance(s.get("severity"), dict) else {}
        centre = (_num(s["start"]) + _num(s["end"])) / 2.0
        within = bool(section) and _num(section.get("start")) <= centre <= _num(section.get("end"))
        return (s.get("distortion_type") == kind, _num(sev.get(s.get("distortion_type"))), within)

    return max(flagged, key=score)


def closest_call(result: dict) -> dict | None:
    """The window whose probability came nearest its kind's threshold (ratio), for a file passed as ok."""
    types = result.get("types") if isinstance(result.get("types"), dict) else {}
    best, best_ratio = None, -1.0
    for seg in _segments(result):
        probs = seg.get("probabilities") if isinstance(seg.get("probabilities"), dict) else {}
        for kind, t in types.items():
            thr = _num(t.get("threshold") if isinstance(t, dict) else None, 0.5) or 0.5
            ratio = _num(probs.get(kind)) / thr
            if ratio > best_ratio:
                best, best_ratio = seg, ratio
    return best


def focus_span(result: dict) -> tuple[float, float, str]:
    """(start s, end s, why) of the part of a result worth looking at and linking to."""
    section = result.get("section") if isinstance(result.get("section"), dict) else None
    if result.get("has_distortion"):
        if section and "start" in section and "end" in section:
            return _num(section["start"]), _num(section["end"]), "the damaged section"
        w = worst_window(result)
        if w is not None:
            return _num(w["start"]), _num(w["end"]), "the most severe flagged window"
    else:
        w = closest_call(result)
        if w is not None:
            return _num(w["start"]), _num(w["end"]), "the window closest to a threshold"
    return 0.0, _num(result.get("duration")), "the whole file"


def excerpt_span(result: dict, seconds: float = EXCERPT_SECONDS) -> tuple[float, float, str]:
    """(start s, end s, why) of at most ``seconds``, centred on the section's worst window (or the
    section when short), clamped to the file."""
    duration = _num(result.get("duration"))
    start, end, why = focus_span(result)
    if end - start > seconds and result.get("has_distortion") and why == "the damaged section":
        w = worst_window(result)
        if w is not None:
            start, end = _num(w["start"]), _num(w["end"])
            why = "the most severe window of the damaged section"
    centre = (start + end) / 2.0
    length = min(seconds, duration) if duration > 0 else seconds
    a = max(0.0, centre - length / 2.0)
    if duration > 0:
        a = min(a, max(0.0, duration - length))
    return round(a, 2), round(a + length, 2), why


class ExcerptCollector:
    """Keeps the samples of [start, end) seconds (first two channels) from blocks fed in order."""

    def __init__(self, sample_rate: int, start_s: float, end_s: float):
        self.sample_rate = int(sample_rate)
        self.first = max(0, int(round(start_s * self.sample_rate)))
        self.last = max(self.first, int(round(end_s * self.sample_rate)))
        self._pos = 0
        self._parts: list[np.ndarray] = []

    @property
    def complete(self) -> bool:
        return self._pos >= self.last

    def feed(self, block: np.ndarray) -> None:
        """Adds a block [channels, n] (or mono [n])."""
        block = block[None, :] if block.ndim == 1 else block
        n = block.shape[1]
        a, b = max(self.first, self._pos), min(self.last, self._pos + n)
        if b > a:
            self._parts.append(np.array(block[:2, a - self._pos : b - self._pos], dtype=np.float32))
        self._pos += n

    def samples(self) -> np.ndarray:
        """The excerpt [channels <= 2, n] float32 (empty when nothing fell inside)."""
        if not self._parts:
            return np.zeros((1, 0), np.float32)
        return np.concatenate(self._parts, axis=1)


def encode_flac(samples: np.ndarray, sample_rate: int) -> tuple[bytes, int]:
    """(16-bit FLAC bytes, rate) of [channels, n] samples; rates above 48 kHz are brought down to 48 kHz."""
    import soundfile as sf

    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    rate = int(sample_rate)
    if rate > MAX_EXCERPT_RATE:
        from adv.audio_io import resample

        x = np.clip(resample(x, rate, MAX_EXCERPT_RATE), -1.0, 1.0)
        rate = MAX_EXCERPT_RATE
    buf = io.BytesIO()
    sf.write(buf, np.ascontiguousarray(x.T), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue(), rate
