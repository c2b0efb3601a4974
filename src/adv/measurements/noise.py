"""Background noise: a blind signal-to-noise estimate and mains hum.

``snr_db`` compares the music's power with the noise floor found under it, without a clean
reference. Music comes and goes at every frequency (notes end, instruments pause, drums leave gaps,
harmonics leave room between them) while broadband noise (hiss, room, a noisy chain) stays:

1. in each 40-Hz group of bins (from 40 Hz up) the quietest 100-ms blocks, the 10th percentile of the
   group's Hann-windowed block energies (digital silence left out), reveal the floor; for stationary
   noise that percentile is a known fraction of its mean (a chi-square quantile for the group's
   number of independent values), which is divided out;
2. where the music never pauses (a bass line), the floor found is the music's own; noise spectra are
   smooth and no steeper than pink towards low frequencies, so each group's floor is capped by the
   floors above it continued downwards at +3 dB per octave;
3. ``snr_db = 10 log10((P_mean - P_noise) / P_noise)`` with the sums over all groups, limited to
   [-30, 100] dB; None for silence or DC.

The floor is an upper bound on the noise, so the estimate leans towards too low an SNR on dense
music, and the pink cap lets noise steeper than pink (brown noise, rumble) pass partly unseen.
Measured on the synthetic mixes (``scripts/measurement_accuracy.py``, 10-s windows, 44.1/48/96 kHz):
white noise added at 0-30 dB SNR is read within 3.5 dB (bias +1.2 dB at 0 dB to -1.7 dB at 30 dB),
pink noise within 4 dB (bias +3.4 dB at 0 dB to +0.7 dB at 30 dB); the clean mixes (room noise
about 45 dB down) read 44-50 dB. Real recordings with reverb tails and dense arrangements will read
lower than their true SNR: use it to rank and to flag low values, not as a precise figure.

``hum_hz`` looks for mains hum (50 or 60 Hz and harmonics): narrow peaks at multiples of the mains
frequency (+-0.12 Hz per harmonic) standing out from the bins 3-12 Hz either side in the median
(over up to eight 3-s frames: hum is stationary, music is not) of a 0.33-Hz resolution spectrum of a
copy decimated to ~4 kHz. Three harmonics of the first 16 (multiples of 300 Hz, common to both
mains frequencies, left out) must stand 8 dB above their neighbours, one of them 12 dB, and their
peak frequencies divided by the harmonic number must agree within 0.03 Hz: hum is one mains
frequency and its exact multiples, while notes that happen to lie near multiples of 50 or 60 Hz (F4 is
349.2 Hz) scatter. The resolution also tells 50 Hz from a G1 bass note at 49 Hz.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

SNR_PERCENTILE = 10.0
NOISE_SLOPE = 1.0              # noise density may rise towards low frequencies at most like 1/f (pink)
SNR_RANGE_DB = (-30.0, 100.0)
SILENT_BLOCK_DB = -100.0       # blocks this far below the loudest are digital silence / fades
HUM_RATE = 4000.0             # the hum search runs on a boxcar-decimated copy at about this rate
HUM_FRAME_SECONDS = 3.0       # 0.33-Hz resolution
HUM_MAX_FRAMES = 8
HUM_FRAME_PERCENTILE = 25.0    # per bin over the frames: hum holds steady, notes come and go
HUM_DRIFT_HZ = 0.12           # mains frequency tolerance (x harmonic number)
HUM_BACKGROUND_PERCENTILE = 90.0   # a peak is compared with the strong bins around it: music with a
                                   # sample-exact loop has comb lines every 1-2 Hz, and one of them
                                   # falls on 50 or 60 Hz
HUM_HARMONICS = 16
HUM_PEAK_DB = 8.0              # a harmonic counts when it stands this far above its neighbours...
HUM_STRONG_DB = 12.0           # ... and hum needs one harmonic at least this prominent
HUM_MIN_HARMONICS = 3
HUM_F0_AGREEMENT_HZ = 0.03    # the strong harmonics' peak frequencies / h must agree this well


def _chi2_fraction(dof: np.ndarray, p: float) -> np.ndarray:
    """p-quantile of chi-square(dof) / dof (Wilson-Hilferty)."""
    z = {10.0: -1.2816, 5.0: -1.6449, 20.0: -0.8416}.get(p, -1.2816)
    k = np.maximum(dof, 1.0)
    return np.clip((1.0 - 2.0 / (9.0 * k) + z * np.sqrt(2.0 / (9.0 * k))) ** 3, 0.05, 1.0)


def snr_db(group_energy: np.ndarray, group_bins: int, n_channels: int) -> float | None:
    """Blind SNR (dB) from per-block energies in narrow groups of bins [blocks, groups]
    (Hann-windowed, channels summed); None for silence or fewer than 4 non-silent blocks."""
    e = np.asarray(group_energy, dtype=np.float64)
    if e.size == 0:
        return None
    tot = e.sum(axis=1)
    mx = float(tot.max())
    if mx <= 1e-20:
        return None
    e = e[tot > mx * 10.0 ** (SILENT_BLOCK_DB / 10.0)]
    if e.shape[0] < 4:
        return None
    k = max(int(np.floor(SNR_PERCENTILE / 100.0 * (e.shape[0] - 1))), 0)
    q = np.partition(e, k, axis=0)[k]
    # Hann-windowed neighbouring bins are correlated: ~1.5 bins per independent value
    dof = 2.0 * max(group_bins / 1.5, 1.0) * max(1, min(n_channels, 2))
    mean = e.mean(axis=0)
    floor = np.minimum(q / _chi2_fraction(np.array([dof]), SNR_PERCENTILE)[0], mean)
    # busy low bands (a bass line never pauses) hide their floor; noise spectra are smooth and no
    # steeper than pink towards low frequencies, so each group's floor is capped by the floors above
    # it continued at +3 dB/octave downwards
    f = (np.arange(len(floor)) + 1.5) * group_bins
    with np.errstate(divide="ignore"):
        lv = np.log(np.maximum(floor, 1e-300)) + NOISE_SLOPE * np.log(f)
    env = np.minimum.accumulate(lv[::-1])[::-1] - NOISE_SLOPE * np.log(f)
    noise_g = np.minimum(floor, np.exp(env))
    noise = float(noise_g.sum())
    total = float(mean.sum())
    if noise <= total * 1e-10:
        return SNR_RANGE_DB[1]
    sig = max(total - noise, noise * 10.0 ** (SNR_RANGE_DB[0] / 10.0))
    return float(np.clip(10.0 * np.log10(sig / noise), *SNR_RANGE_DB))


def hum_hz(x: np.ndarray, sample_rate: int) -> int | None:
    """50 or 60 when mains hum is present, else None (first two channels, power averaged)."""
    ch = x[: min(2, x.shape[0])]
    n = ch.shape[1]
    d = max(1, int(sample_rate // HUM_RATE))                  # boxcar decimation to ~2 kHz
    rate = sample_rate / d
    frame = 1 << int(np.floor(np.log2(max(HUM_FRAME_SECONDS * rate, 1.0))))
    while frame * d > n and frame > 256:
        frame //= 2
    df = rate / frame
    if frame * d > n or df > 1.5:
        return None
    frames = min(HUM_MAX_FRAMES, n // (frame * d))
    starts = np.linspace(0, n - frame * d, frames).astype(int) if frames > 1 else np.array([0])
    seg = np.stack([ch[:, s:s + frame * d] for s in starts], axis=1)    # [C, F, frame * d]
    if d > 1:
        seg = seg.reshape(seg.shape[0], frames, frame, d).mean(axis=-1)
    spec = sfft.rfft(seg * np.hanning(frame).astype(np.float32), axis=-1)
    power = (spec.real ** 2 + spec.imag ** 2).mean(axis=0)              # [frames, bins]
    if float(power.max()) <= 0.0:
        return None
    # hum is stationary, music is not: the median over frames keeps the one and thins the other
    power = np.percentile(power, HUM_FRAME_PERCENTILE, axis=0)
    power = power + float(power.max()) * 1e-12
    nbins = len(power)
    logp = np.log(power)
    best, best_score = None, 0.0
    for mains in (50.0, 60.0):
        prom, f0 = [], []
        for h in range(1, HUM_HARMONICS + 1):
            f = h * mains
            if (f + 14.0) / df >= nbins - 1 or f > 0.4 * rate:
                break
            if f % 300.0 == 0.0:               # shared by 50- and 60-Hz hum: no evidence for either
                continue
            half = h * HUM_DRIFT_HZ + df
            k0, k1 = int(np.floor((f - half) / df)), int(np.ceil((f + half) / df))
            k = k0 + int(np.argmax(power[k0:k1 + 1]))
            nb = np.r_[np.arange(int((f - 12.0) / df), int((f - 3.0) / df)),
                       np.arange(int((f + 3.0) / df) + 1, int((f + 12.0) / df) + 1)]
            prom.append(float(10.0 * np.log10(power[k] / np.percentile(power[nb], HUM_BACKGROUND_PERCENTILE))))
            # the peak's frequency, parabolic on log power, as an estimate of the mains frequency
            y0, y1, y2 = logp[k - 1], logp[k], logp[k + 1]
            den = y0 - 2.0 * y1 + y2
            off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
            f0.append((k + float(np.clip(off, -0.5, 0.5))) * df / h)
        prom, f0 = np.array(prom), np.array(f0)
        strong = prom >= HUM_PEAK_DB
        if np.count_nonzero(strong) < HUM_MIN_HARMONICS or prom.max() < HUM_STRONG_DB:
            continue
        # hum's harmonics sit at exact multiples of one mains frequency; notes near them do not
        ref = float(np.median(f0[strong]))
        agree = strong & (np.abs(f0 - ref) <= HUM_F0_AGREEMENT_HZ)
        if np.count_nonzero(agree) >= HUM_MIN_HARMONICS:
            score = float(prom[agree].sum())
            if score > best_score:
                best, best_score = int(mains), score
    return best
