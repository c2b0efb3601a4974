"""How corpus clips are stored: the sample rate and file format of each clip, drawn as users have them.

Users give files at 44.1 and 48 kHz mostly, some at 32, 88.2 and 96 kHz, as 16/24-bit PCM, float WAV
or FLAC. A clip is rendered (source read, mastered, damaged) at its drawn rate and written in its
drawn format, and the feature cache reads it back through the validator's own path
(``adv.features.window_features``), so training sees what ``analyze()`` sees on a user's file.

The draws come from their own random stream (seeded from the clip's seed), so a clip's damage is the
same whatever its storage. Without a ``[storage]`` table every clip is a 24-bit FLAC at the config's
``sample_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from adv.errors import ConfigError

#: format name -> (file suffix, soundfile subtype)
FORMATS = {
    "flac16": (".flac", "PCM_16"),
    "flac24": (".flac", "PCM_24"),
    "wav16": (".wav", "PCM_16"),
    "wav24": (".wav", "PCM_24"),
    "wavfloat": (".wav", "FLOAT"),
}
_STREAM = 0x5702A6E  # the storage draws' own stream beside the clip's seed


def _weights(table: dict, key: str, allowed=None) -> tuple[tuple, tuple[float, ...]]:
    entries = table.get(key)
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"[storage] {key} must be a table of name = weight, got {entries!r}")
    names = tuple(entries)
    if allowed is not None and (bad := [n for n in names if n not in allowed]):
        raise ConfigError(f"[storage] {key}: unknown {bad}; choose from {', '.join(allowed)}")
    w = np.array([float(v) for v in entries.values()])
    if (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"[storage] {key}: weights must be >= 0 and not all 0")
    return names, tuple(float(x) for x in w / w.sum())


@dataclass(frozen=True)
class Storage:
    rates: tuple[int, ...]
    rate_weights: tuple[float, ...]
    formats: tuple[str, ...] = ("flac24",)
    format_weights: tuple[float, ...] = (1.0,)

    @classmethod
    def from_config(cls, table: dict | None, default_rate: int) -> "Storage":
        """``[storage]``: ``rates = { "44100" = 0.45, ... }``, ``formats = { flac24 = 0.4, ... }``."""
        if not table:
            return cls((int(default_rate),), (1.0,))
        rates, rw = _weights(table, "rates")
        try:
            rates = tuple(int(r) for r in rates)
        except ValueError:
            raise ConfigError(f"[storage] rates: sample rates must be integers, got {list(rates)}") from None
        if any(not 8000 <= r <= 384000 for r in rates):
            raise ConfigError(f"[storage] rates must lie in 8000-384000 Hz, got {list(rates)}")
        formats, fw = _weights(table, "formats", FORMATS)
        return cls(rates, rw, formats, fw)

    def draw(self, seed: int) -> tuple[int, str]:
        """(sample rate, format name) of the clip with this seed."""
        rng = np.random.default_rng([int(seed), _STREAM])
        rate = self.rates[int(rng.choice(len(self.rates), p=self.rate_weights))]
        fmt = self.formats[int(rng.choice(len(self.formats), p=self.format_weights))]
        return int(rate), fmt


def suffix(fmt: str) -> str:
    return FORMATS[fmt][0]


def write_clip(path: Path, audio: np.ndarray, rate: int, fmt: str) -> None:
    """Writes ``audio`` [C, n] (|x| <= 1) to ``path`` in format ``fmt``."""
    sf.write(path, audio.T, rate, subtype=FORMATS[fmt][1], format=FORMATS[fmt][0][1:].upper())
