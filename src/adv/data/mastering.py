"""Loud mastering of clean source audio before any damage (corpus builds with a ``[mastering]`` table).

Commercial masters are brickwall-limited: peaks at full scale, 6-12 dB less crest factor than the
mix, no flat-topped samples. The corpus sources (game soundtracks, rendered scores) mostly are not,
and a model trained on them alone called limited clean music ``clipping``: 32 % of 120 clean test
clips limited by 6 dB, 58 % by 12 dB (the shipped model of corpus v5, `scripts/external_check.py`).

A share of the clips therefore goes through a look-ahead peak limiter (``numpy_audio_limiter``, the
limiter behind audiomentations' ``Limiter``) before the clip's level is drawn and its damage is
applied, as damage happens to mastered audio in practice. The limiter's gain moves smoothly, so
it makes no flat runs: the result is a clean clip, and it keeps its labels. Its settings are drawn
from the clip's own random stream and recorded in the manifest (``mastering``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy_audio_limiter

from adv.errors import ConfigError


@dataclass(frozen=True)
class Mastering:
    """``fraction`` of the clips are limited; the limiter threshold lies ``limit_db`` below the
    clip's peak; attack and release times are drawn in seconds."""

    fraction: float = 0.0
    limit_db: tuple[float, float] = (-12.0, -2.0)
    attack_s: tuple[float, float] = (0.0005, 0.005)
    release_s: tuple[float, float] = (0.05, 0.3)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ConfigError(f"mastering fraction must lie in [0, 1], got {self.fraction}")
        for name in ("limit_db", "attack_s", "release_s"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"mastering {name} must be [low, high], got {[lo, hi]}")
        if self.limit_db[1] > 0 or self.attack_s[0] <= 0 or self.release_s[0] <= 0:
            raise ConfigError("mastering limit_db must be <= 0 dB and the times > 0 s")

    @classmethod
    def from_config(cls, table: dict | None) -> Mastering:
        table = dict(table or {})
        unknown = set(table) - {"fraction", "limit_db", "attack_s", "release_s"}
        if unknown:
            raise ConfigError(f"mastering: unknown settings {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})


def _coefficient(seconds: float, sample_rate: int) -> float:
    """Per-sample smoothing coefficient reaching -60 dB of the way in ``seconds`` (audiomentations'
    convention)."""
    return 10 ** (-3.0 / max(sample_rate * seconds, 1.0))


def limit(audio: np.ndarray, sample_rate: int, threshold_db: float, attack_s: float, release_s: float) -> np.ndarray:
    """[channels, n] float32 audio limited ``threshold_db`` below its peak (channels linked). The
    limiter looks ahead by 60 % of the attack time and returns its output aligned with the input."""
    x = np.ascontiguousarray(audio, dtype=np.float32)
    peak = float(np.abs(x).max())
    if peak == 0.0:
        return x.copy()
    return numpy_audio_limiter.limit(
        signal=x.copy(),
        attack_coeff=_coefficient(attack_s, sample_rate),
        release_coeff=_coefficient(release_s, sample_rate),
        delay=max(round(0.6 * attack_s * sample_rate), 1),
        threshold=peak * 10 ** (threshold_db / 20),
    )


def draw_settings(rng: np.random.Generator, cfg: Mastering) -> dict:
    """One limiter setting drawn from ``cfg``'s ranges: ``limit_db`` uniform, ``attack_s`` and
    ``release_s`` log-uniform."""
    return {
        "limit_db": float(rng.uniform(*cfg.limit_db)),
        "attack_s": float(math.exp(rng.uniform(*np.log(cfg.attack_s)))),
        "release_s": float(math.exp(rng.uniform(*np.log(cfg.release_s)))),
    }


def master(audio: np.ndarray, sample_rate: int, rng: np.random.Generator, cfg: Mastering) -> tuple[np.ndarray, dict]:
    """Limits the clip with probability ``cfg.fraction``; returns the audio and its settings ({} when
    left as it was). Draws nothing from ``rng`` when the fraction is 0, so corpora built without
    mastering render exactly as before."""
    if cfg.fraction <= 0.0 or rng.uniform() >= cfg.fraction:
        return audio, {}
    drawn = draw_settings(rng, cfg)
    params = {
        "limit_db": round(drawn["limit_db"], 2),
        "attack_s": round(drawn["attack_s"], 5),
        "release_s": round(drawn["release_s"], 4),
    }
    return limit(audio, sample_rate, params["limit_db"], params["attack_s"], params["release_s"]), params
