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

Speed (this 2-core CPU, shared and loaded): ~6.5 ms per 10-s stereo 44.1-kHz window (~14 ms when
it is heavily clipped at full scale: then most of it must be oversampled for the inter-sample
overs), ~105 ms per 3-min stereo 44.1-kHz track; ``scripts/measurement_accuracy.py`` prints the
current figures. Nothing here calls multi-threaded BLAS on large arrays: on a busy 2-core machine
its threads slow a matrix product down 20-40x.
"""

from __future__ import annotations

import numpy as np

from adv.measurements import bandwidth, clipping, loudness, noise, spectrum, stereo, truepeak
from adv.measurements._blocks import block_spectra
from adv.measurements._common import as_audio, db_amp, finite, rnd

__all__ = ["TRACK_KEYS", "WINDOW_KEYS", "measure_track", "measure_window"]

WINDOW_KEYS = (
    "sample_peak_dbfs", "true_peak_dbtp",
    "clipped_samples", "clipped_fraction", "longest_clip_run", "intersample_overs", "clipping_per_channel",
    "cutoff_hz", "snr_db",
    "lr_correlation", "channel_delay_ms", "polarity_inverted", "mono_downmix_loss_db",
)
TRACK_KEYS = WINDOW_KEYS[:2] + ("integrated_lufs", "loudness_range_lu", "dc_offset") + WINDOW_KEYS[2:9] + (
    "hum_hz", "spectral_deviation_db", "most_deviant_band_hz", "most_deviant_band_db") + WINDOW_KEYS[9:]


TRACK_ANALYSED_BLOCKS = 600   # whole tracks: at most about this many 100-ms blocks (evenly spread)
                              # feed the spectral measures; loudness uses every block


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of a * b without BLAS (whose threads fight badly on a busy 2-core machine); einsum's
    float32 accumulation is good to ~1e-6 here."""
    return float(np.einsum("i,i->", a, b))


def _sig(v: float, digits: int = 4) -> float:
    return float(f"{v:.{digits}g}")


def _prepare(audio: np.ndarray) -> tuple[np.ndarray, truepeak.Extrema]:
    """(float32 [C, n] audio, its block extremes); non-finite samples (caught by the extremes, so
    without an extra pass) are set to 0."""
    x = as_audio(audio, check_finite=False)
    ext = truepeak.Extrema(x)
    if x.size and not np.isfinite(ext.peak).all():
        x = finite(x)
        ext = truepeak.Extrema(x)
    return x, ext


def _peaks_and_clipping(x: np.ndarray, ext: truepeak.Extrema) -> dict:
    C, n = x.shape
    tp, overs = truepeak.inter_sample_peaks(ext)
    clip = clipping.clipping_stats(ext)
    per = []
    for c in range(C):
        cs = clip[c]["clipped_samples"]
        per.append({"clipped_samples": cs, "clipped_fraction": _sig(cs / n) if n else 0.0,
                    "longest_clip_run": clip[c]["longest_clip_run"], "intersample_overs": int(overs[c])})
    total = sum(p["clipped_samples"] for p in per)
    return {
        "sample_peak_dbfs": rnd(loudness.sample_peak_dbfs(ext.peak), 2),
        "true_peak_dbtp": rnd(db_amp(float(tp.max())), 2),
        "clipped_samples": int(total),
        "clipped_fraction": _sig(total / (C * n)) if n else 0.0,
        "longest_clip_run": int(max(p["longest_clip_run"] for p in per)),
        "intersample_overs": int(sum(p["intersample_overs"] for p in per)),
        "clipping_per_channel": per,
    }


def _stereo(x: np.ndarray, bs, energies: tuple[float, float] | None, sums: tuple[float, float] | None) -> dict:
    out = {"lr_correlation": None, "channel_delay_ms": None, "polarity_inverted": None, "mono_downmix_loss_db": None}
    if x.shape[0] < 2 or x.shape[1] == 0:
        return out
    l, r = x[0], x[1]
    n = x.shape[1]
    e_l, e_r = energies if energies is not None else (_dot(l, l), _dot(r, r))
    s_l, s_r = sums if sums is not None else (float(l.sum(dtype=np.float64)), float(r.sum(dtype=np.float64)))
    corr, loss = stereo.correlation_and_loss(e_l, e_r, _dot(l, r), s_l / n, s_r / n, n)
    out["lr_correlation"] = rnd(corr, 4)
    out["mono_downmix_loss_db"] = rnd(loss, 2)
    if bs is not None:
        delay, inverted = stereo.delay_and_polarity(bs.cross, bs.psd[0], bs.psd[1], bs.n_analysed,
                                                    bs.block_len, bs.sample_rate)
        out["channel_delay_ms"] = rnd(delay, 3)
        out["polarity_inverted"] = inverted
    return out


def measure_window(audio: np.ndarray, sample_rate: int) -> dict:
    """Per-window measurements (keys ``WINDOW_KEYS``) of ``audio`` [C, n] at ``sample_rate``."""
    x, ext = _prepare(audio)
    sr = int(sample_rate)
    out = _peaks_and_clipping(x, ext) if x.shape[1] else _empty_peaks(x.shape[0])
    bs = block_spectra(x, sr) if x.shape[1] else None
    out["cutoff_hz"] = rnd(bandwidth.cutoff_hz(bs.freqs, bs.psd.mean(axis=0), sr), 1) if bs is not None else None
    out["snr_db"] = _snr(bs, x.shape[0])
    out.update(_stereo(x, bs, None, None))
    return {k: out[k] for k in WINDOW_KEYS}


def measure_track(audio: np.ndarray, sample_rate: int) -> dict:
    """Whole-track measurements (keys ``TRACK_KEYS``) of ``audio`` [C, n] at ``sample_rate``."""
    x, ext = _prepare(audio)
    sr = int(sample_rate)
    C, n = x.shape
    out = _peaks_and_clipping(x, ext) if n else _empty_peaks(C)
    every = max(1, -(-(n // max(sr // 10, 1)) // TRACK_ANALYSED_BLOCKS))
    bs = block_spectra(x, sr, levels=True, analyse_every=every) if n else None
    out.update(integrated_lufs=None, loudness_range_lu=None, cutoff_hz=None, snr_db=None,
               spectral_deviation_db=None, most_deviant_band_hz=None, most_deviant_band_db=None)
    energies = sums = None
    if bs is not None:
        used = bs.n_blocks * bs.block_len
        tail = x[:, used:]
        ch_sums = bs.block_sum.sum(axis=1) + tail.sum(axis=1, dtype=np.float64)
        out["dc_offset"] = _sig(loudness.dc_offset(ch_sums, n), 4)
        out["integrated_lufs"] = rnd(loudness.integrated_lufs(bs.k_energy), 2)
        out["loudness_range_lu"] = rnd(loudness.loudness_range_lu(bs.k_energy), 2)
        long_term = bs.psd.mean(axis=0)
        out["cutoff_hz"] = rnd(bandwidth.cutoff_hz(bs.freqs, long_term, sr), 1)
        out["snr_db"] = _snr(bs, C)
        dev, band_hz, band_db = spectrum.spectral_deviation(bs.freqs, long_term, sr)
        out.update(spectral_deviation_db=rnd(dev, 2), most_deviant_band_hz=band_hz, most_deviant_band_db=rnd(band_db, 2))
        if C >= 2:
            e = bs.energy[:2].sum(axis=1) * bs.block_len
            energies = (float(e[0]) + _dot(tail[0], tail[0]), float(e[1]) + _dot(tail[1], tail[1]))
            sums = (float(ch_sums[0]), float(ch_sums[1]))
    else:
        out["dc_offset"] = _sig(loudness.dc_offset(x.sum(axis=1, dtype=np.float64), n), 4) if n else 0.0
    out["hum_hz"] = noise.hum_hz(x, sr) if n else None
    out.update(_stereo(x, bs, energies, sums))
    return {k: out[k] for k in TRACK_KEYS}


def _snr(bs, n_channels: int) -> float | None:
    if bs is None:
        return None
    # nothing but DC (or sub-40-Hz rumble): no music to speak of
    if float(bs.psd[:, 2 * bs.group_bins:].sum()) <= 1e-9 * float(bs.psd.sum()):
        return None
    return rnd(noise.snr_db(bs.group_energy, bs.group_bins, n_channels), 1)


def _empty_peaks(C: int) -> dict:
    per = [{"clipped_samples": 0, "clipped_fraction": 0.0, "longest_clip_run": 0, "intersample_overs": 0}
           for _ in range(C)]
    return {"sample_peak_dbfs": None, "true_peak_dbtp": None, "clipped_samples": 0, "clipped_fraction": 0.0,
            "longest_clip_run": 0, "intersample_overs": 0, "clipping_per_channel": per}
