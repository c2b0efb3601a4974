"""Screens the ambience recordings used as background noise: keeps steady noise, drops events.

The noise packages mix steady ambience (rain, wind, rivers, room tone, crowd loops) with sound
effects (a wolf howl, a chicken, thunder, a crow) and "dayscapes" that are mostly near-silence
with occasional calls. Mixed under music at a nominal SNR, an event is either a brief sound that
belongs to the scene or, between events, nothing at all, so such clips would be labelled "noise"
while sounding clean. A file is kept when it is at least ``min_seconds`` long and its level is
steady: the spread between the 90th and 10th percentile of its 100-ms frame levels (dB) is at most
``max_spread_db``. An event shorter than about a tenth of its file passes this test. The settings
live in ``configs/data.toml`` (``[noise_filter]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adv.audio_io import load_audio
from adv.errors import AdvError

_RATE = 16000
_FRAME_S = 0.1


@dataclass(frozen=True)
class NoiseFilter:
    min_seconds: float = 3.0
    max_spread_db: float = 15.0


def level_spread_db(samples: np.ndarray, sample_rate: int) -> float:
    """p90 - p10 of the 100-ms frame levels (dB) of the channel mean; inf when under 3 frames."""
    mono = np.asarray(samples, dtype=np.float64).mean(axis=0)
    n = int(_FRAME_S * sample_rate)
    frames = mono[: len(mono) // n * n].reshape(-1, n)
    if len(frames) < 3:
        return float("inf")
    level = 10.0 * np.log10((frames * frames).mean(axis=1) + 1e-12)
    p10, p90 = np.percentile(level, [10, 90])
    return float(p90 - p10)


def screen_noise_file(path: str, filt: NoiseFilter) -> dict:
    """{"path", "seconds", "spread_db", "keep", "reason"} for one file (undecodable files are dropped)."""
    try:
        audio = load_audio(path, _RATE)
    except AdvError as exc:
        return {"path": path, "seconds": 0.0, "spread_db": None, "keep": False, "reason": f"unreadable: {exc}"}
    seconds = audio.samples.shape[1] / _RATE
    spread = level_spread_db(audio.samples, _RATE)
    return judge_noise(path, round(seconds, 2), round(spread, 2) if np.isfinite(spread) else None, filt)


def judge_noise(path: str, seconds: float, spread_db: float | None, filt: NoiseFilter) -> dict:
    """The verdict row for a measured file (``spread_db`` None: fewer than 3 frames, i.e. unusable)."""
    reason = None
    if seconds < filt.min_seconds:
        reason = "too short"
    elif spread_db is None or spread_db > filt.max_spread_db:
        reason = "unsteady"
    return {"path": path, "seconds": seconds, "spread_db": spread_db, "keep": reason is None, "reason": reason}
