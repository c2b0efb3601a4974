"""Additive noise: recorded ambience, synthetic hiss (white/pink/brown) and mains hum.

Severity -> signal-to-noise ratio (linear in dB): ``snr_db = 24 - 24 * severity``, i.e. 24 dB at 0
(audible on quiet passages and with hiss; corpus v1 started at 30 dB, which under loud music was
inaudible), 18 / 12 / 6 / 0 dB at severity 0.25 / 0.5 / 0.75 / 1.

SNR definition (whole clip): ``10 * log10(P_signal / P_noise)`` where ``P_noise`` is the mean
square of the added noise over all samples and channels, and ``P_signal`` is the *active* power of
the clean input (:func:`active_power`: mean square over the 50 ms frames whose power is within
50 dB of the loudest frame, so leading/trailing silence does not lower the reference). The noise
is scaled so this holds exactly before the float32 cast (``measured_snr_db`` in the params is
recomputed afterwards). Input quieter than -100 dBFS counts as silent: then the reference is a
nominal -20 dBFS signal, so the noise lands at ``-20 - snr_db`` dBFS (``signal_silent`` is set).
Nothing is clipped or limited: the sum may exceed 1.0.

Variants:

* ``recorded``: an excerpt of a real ambience recording drawn from a :class:`NoiseBank`
  (``noise_bank=`` keyword). Without a bank, or when none of its files decodes, a synthetic hiss
  (white/pink/brown, drawn with ``rng``) is used instead; ``variant`` in the params then names the
  noise actually added and ``requested_variant`` is ``"recorded"``.
* ``white`` / ``pink`` / ``brown``: Gaussian noise with 1/f^0, 1/f^1, 1/f^2 power spectra (spectrum
  flat below 20 Hz, no DC), stereo-decorrelated: channels share a common component with power
  fraction ``rho`` drawn from U(0, 0.3).
* ``hum``: 50 or 60 Hz mains hum (+-0.1 Hz) with a random harmonic series (decay exponent
  U(0.6, 1.5), random phases and a random 2nd-harmonic emphasis), a little buzz (a train of narrow
  pulses at twice the mains rate, -14..-24 dB re the hum) and a faint broadband floor (-40 dB);
  nearly identical in both channels (per-channel gains U(0.7, 1)).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np

from adv.audio_io import load_audio
from adv.distortions.common import check_audio_and_severity as _check
from adv.distortions.common import pick_variant
from adv.errors import AdvError

MAX_SNR_DB = 24.0  # SNR at severity 0; 0 dB at severity 1

KIND = "noise"
VARIANTS = ("recorded", "white", "pink", "brown", "hum")
SYNTHETIC_HISS = ("white", "pink", "brown")

SILENCE_POWER = 1e-10  # -100 dBFS
SILENT_REFERENCE_POWER = 1e-2  # -20 dBFS, used as signal reference for silent input
_FRAME_S = 0.05
_ACTIVE_RANGE_DB = 50.0


class NoiseBankEmptyError(AdvError, ValueError):
    """No file of a :class:`NoiseBank` could be decoded."""


def _db(p: float) -> float | None:
    return float(10.0 * math.log10(p)) if p > 0 else None


def active_power(audio: np.ndarray, sample_rate: int, range_db: float = _ACTIVE_RANGE_DB) -> float:
    """Mean square of ``audio`` [C, N] over its active frames (all channels together).

    Frames are 50 ms long; a frame is active when its power is within ``range_db`` of the loudest
    frame and above -100 dBFS. Returns 0.0 for silent input.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    frame = max(1, int(round(_FRAME_S * sample_rate)))
    n = x.shape[1]
    sq = (x * x).mean(axis=0)
    n_full = n // frame
    powers = [sq[: n_full * frame].reshape(n_full, frame).mean(axis=1)] if n_full else []
    if n - n_full * frame > 0:
        powers.append(np.array([sq[n_full * frame :].mean()]))
    weights = np.full(n_full, frame, dtype=np.float64)
    if n - n_full * frame > 0:
        weights = np.append(weights, n - n_full * frame)
    p = np.concatenate(powers)
    if p.max() <= SILENCE_POWER:
        return 0.0
    active = (p >= p.max() * 10 ** (-range_db / 10)) & (p > SILENCE_POWER)
    return float(np.average(p[active], weights=weights[active]))


# ------------------------------------------------------------------------------------------------
# synthetic noises


def coloured_noise(
    rng: np.random.Generator, channels: int, n: int, sample_rate: int, exponent: float, common_fraction: float = 0.0
) -> np.ndarray:
    """Gaussian noise [C, n] with power spectrum ~ 1/f**exponent (flat below 20 Hz, no DC), unit RMS.

    ``common_fraction`` of each channel's power is shared between the channels.
    """
    indep = rng.standard_normal((channels, n))
    common = rng.standard_normal((1, n))
    w = math.sqrt(common_fraction) * common + math.sqrt(1.0 - common_fraction) * indep
    if exponent != 0.0:
        spec = np.fft.rfft(w, axis=1)
        f = np.fft.rfftfreq(n, 1.0 / sample_rate)
        shape = np.maximum(f, 20.0) ** (-exponent / 2.0)
        shape[0] = 0.0
        w = np.fft.irfft(spec * shape, n, axis=1)
    rms = float(np.sqrt(np.mean(w * w)))
    return w / rms if rms > 0 else w


def mains_hum(rng: np.random.Generator, channels: int, n: int, sample_rate: int) -> tuple[np.ndarray, dict]:
    """Mains hum with harmonics, a little buzz and a faint floor, [C, n], unit RMS; and its parameters."""
    mains = float(rng.choice([50.0, 60.0]))
    f0 = mains + float(rng.uniform(-0.1, 0.1))
    decay = float(rng.uniform(0.6, 1.5))
    second = float(rng.uniform(0.5, 2.0))
    buzz_db = float(rng.uniform(-24.0, -14.0))
    phases = rng.uniform(0.0, 2 * np.pi, size=40)
    jitter = rng.uniform(0.7, 1.3, size=40)
    ch_gain = rng.uniform(0.7, 1.0, size=channels)
    floor = rng.standard_normal((channels, n))
    t = np.arange(n) / sample_rate
    limit = 0.45 * sample_rate
    hum = np.zeros(n)
    n_harm = 0
    for k in range(1, 41):
        if k * f0 >= min(limit, 4000.0):
            break
        amp = jitter[k - 1] * k ** (-decay) * (second if k == 2 else 1.0)
        hum += amp * np.sin(2 * np.pi * k * f0 * t + phases[k - 1])
        n_harm = k
    hum /= max(float(np.sqrt(np.mean(hum * hum))), 1e-12)
    # buzz: narrow pulses at twice the mains rate (rectifier / dimmer); sin**40 is a trigonometric
    # polynomial, so its partials stop at 40 * 2 * f0 (<= 4.8 kHz): no aliasing at common rates
    buzz = np.sin(2 * np.pi * f0 * t) ** 40
    buzz -= buzz.mean()
    buzz /= max(float(np.sqrt(np.mean(buzz * buzz))), 1e-12)
    mono = hum + 10 ** (buzz_db / 20) * buzz
    out = ch_gain[:, None] * mono[None, :] + 0.01 * floor
    out /= float(np.sqrt(np.mean(out * out)))
    info = {
        "mains_hz": mains,
        "hum_f0_hz": f0,
        "harmonics": n_harm,
        "harmonic_decay": decay,
        "second_harmonic_gain": second,
        "buzz_db": buzz_db,
        "channel_gains": [float(g) for g in ch_gain],
    }
    return out, info


# ------------------------------------------------------------------------------------------------
# recorded noise


def _loop(x: np.ndarray, n: int, start: int, fade: int) -> np.ndarray:
    """``n`` samples of ``x`` [C, L] from ``start`` on, looping with equal-power crossfades."""
    length = x.shape[1]
    if start + n <= length:
        return x[:, start : start + n].copy()
    fade = min(fade, length // 4)
    step = length - fade
    copies = 1 + math.ceil(max(0, start + n - length) / step)
    total = length + (copies - 1) * step
    out = np.zeros((x.shape[0], total))
    ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade) if fade > 0 else np.zeros(0)
    for j in range(copies):
        seg = x.astype(np.float64, copy=True)
        if fade > 0:
            if j > 0:
                seg[:, :fade] *= ramp
            if j < copies - 1:
                seg[:, length - fade :] *= ramp[::-1]
        out[:, j * step : j * step + length] += seg
    return out[:, start : start + n]


class NoiseBank:
    """A set of ambience recordings to draw noise excerpts from.

    Files are decoded lazily (``adv.audio_io.load_audio`` at ``sample_rate``) the first time they are
    drawn and kept in a small LRU cache (``max_cached`` files). Files that fail to decode, are
    silent or shorter than 10 ms are skipped (recorded in :attr:`failed`). Which file an excerpt
    comes from depends only on ``rng`` and the path list, not on what is cached or already known to
    be bad: the index is drawn from all paths and unusable files pass on to the next usable one.
    """

    def __init__(self, paths: list[str | Path], sample_rate: int = 32000, max_cached: int = 16):
        self.paths = [Path(p) for p in paths]
        self.sample_rate = int(sample_rate)
        self.max_cached = max(1, int(max_cached))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.failed: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def _get(self, i: int) -> np.ndarray | None:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        path = self.paths[i]
        if str(path) in self.failed:
            return None
        try:
            data = np.asarray(load_audio(path, self.sample_rate).samples, dtype=np.float32)
        except Exception as exc:  # any decoding problem: skip the file
            self.failed[str(path)] = f"{type(exc).__name__}: {exc}"
            return None
        if data.ndim != 2 or data.shape[1] < max(1, self.sample_rate // 100):
            self.failed[str(path)] = "too short"
            return None
        if not np.isfinite(data).all() or float(np.max(np.abs(data))) == 0.0:
            self.failed[str(path)] = "silent or invalid samples"
            return None
        self._cache[i] = data
        if len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return data

    def sample_with_info(self, rng: np.random.Generator, n_samples: int, channels: int = 2) -> tuple[np.ndarray, dict]:
        """Like :meth:`sample`, also returning where the excerpt came from."""
        if not self.paths:
            raise NoiseBankEmptyError("noise bank has no files")
        n_samples, channels = int(n_samples), int(channels)
        # fixed number of draws, whatever the file turns out to be
        first = int(rng.integers(len(self.paths)))
        u_start, u_shift = float(rng.random()), float(rng.random())
        mix = float(rng.uniform(0.3, 0.7))
        swap = bool(rng.random() < 0.5)
        gain_db = float(rng.uniform(-6.0, 0.0))
        for k in range(len(self.paths)):
            i = (first + k) % len(self.paths)
            data = self._get(i)
            if data is not None:
                break
        else:
            raise NoiseBankEmptyError(f"none of the {len(self.paths)} noise files could be decoded")
        length = data.shape[1]
        fade = int(0.02 * self.sample_rate)
        start = int(u_start * (length - n_samples + 1)) if length >= n_samples else int(u_start * length)
        base = _loop(data, n_samples, start, fade)
        src_ch = base.shape[0]
        if channels == src_ch:
            out = base
        elif channels == 1:
            out = base.mean(axis=0, keepdims=True)
        elif channels < src_ch:
            out = base[:channels]
        elif src_ch == 1:
            # mono file -> decorrelate the extra channels with other parts of the same recording
            chans = [base[0]]
            for c in range(1, channels):
                other_start = (start + int(((u_shift + 0.37 * (c - 1)) % 1.0 * 0.5 + 0.25) * length)) % length
                other = _loop(data, n_samples, other_start, fade)[0]
                chans.append(mix * base[0] + math.sqrt(1.0 - mix * mix) * other)
            out = np.stack(chans)
        else:
            out = base[np.arange(channels) % src_ch]
        if channels == 2 and swap:
            out = out[::-1]
        out = np.ascontiguousarray(out * 10 ** (gain_db / 20), dtype=np.float32)
        info = {
            "noise_file": str(self.paths[i]),
            "noise_file_index": i,
            "noise_offset_s": start / self.sample_rate,
            "noise_looped": bool(length < start + n_samples),
            "noise_file_channels": int(src_ch),
            "noise_channels_swapped": bool(channels == 2 and swap),
            "noise_bank_gain_db": gain_db,
        }
        return out, info

    def sample(self, rng: np.random.Generator, n_samples: int, channels: int = 2) -> np.ndarray:
        """A random excerpt, float32 [channels, n_samples], at a random gain (-6..0 dB).

        Short files are looped with 20 ms equal-power crossfades; a mono file feeding several
        channels is decorrelated by mixing each extra channel with another part of the recording;
        extra file channels are averaged (mono target) or dropped; stereo may be swapped.
        """
        return self.sample_with_info(rng, n_samples, channels)[0]


# ------------------------------------------------------------------------------------------------


def _pick_variant(rng: np.random.Generator, variant: str | None) -> str:
    return pick_variant(rng, variant, VARIANTS, KIND)


def _synthetic(rng: np.random.Generator, variant: str, channels: int, n: int, sr: int) -> tuple[np.ndarray, dict]:
    if variant == "hum":
        return mains_hum(rng, channels, n, sr)
    rho = float(rng.uniform(0.0, 0.3)) if channels > 1 else 0.0
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[variant]
    return coloured_noise(rng, channels, n, sr, exponent, rho), {
        "spectral_exponent": exponent,
        "channel_common_fraction": rho,
    }


def apply(
    audio: np.ndarray,
    sample_rate: int,
    severity: float,
    rng: np.random.Generator,
    variant: str | None = None,
    noise_bank: NoiseBank | None = None,
    **kwargs,
) -> tuple[np.ndarray, dict]:
    """Adds noise to ``audio`` [C, N] at ``snr_db = MAX_SNR_DB * (1 - severity)``; returns (float32 [C, N], params)."""
    x = _check(audio, severity).astype(np.float64)
    severity = float(severity)
    requested = _pick_variant(rng, variant)
    channels, n = x.shape
    snr_db = MAX_SNR_DB * (1.0 - severity)

    info: dict = {}
    used = requested
    noise = None
    if requested == "recorded":
        if noise_bank is not None and len(noise_bank) > 0:
            try:
                noise, info = noise_bank.sample_with_info(rng, n, channels)
                noise = noise.astype(np.float64)
                if not np.any(noise):
                    noise = None
            except NoiseBankEmptyError:
                noise = None
        if noise is None:
            used = str(SYNTHETIC_HISS[int(rng.integers(len(SYNTHETIC_HISS)))])
            info = {
                "fallback_reason": "no noise bank"
                if noise_bank is None or len(noise_bank) == 0
                else "noise bank unusable"
            }
    if noise is None:
        noise, extra = _synthetic(rng, used, channels, n, sample_rate)
        info.update(extra)

    p_sig = active_power(x, sample_rate)
    silent = p_sig <= SILENCE_POWER
    p_ref = SILENT_REFERENCE_POWER if silent else p_sig
    p_noise = float(np.mean(noise * noise))
    gain = math.sqrt(p_ref / (p_noise * 10 ** (snr_db / 10))) if p_noise > 0 else 0.0
    added = noise * gain
    y = (x + added).astype(np.float32)

    measured_noise = np.asarray(y, dtype=np.float64) - x
    p_meas = float(np.mean(measured_noise * measured_noise))
    params = {
        "kind": KIND,
        "variant": used,
        "severity": severity,
        "snr_db": snr_db,
        "measured_snr_db": _db(p_ref / p_meas) if p_meas > 0 else None,
        "signal_power_dbfs": _db(p_sig),
        "noise_power_dbfs": _db(p_ref / 10 ** (snr_db / 10)),
        "signal_silent": bool(silent),
    }
    if used != requested:
        params["requested_variant"] = requested
    params.update(info)
    return y, params
