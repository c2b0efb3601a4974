"""Spectral balance: how far the long-term spectrum departs from a typical music spectrum.

EQ damage (a boosted or cut band, a tilted or thinned sound, missing bass or treble) moves the
long-term 1/3-octave band levels away from the balance music normally has. The measured band levels
(50 Hz - 16 kHz, bands above 0.9 x Nyquist left out) are aligned with a reference spectrum by their
median difference, so overall level does not count, and:

* ``spectral_deviation_db`` = RMS over the bands of (measured - reference), each band's difference
  limited to +-30 dB so that a few empty bands above a low-pass do not swamp the figure;
* ``most_deviant_band_hz`` / ``most_deviant_band_db``: centre of the band with the largest absolute
  difference, and that signed difference (positive: louder than the reference).

The reference (``reference_spectrum.json``) holds one level per band. It starts as a generic shape
(see ``GENERIC_SOURCE``) and is meant to be re-fitted on the clean corpus with
:func:`fit_reference` / :func:`save_reference`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

REFERENCE_PATH = Path(__file__).with_name("reference_spectrum.json")
BAND_CENTRES = tuple(float(f) for f in 1000.0 * 2.0 ** (np.arange(-13, 13) / 3.0))  # 50 Hz .. 16 kHz
NOMINAL = (
    50,
    63,
    80,
    100,
    125,
    160,
    200,
    250,
    315,
    400,
    500,
    630,
    800,
    1000,
    1250,
    1600,
    2000,
    2500,
    3150,
    4000,
    5000,
    6300,
    8000,
    10000,
    12500,
    16000,
)
MAX_BAND_DB = 30.0
# Generic long-term spectrum of mixed and mastered popular music, 1/3-octave band power in dB re
# the 1 kHz band: a bass plateau at 63-125 Hz, then about -3 dB per octave up to ~6 kHz and a faster
# fall towards 16 kHz. A smoothed approximation of the shape reported for large sets of commercial
# recordings (e.g. Elowsson & Friberg, "Long-term average spectrum in popular music and its relation
# to the level of the percussion", AES 2017; Pestana et al., "Spectral characteristics of popular
# commercial recordings 1950-2010", AES 2013), written down by hand, not their data.
GENERIC_LEVELS_DB = (
    8.0,
    9.0,
    9.5,
    9.5,
    9.0,
    8.0,
    7.0,
    6.0,
    5.0,
    4.0,
    3.0,
    2.0,
    1.0,
    0.0,
    -1.0,
    -2.0,
    -3.0,
    -4.0,
    -5.0,
    -6.0,
    -7.0,
    -8.0,
    -9.5,
    -11.0,
    -13.0,
    -16.5,
)
GENERIC_SOURCE = (
    "generic popular-music long-term spectrum (hand-written smoothed approximation of "
    "published LTAS shapes: bass plateau 63-125 Hz, about -3 dB/octave to 6 kHz, "
    "steeper above); not fitted to data"
)


def generic_reference() -> dict:
    return {
        "band_centres_hz": list(NOMINAL),
        "level_db": list(GENERIC_LEVELS_DB),
        "source": GENERIC_SOURCE,
        "n_tracks": 0,
    }


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        ref = json.loads(Path(path).read_text())
        levels = np.asarray(ref["level_db"], dtype=np.float64)
        if levels.shape != (len(BAND_CENTRES),):
            raise ValueError("wrong number of bands")
    except (OSError, ValueError, KeyError, TypeError):
        levels = np.asarray(GENERIC_LEVELS_DB, dtype=np.float64)
    return np.asarray(BAND_CENTRES), levels


def reference_levels(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(band centres, reference levels in dB); the generic shape if the file is missing or bad."""
    return _load(str(path or REFERENCE_PATH))


def band_levels(freqs: np.ndarray, power: np.ndarray, sample_rate: int) -> np.ndarray:
    """Long-term 1/3-octave band levels (dB) of ``power`` at the reference bands; NaN for bands
    above 0.9 x Nyquist or without content."""
    centres = np.asarray(BAND_CENTRES)
    lo, hi = centres * 2.0 ** (-1 / 6), centres * 2.0 ** (1 / 6)
    cum = np.r_[0.0, np.cumsum(np.asarray(power, dtype=np.float64))]
    df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 1.0
    # fractional-bin band sums (bands narrower than a bin take their share of it)
    grid = np.arange(len(cum))
    e_lo = np.clip(lo / df + 0.5, 0, len(power))
    e_hi = np.clip(hi / df + 0.5, 0, len(power))
    band = np.interp(e_hi, grid, cum) - np.interp(e_lo, grid, cum)
    out = np.full(len(centres), np.nan)
    ok = (hi <= 0.9 * sample_rate / 2) & (band > 0)
    out[ok] = 10.0 * np.log10(band[ok])
    return out


def spectral_deviation(
    freqs: np.ndarray, power: np.ndarray, sample_rate: int, reference: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[float | None, float | None, float | None]:
    """(spectral_deviation_db, most_deviant_band_hz, most_deviant_band_db); Nones for silence or
    when fewer than 6 bands are usable."""
    centres, ref = reference if reference is not None else reference_levels()
    lv = band_levels(freqs, power, sample_rate)
    ok = np.isfinite(lv)
    total = float(np.nansum(10.0 ** (lv[ok] / 10.0))) if ok.any() else 0.0
    if np.count_nonzero(ok) < 6 or total <= 0:
        return None, None, None
    # bands far below the loudest (quantisation floor of a band-limited file) still count, limited
    diff = lv[ok] - ref[ok]
    diff = diff - np.median(diff)
    diff = np.clip(diff, -MAX_BAND_DB, MAX_BAND_DB)
    rms = float(np.sqrt(np.mean(diff**2)))
    j = int(np.argmax(np.abs(diff)))
    return rms, float(np.asarray(NOMINAL)[ok][j]), float(diff[j])


def fit_reference(tracks, source: str = "fitted on clean tracks") -> dict:
    """Reference spectrum learnt from clean audio: ``tracks`` is an iterable of (audio [C, n],
    sample_rate). Each track's band levels are aligned by their median over 250 Hz - 4 kHz, the
    aligned levels averaged per band (power-free, in dB) and re-referenced to the 1 kHz band."""
    from adv.measurements._blocks import block_spectra
    from adv.measurements._common import as_audio

    rows = []
    for audio, sr in tracks:
        x = as_audio(audio)
        bs = block_spectra(x, int(sr), analyse_every=max(1, x.shape[1] // (int(sr) // 10) // 600))
        if bs is None:
            continue
        lv = band_levels(bs.freqs, bs.psd.mean(axis=0), int(sr))
        mid = [i for i, f in enumerate(NOMINAL) if 250 <= f <= 4000 and np.isfinite(lv[i])]
        if len(mid) < 6:
            continue
        rows.append(lv - np.median(lv[mid]))
    if not rows:
        raise ValueError("no usable tracks to fit a reference spectrum")
    a = np.vstack(rows)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(a, axis=0)
    generic = np.asarray(GENERIC_LEVELS_DB)
    seen = np.isfinite(mean)
    # bands no track reaches (low sample rates) keep the generic shape, aligned to the fitted ones
    mean = np.where(seen, mean, generic + np.median(mean[seen] - generic[seen]))
    mean = mean - mean[NOMINAL.index(1000)]
    return {
        "band_centres_hz": list(NOMINAL),
        "level_db": [round(float(v), 2) for v in mean],
        "source": source,
        "n_tracks": len(rows),
    }


def save_reference(ref: dict, path: str | Path = REFERENCE_PATH) -> None:
    """Writes ``ref`` (from :func:`fit_reference` or :func:`generic_reference`) as JSON."""
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in ref.items())
    Path(path).write_text("{\n" + body + "\n}\n")
    _load.cache_clear()
