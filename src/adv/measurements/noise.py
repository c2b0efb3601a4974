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
(over the frames: hum is stationary, music is not) of a ~0.5-Hz resolution spectrum of a copy
decimated to ~4 kHz. The frames (8192 decimated samples, ~2 s) lie on a fixed grid of consecutive
frames, of which every k-th is used, k the smallest power of two that leaves at most 16 (all of a
short track's; ``HumFrames``: a stream keeps their spectra only, never the signal; under one frame,
one shorter frame). Three harmonics of the first 16 (multiples of 300 Hz, common to both mains
frequencies, left out) must stand 8 dB above their neighbours, one of them 12 dB, and their
peak frequencies divided by the harmonic number must agree within 0.03 Hz: hum is one mains
frequency and its exact multiples, while notes that happen to lie near multiples of 50 or 60 Hz (F4 is
349.2 Hz) scatter. The resolution also tells 50 Hz from a G1 bass note at 49 Hz.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

SNR_PERCENTILE = 10.0
NOISE_SLOPE = 1.0  # noise density may rise towards low frequencies at most like 1/f (pink)
SNR_RANGE_DB = (-30.0, 100.0)
SILENT_BLOCK_DB = -100.0  # blocks this far below the loudest are digital silence / fades
HUM_RATE = 4000.0  # the hum search runs on a boxcar-decimated copy at about this rate
HUM_FRAME_SECONDS = 3.0  # 0.33-Hz resolution
HUM_MAX_FRAMES = 8
HUM_FRAME_PERCENTILE = 25.0  # per bin over the frames: hum holds steady, notes come and go
HUM_DRIFT_HZ = 0.12  # mains frequency tolerance (x harmonic number)
HUM_BACKGROUND_PERCENTILE = 90.0  # a peak is compared with the strong bins around it: music with a
# sample-exact loop has comb lines every 1-2 Hz, and one of them
# falls on 50 or 60 Hz
HUM_HARMONICS = 16
HUM_PEAK_DB = 8.0  # a harmonic counts when it stands this far above its neighbours...
HUM_STRONG_DB = 12.0  # ... and hum needs one harmonic at least this prominent
HUM_MIN_HARMONICS = 3
HUM_F0_AGREEMENT_HZ = 0.03  # the strong harmonics' peak frequencies / h must agree this well


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
    h = HumFrames(sample_rate, x.shape[1])
    h.update(x, 0, x.shape[1])
    return h.result(x.shape[1])


class HumFrames:
    """What the hum search needs from a stream: the power spectra of the used frames of a
    boxcar-decimated copy (first two channels). Frames lie on a grid from sample 0; frame f is kept
    when f is a multiple of ``stride`` or among the first ``HUM_MAX_FRAMES`` (a stream shorter than
    announced still has a spread). ``stride`` is a power of two, from ``expected_frames``, and
    doubles whenever more than 2 x ``HUM_MAX_FRAMES`` multiples are kept (so a stream of unknown
    length ends with the stride its length gives); memory stays at ~24 spectra."""

    def __init__(self, sample_rate: int, expected_frames: int | None = None):
        self.d = max(1, int(sample_rate // HUM_RATE))  # boxcar decimation to ~4 kHz
        self.rate = sample_rate / self.d
        self.frame = 1 << int(np.floor(np.log2(max(HUM_FRAME_SECONDS * self.rate, 1.0))))
        self.span = self.frame * self.d  # raw samples per frame
        total = int(expected_frames) // self.span if expected_frames else 0
        self.stride = 1  # the smallest power of two leaving
        while -(-total // self.stride) > 2 * HUM_MAX_FRAMES:  # at most 16 multiples (as _thin ends)
            self.stride *= 2
        self.spectra: dict[int, np.ndarray] = {}  # frame index -> power [bins] float32
        self._cur: list[np.ndarray] = []  # decimated pieces of the frame being filled
        self.next = 0  # next raw sample to read (a multiple of d)

    def _kept(self, f: int) -> bool:
        return f < HUM_MAX_FRAMES or f % self.stride == 0

    def _next_kept(self, f: int) -> int:
        return f + 1 if f + 1 < HUM_MAX_FRAMES else (f // self.stride + 1) * self.stride

    def carry_from(self, n: int) -> int:
        """First raw sample still needed (``n``: samples seen): the rest of a d-group of a kept frame."""
        return self.next if self._kept(self.next // self.span) else n

    def update(self, buf: np.ndarray, buf0: int, n: int) -> None:
        """Reads samples ``self.next`` .. ``n`` (whole d-groups) of ``buf`` [C, *], which starts at
        sample ``buf0``."""
        ch = buf[: min(2, buf.shape[0])]
        end = (n // self.d) * self.d
        while -(-(n // self.span) // self.stride) > 2 * HUM_MAX_FRAMES:
            self.stride *= 2  # the stream is known to be this long
            self._thin()
        while self.next < end:
            f = self.next // self.span
            if not self._kept(f):
                self.next = self._next_kept(f) * self.span
                continue
            f_end = (f + 1) * self.span
            b = min(end, f_end)
            self._cur.append(_decimate(ch[:, self.next - buf0 : b - buf0], self.d))
            self.next = b
            if b == f_end:
                self.spectra[f] = _frame_power(np.concatenate(self._cur, axis=1))
                self._cur = []
                self._thin()

    def _thin(self) -> None:
        while sum(1 for f in self.spectra if f % self.stride == 0) > 2 * HUM_MAX_FRAMES:
            self.stride *= 2
        self.spectra = {f: p for f, p in self.spectra.items() if self._kept(f)}
        f = self.next // self.span
        if self.next % self.span and not self._kept(f):  # the frame being filled is no longer used
            self._cur = []
            self.next = self._next_kept(f) * self.span

    def result(self, n: int) -> int | None:
        """The hum decision for a stream of ``n`` samples (state unchanged)."""
        complete = n // self.span
        if complete == 0:  # shorter than a frame: one shorter frame
            frame = self.frame
            while frame * self.d > n and frame > 256:
                frame //= 2
            if frame * self.d > n or self.rate / frame > 1.5 or not self._cur:
                return None
            power = _frame_power(np.concatenate(self._cur, axis=1)[:, :frame])[None]
            return hum_decision(power, self.rate / frame, self.rate)
        used = [f for f in self.spectra if f < complete and f % self.stride == 0]
        if len(used) < min(HUM_MAX_FRAMES, complete):
            used = set(used) | {f for f in self.spectra if f < min(HUM_MAX_FRAMES, complete)}
        if self.rate / self.frame > 1.5:
            return None
        power = np.stack([self.spectra[f] for f in sorted(used)])
        return hum_decision(power, self.rate / self.frame, self.rate)


def _decimate(seg: np.ndarray, d: int) -> np.ndarray:
    """Means of consecutive ``d``-sample groups (a multiple of d long), as d strided adds: numpy's
    reduction over a short last axis is several times slower."""
    if d == 1:
        return seg.copy()
    g = seg.reshape(seg.shape[0], -1, d)
    acc = g[:, :, 0].copy()
    for j in range(1, d):
        acc += g[:, :, j]
    return acc * np.float32(1.0 / d)


def _frame_power(seg: np.ndarray) -> np.ndarray:
    """Hann-windowed power spectrum of one decimated frame [C, frame], channels averaged (float32)."""
    spec = sfft.rfft(seg * np.hanning(seg.shape[1]).astype(np.float32), axis=-1)
    return (spec.real**2 + spec.imag**2).mean(axis=0)


def hum_decision(power: np.ndarray, df: float, rate: float) -> int | None:
    """50, 60 or None from the power spectra [frames, bins] (bin spacing ``df``) of a decimated copy
    at ``rate``."""
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
            if f % 300.0 == 0.0:  # shared by 50- and 60-Hz hum: no evidence for either
                continue
            half = h * HUM_DRIFT_HZ + df
            k0, k1 = int(np.floor((f - half) / df)), int(np.ceil((f + half) / df))
            k = k0 + int(np.argmax(power[k0 : k1 + 1]))
            nb = np.r_[
                np.arange(int((f - 12.0) / df), int((f - 3.0) / df)),
                np.arange(int((f + 3.0) / df) + 1, int((f + 12.0) / df) + 1),
            ]
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
