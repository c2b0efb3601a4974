"""Signal measurements of decoded audio at its own sample rate and channel count.

``measure_track(audio, sample_rate)`` measures a whole track, ``measure_window(audio, sample_rate)``
the subset that makes sense for one analysis window (peaks, clipping, cut-off, SNR, stereo). Input:
float32-convertible [channels, samples] (or 1-D mono), nominally in [-1, 1], any rate and channel
count; stereo measures use the first two channels. Output: a dict of plain Python floats / ints /
bools / None (JSON-serialisable), None where a measure does not apply (stereo measures of mono,
loudness of digital silence or of less than 400 ms, LRA under 3 s, ...). Nothing raises on a valid
array: silence, DC, very short clips, mono and 5.1 all give a result.

Keys (each module's docstring says what the measure is and how it is made):

* ``loudness``/``truepeak``: ``sample_peak_dbfs``, ``true_peak_dbtp``, ``integrated_lufs``,
  ``loudness_range_lu``, ``dc_offset`` (track only: the last three);
* ``clipping``/``truepeak``: ``clipped_samples``, ``clipped_fraction`` (of all samples),
  ``longest_clip_run`` (samples), ``intersample_overs``, and ``clipping_per_channel``: one dict per
  channel with the same four keys (the fraction of that channel's samples);
* ``bandwidth``: ``cutoff_hz``; ``noise``: ``snr_db``, ``hum_hz`` (track only);
* ``spectrum`` (track only): ``spectral_deviation_db``, ``most_deviant_band_hz``, ``most_deviant_band_db``;
* ``stereo``: ``lr_correlation``, ``channel_delay_ms``, ``polarity_inverted``, ``mono_downmix_loss_db``.

``TrackMeter(sample_rate, channels, expected_frames)`` (``track_meter``) measures a track streamed as
decoded blocks of any size in memory that does not grow with its length, and ``measure_track`` is
that meter fed the whole track at once.

Speed (this 2-core CPU, shared and loaded): ~6.5 ms per 10-s stereo 44.1-kHz window (~14 ms when
it is heavily clipped at full scale: then most of it must be oversampled for the inter-sample
overs), ~95 ms per 3-min stereo 44.1-kHz track (~275 ms when 10 % of it is clipped), and
``TrackMeter`` in 65536-frame blocks ~115 ms for the same track (~26 ms per minute over an hour);
``scripts/measurement_accuracy.py`` prints the current figures. Nothing here calls multi-threaded
BLAS on large arrays: on a busy 2-core machine its threads slow a matrix product down 20-40x.
"""

from __future__ import annotations

import numpy as np

from adv.measurements import bandwidth, clipping, truepeak
from adv.measurements._blocks import block_spectra
from adv.measurements._common import as_audio, finite, rnd
from adv.measurements.track_meter import TrackMeter, empty_peaks, peak_fields, snr_from, stereo_fields

__all__ = ["TRACK_KEYS", "WINDOW_KEYS", "TrackMeter", "measure_track", "measure_window"]

WINDOW_KEYS = (
    "sample_peak_dbfs",
    "true_peak_dbtp",
    "clipped_samples",
    "clipped_fraction",
    "longest_clip_run",
    "intersample_overs",
    "clipping_per_channel",
    "cutoff_hz",
    "snr_db",
    "lr_correlation",
    "channel_delay_ms",
    "polarity_inverted",
    "mono_downmix_loss_db",
)
TRACK_KEYS = (
    WINDOW_KEYS[:2]
    + ("integrated_lufs", "loudness_range_lu", "dc_offset")
    + WINDOW_KEYS[2:9]
    + ("hum_hz", "spectral_deviation_db", "most_deviant_band_hz", "most_deviant_band_db")
    + WINDOW_KEYS[9:]
)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of a * b without BLAS (whose threads fight badly on a busy 2-core machine); einsum's
    float32 accumulation is good to ~1e-6 here."""
    return float(np.einsum("i,i->", a, b))


def _prepare(audio: np.ndarray) -> tuple[np.ndarray, truepeak.Extrema]:
    """(float32 [C, n] audio, its block extremes); non-finite samples (caught by the extremes, so
    without an extra pass) are set to 0."""
    x = as_audio(audio, check_finite=False)
    ext = truepeak.Extrema(x)
    if x.size and not np.isfinite(ext.peak).all():
        x = finite(x)
        ext = truepeak.Extrema(x)
    return x, ext


def measure_window(audio: np.ndarray, sample_rate: int) -> dict:
    """Per-window measurements (keys ``WINDOW_KEYS``) of ``audio`` [C, n] at ``sample_rate``."""
    x, ext = _prepare(audio)
    sr = int(sample_rate)
    C, n = x.shape
    if n:
        tp, overs = truepeak.inter_sample_peaks(ext)
        clip = [(d["clipped_samples"], d["longest_clip_run"]) for d in clipping.clipping_stats(ext)]
        out = peak_fields(ext.peak, tp, overs, clip, n)
    else:
        out = empty_peaks(C)
    bs = block_spectra(x, sr) if n else None
    out["cutoff_hz"] = rnd(bandwidth.cutoff_hz(bs.freqs, bs.psd.mean(axis=0), sr), 1) if bs is not None else None
    out["snr_db"] = snr_from(bs, C)
    if C >= 2 and n:
        l, r = x[0], x[1]
        out.update(
            stereo_fields(
                n,
                _dot(l, l),
                _dot(r, r),
                _dot(l, r),
                float(l.sum(dtype=np.float64)),
                float(r.sum(dtype=np.float64)),
                bs,
            )
        )
    else:
        out.update(stereo_fields(0, 0.0, 0.0, 0.0, 0.0, 0.0, None))
    return {k: out[k] for k in WINDOW_KEYS}


def measure_track(audio: np.ndarray, sample_rate: int) -> dict:
    """Whole-track measurements (keys ``TRACK_KEYS``) of ``audio`` [C, n] at ``sample_rate``: a
    ``TrackMeter`` fed the whole track in one block."""
    x = as_audio(audio, check_finite=False)
    meter = TrackMeter(sample_rate, x.shape[0], x.shape[1])
    meter.update(x)
    return meter.result()
