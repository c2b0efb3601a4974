"""Stereo phase damage: polarity errors, inter-channel delay, mid/side cancellation, all-pass smear.

Severity is a mono-collapse measure. The quantity reported as ``mono_loss_db`` is

    mono_loss_db = 10 * log10(P(mid_original) / P(mid_distorted)),   mid = (L + R) / 2

(whole clip, capped at 60 dB), i.e. how much level the mono downmix loses; the L/R correlation
coefficient at lag 0 is reported as well (``lr_correlation_before`` / ``_after``). Every variant
maps severity monotonically onto its physical parameter such that, for a given correlated input,
``mono_loss_db`` grows monotonically with severity and is 0 at severity 0 (any severity above 0
starts at a just-audible strength). The size of the loss depends on the material: it is larger for
strongly correlated (near-mono) mixes and for material with more energy in the affected band.
Measured on the tests' correlated stereo signal (harmonic tones plus common pink noise plus a
little independent noise, L/R correlation 0.92), severity 0+ / 0.2 / 0.5 / 0.9 / 1 give roughly:

    polarity   0.7 / 1.4 / 3.1 / 7.2 / 13.7 dB
    delay      1.0 / 1.2 / 1.5 / 2.2 / 2.3 dB   (saturates near 3 dB: comb-filtered downmix)
    ms_cancel  0.7 / 1.5 / 3.7 / 8.7 / 10.2 dB
    allpass    1.5 / 1.8 / 1.9 / 2.2 / 2.2 dB   (saturates near 3 dB; L/R correlation falls
                                                  from 0.9 to about 0.1)

Variants (random choices drawn with ``rng``; which channel is affected is random):

* ``polarity``: one channel's polarity is inverted above a crossover frequency
  ``fc = 4 kHz * (20 Hz / 4 kHz) ** severity`` (log map: 4 kHz just above 0, 20 Hz at 1; at
  severity 1 the whole channel is inverted). The split is zero-phase and perfectly
  complementary (``low = sosfiltfilt(Butterworth 4th-order low-pass)``, ``high = x - low``,
  ``x' = low - high``), as with a mis-wired driver or a band that was flipped.
* ``delay``: one channel is delayed by ``delay_ms = 0.25 * 8 ** severity`` (0.25 ms just above 0,
  2 ms at 1, log map), a fractional delay done in the frequency domain on the zero-padded signal; the mono
  downmix becomes a comb filter with its first notch at ``1 / (2 * delay)``.
* ``ms_cancel``: mid scaled by ``-A * k`` dB (A ~ U(15, 25)) and side by ``+B * k`` dB
  (B ~ U(3, 9)), with ``k = 0.3 + 0.7 * severity``, then both channels are scaled so the total L+R power equals the input's
  (like an over-driven stereo widener followed by loudness matching). When the input has
  practically no side signal (side power < -30 dB re mid, e.g. dual mono) a pseudo-stereo side
  (mid through a random all-pass cascade, -10 dB re mid, scaled by k) is added first,
  otherwise there would be nothing to boost (``pseudo_side`` in the params).
* ``allpass``: a cascade of ``ceil(1 + 7 * severity)`` random second-order all-pass sections (centre
  frequencies log-uniform 100 Hz - 8 kHz, pole radius 0.7) applied causally to one channel:
  magnitude untouched, phase smeared, so the channels drift apart in phase. The section count is
  the strength (a fixed radius keeps the loss monotone: raising the radius towards 1 concentrates
  each section's phase turn in a narrow band and can *reduce* the loss). The loss saturates
  around 3 dB (phase difference spread over several turns ~ uncorrelated phase).

* ``phaser``: one channel goes through a swept phaser: a cascade of 4, 6 or 8 first-order all-pass
  stages whose break frequency sweeps ``fc * 2 ** (depth * sin(2 pi rate t))`` (fc log-uniform
  300 Hz - 3 kHz, depth U(1, 2) octaves, rate U(0.1, 1.5) Hz, updated every 4 ms), mixed with the
  dry channel as ``(x + m * ap(x)) / (1 + m)``; moving notches appear in that channel only, so the
  channels drift in and out of phase. The wet mix ``m = 0.35 + 0.65 * severity`` (notches -6 dB
  just above 0, complete at 1). (Corpus v4; before, modulated phase effects were never generated
  and a one-channel phaser from another tool was flagged 28 % of the time.)

Mono input (1 channel) is first duplicated to dual-mono stereo and **two channels are returned**
(phase damage needs two channels); for more than two channels only channels 0 and 1 are processed
and the rest pass through. Severity 0 returns the (stereo) input unchanged. Every map starts at a
just-audible strength for severity just above 0 (corpus v2; v1 started from nothing, so the low
quarter of the severity range was inaudible).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft
from scipy import signal
from adv.distortions.common import check_audio_and_severity as _check
from adv.distortions.common import floored_strength, pick_variant

KIND = "phase"
VARIANTS = ("polarity", "delay", "ms_cancel", "allpass", "phaser")
MAX_LOSS_DB = 60.0
MAX_ALLPASS_SECTIONS = 8
MIN_ALLPASS_SECTIONS = 1
POLARITY_TOP_HZ = 4000.0
DELAY_MIN_MS, DELAY_MAX_MS = 0.25, 2.0
MS_MIN_STRENGTH = 0.3
ALLPASS_RADIUS = 0.7
PHASER_MIX = (0.35, 1.0)  # wet mix just above severity 0 and at 1
PHASER_BLOCK_S = 0.004  # the sweep is updated every 4 ms


def _pick_variant(rng: np.random.Generator, variant: str | None) -> str:
    return pick_variant(rng, variant, VARIANTS, KIND)


def mono_loss_db(original: np.ndarray, distorted: np.ndarray) -> float:
    """10 log10(P(mid_original) / P(mid_distorted)) with mid = (L + R) / 2, capped at +-60 dB."""
    mo = (np.asarray(original[0], dtype=np.float64) + original[1]) / 2
    md = (np.asarray(distorted[0], dtype=np.float64) + distorted[1]) / 2
    po, pd = float(np.mean(mo * mo)), float(np.mean(md * md))
    if po <= 0.0:
        return 0.0
    if pd <= po * 10 ** (-MAX_LOSS_DB / 10):
        return MAX_LOSS_DB
    return float(min(max(10 * math.log10(po / pd), -MAX_LOSS_DB), MAX_LOSS_DB))


def lr_correlation(audio: np.ndarray) -> float:
    """Zero-lag correlation coefficient of channels 0 and 1 (1.0 when either is silent)."""
    left = np.asarray(audio[0], dtype=np.float64)
    right = np.asarray(audio[1], dtype=np.float64)
    den = math.sqrt(float(np.dot(left, left)) * float(np.dot(right, right)))
    return float(np.dot(left, right) / den) if den > 0 else 1.0


def _allpass_sections(freqs: np.ndarray, radius: float, sr: int) -> np.ndarray:
    rows = []
    for f in freqs:
        theta = 2 * math.pi * min(float(f), 0.45 * sr) / sr
        a1, a2 = -2 * radius * math.cos(theta), radius * radius
        rows.append([a2, a1, 1.0, 1.0, a1, a2])  # numerator = reversed denominator: all-pass
    return np.array(rows, dtype=np.float64)


def phaser_channel(
    x: np.ndarray, sr: int, stages: int, centre_hz: float, depth_oct: float, rate_hz: float, phase0: float, mix: float
) -> np.ndarray:
    """``(x + mix * A(x)) / (1 + mix)`` with ``A`` a cascade of first-order all-pass stages whose break
    frequency sweeps sinusoidally (coefficients held for PHASER_BLOCK_S, filter state carried over)."""
    block = max(1, int(round(PHASER_BLOCK_S * sr)))
    zi = np.zeros((stages, 2))
    wet = np.empty_like(x)
    for start in range(0, len(x), block):
        t = (start + block / 2) / sr
        f = centre_hz * 2.0 ** (depth_oct * math.sin(2 * math.pi * rate_hz * t + phase0))
        w = math.tan(math.pi * min(f, 0.45 * sr) / sr)
        a = (w - 1.0) / (w + 1.0)
        sos = np.tile([a, 1.0, 0.0, 1.0, a, 0.0], (stages, 1))
        wet[start : start + block], zi = signal.sosfilt(sos, x[start : start + block], zi=zi)
    return (x + mix * wet) / (1.0 + mix)


def _fractional_delay(x: np.ndarray, delay_samples: float) -> np.ndarray:
    n = x.shape[-1]
    pad = int(math.ceil(delay_samples)) + 64
    m = int(sp_fft.next_fast_len(n + pad, real=True))
    spec = np.fft.rfft(x, m)
    k = np.arange(spec.shape[-1])
    spec *= np.exp(-2j * np.pi * k * delay_samples / m)
    return np.fft.irfft(spec, m)[..., :n]


def apply(
    audio: np.ndarray, sample_rate: int, severity: float, rng: np.random.Generator, variant: str | None = None, **kwargs
) -> tuple[np.ndarray, dict]:
    """Damages the stereo image of ``audio`` [C, N]; returns (float32 [max(C, 2), N], params)."""
    src = _check(audio, severity)
    severity = float(severity)
    variant = _pick_variant(rng, variant)
    duplicated = src.shape[0] == 1
    x = np.repeat(src, 2, axis=0).astype(np.float64) if duplicated else src.astype(np.float64)
    n = x.shape[1]
    ch = int(rng.integers(2))
    params: dict = {
        "kind": KIND,
        "variant": variant,
        "severity": severity,
        "channel": "left" if ch == 0 else "right",
        "mono_input_duplicated": bool(duplicated),
    }
    y = x.copy()
    pair = x[:2]

    if variant == "polarity":
        top = min(POLARITY_TOP_HZ, 0.45 * sample_rate)
        fc = top * (20.0 / top) ** severity
        params["crossover_hz"] = float(fc) if severity < 1.0 else 0.0
        if severity >= 1.0:
            y[ch] = -pair[ch]
        elif severity > 0.0:
            sos = signal.butter(4, fc, btype="lowpass", fs=sample_rate, output="sos")
            padlen = min(3 * (2 * len(sos) + 1), n - 1)
            low = signal.sosfiltfilt(sos, pair[ch], padlen=max(padlen, 0))
            y[ch] = 2 * low - pair[ch]
        params["inverted_fraction_of_band"] = float(severity)
    elif variant == "delay" and severity > 0.0:
        delay_ms = DELAY_MIN_MS * (DELAY_MAX_MS / DELAY_MIN_MS) ** severity
        d = delay_ms * 1e-3 * sample_rate
        y[ch] = _fractional_delay(pair[ch], d)
        params.update(delay_ms=float(delay_ms), delay_samples=float(d), first_notch_hz=float(1000.0 / (2 * delay_ms)))
    elif variant == "ms_cancel":
        a_db, b_db = float(rng.uniform(15, 25)), float(rng.uniform(3, 9))
        ap_freqs = np.exp(rng.uniform(math.log(100), math.log(8000), size=8))
        k_sev = floored_strength(severity, MS_MIN_STRENGTH, 1.0)
        mid, side = (pair[0] + pair[1]) / 2, (pair[0] - pair[1]) / 2
        pm, ps = float(np.mean(mid * mid)), float(np.mean(side * side))
        pseudo = pm > 0 and ps < pm * 1e-3
        if pseudo and k_sev > 0:
            sos = _allpass_sections(ap_freqs, 0.8, sample_rate)
            dec = signal.sosfilt(sos, mid)
            pdec = float(np.mean(dec * dec))
            if pdec > 0:
                side = side + k_sev * dec * math.sqrt(0.1 * pm / pdec)
        gm, gs = 10 ** (-a_db * k_sev / 20), 10 ** (b_db * k_sev / 20)
        left, right = gm * mid + gs * side, gm * mid - gs * side
        p_in = float(np.mean(pair * pair))
        p_out = float(np.mean(left * left + right * right) / 2)
        k = math.sqrt(p_in / p_out) if p_out > 0 else 1.0
        y[0], y[1] = k * left, k * right
        params.update(
            mid_gain_db=-a_db * k_sev,
            side_gain_db=b_db * k_sev,
            strength=k_sev,
            full_mid_cut_db=a_db,
            full_side_boost_db=b_db,
            level_match_db=float(20 * math.log10(k)) if k > 0 else 0.0,
            pseudo_side=bool(pseudo),
        )
    elif variant == "allpass":
        freqs = np.exp(rng.uniform(math.log(100), math.log(8000), size=MAX_ALLPASS_SECTIONS))
        n_sec = int(math.ceil(floored_strength(severity, MIN_ALLPASS_SECTIONS, MAX_ALLPASS_SECTIONS)))
        radius = ALLPASS_RADIUS
        if n_sec > 0:
            y[ch] = signal.sosfilt(_allpass_sections(freqs[:n_sec], radius, sample_rate), pair[ch])
        params.update(
            sections=n_sec,
            pole_radius=float(radius),
            centre_freqs_hz=[float(min(f, 0.45 * sample_rate)) for f in freqs[:n_sec]],
        )
    elif variant == "phaser":
        stages = int(rng.choice([4, 6, 8]))
        centre = float(math.exp(rng.uniform(math.log(300), math.log(3000))))
        depth, rate, phase0 = float(rng.uniform(1, 2)), float(rng.uniform(0.1, 1.5)), float(rng.uniform(0, 2 * math.pi))
        mix = floored_strength(severity, *PHASER_MIX)
        if mix > 0:
            y[ch] = phaser_channel(pair[ch], sample_rate, stages, centre, depth, rate, phase0, mix)
        params.update(stages=stages, centre_hz=centre, depth_oct=depth, rate_hz=rate, mix=mix)

    y32 = np.nan_to_num(y).astype(np.float32)
    params.update(
        mono_loss_db=mono_loss_db(x, y32),
        lr_correlation_before=lr_correlation(x),
        lr_correlation_after=lr_correlation(y32),
    )
    return y32, params
