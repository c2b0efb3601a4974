"""Screens source tracks: finds the 10-s windows usable as clean material and records why others are not.

A window is rejected when it is near-silent, already band-limited (little energy above ~12 kHz),
already clipped, or mono-collapsing (L ~ -R). Tracks are decoded at their full rate for this.
With ``min_lossy_kbps`` (per file extension), a lossy file whose mean bit rate (file size over
duration) is below it is rejected whole (``low_bitrate_source``): its "clean" clips would already
carry codec damage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adv.audio_io import load_audio
from adv.errors import AudioError


@dataclass
class Filters:
    min_rms_dbfs: float = -40.0
    min_highband_db: float = -58.0  # energy above highband_hz relative to the whole band
    highband_hz: float = 12000.0
    max_clipped_fraction: float = 0.002
    min_lr_correlation: float = -0.3
    window_hop_s: float = 2.5
    min_lossy_kbps: dict[str, float] = field(default_factory=dict)  # e.g. {"ogg": 80}; empty: no bit-rate gate


@dataclass
class TrackScan:
    sample_rate: int
    channels: int
    duration: float
    valid_offsets: list[float] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    error: str = ""
    source_kbps: float | None = None  # mean bit rate of a gated lossy file


def _db(x: float) -> float:
    return float(10 * np.log10(max(x, 1e-20)))


def window_problems(seg: np.ndarray, sr: int, f: Filters) -> list[str]:
    """Reasons a [channels, samples] window is not usable as clean material (empty list: usable)."""
    reasons = []
    mono = seg.mean(axis=0)
    if _db(float(np.mean(seg.astype(np.float64) ** 2))) < f.min_rms_dbfs:
        reasons.append("near_silent")
        return reasons
    if sr >= 2 * f.highband_hz + 2000:
        spec = np.abs(np.fft.rfft(mono[: sr * 4] if mono.size > sr * 4 else mono)) ** 2
        freqs = np.fft.rfftfreq(min(mono.size, sr * 4), 1 / sr)
        hb = _db(spec[freqs >= f.highband_hz].sum() / max(spec.sum(), 1e-20))
        if hb < f.min_highband_db:
            reasons.append("band_limited")
    else:
        reasons.append("low_sample_rate")
    peak = float(np.abs(seg).max())
    if peak >= 0.5:
        near = np.abs(seg) >= 0.995 * peak
        flat = (np.abs(np.diff(seg, axis=1)) < 1e-7) & near[:, 1:]
        if near.mean() > f.max_clipped_fraction or flat.mean() > f.max_clipped_fraction / 4:
            reasons.append("clipped")
    if seg.shape[0] >= 2:
        left, right = seg[0].astype(np.float64), seg[1].astype(np.float64)
        denom = np.sqrt((left**2).sum() * (right**2).sum())
        if denom > 0 and (left * right).sum() / denom < f.min_lr_correlation:
            reasons.append("mono_collapsing")
    return reasons


def scan_track(path: str, clip_seconds: float, filters: Filters) -> TrackScan:
    try:
        dec = load_audio(path)
    except AudioError as exc:
        return TrackScan(0, 0, 0.0, error=str(exc))
    audio, sr = dec.samples, dec.sample_rate
    scan = TrackScan(sr, audio.shape[0], audio.shape[1] / sr)
    win, hop = int(clip_seconds * sr), int(filters.window_hop_s * sr)
    if audio.shape[1] < win:
        scan.rejected["too_short"] = 1
        return scan
    limit = filters.min_lossy_kbps.get(Path(path).suffix.lower().lstrip("."))
    if limit:
        scan.source_kbps = round(os.path.getsize(path) * 8 / 1000 / scan.duration, 1)
        if scan.source_kbps < limit:
            scan.rejected["low_bitrate_source"] = 1
            return scan
    for start in range(0, audio.shape[1] - win + 1, hop):
        problems = window_problems(audio[:, start : start + win], sr, filters)
        if problems:
            for r in problems:
                scan.rejected[r] = scan.rejected.get(r, 0) + 1
        else:
            scan.valid_offsets.append(round(start / sr, 3))
    return scan
