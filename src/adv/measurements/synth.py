"""Synthetic test signals with known properties, for the measurement tests and the accuracy benchmark.

``music_like`` is a seeded drum/bass/chord arrangement: kick, snare and hi-hat noise bursts
(continuous, gently falling spectrum up to Nyquist, as in real mixes), a bass line and chords of
sawtooth-like tones with decaying envelopes, panned into a partly correlated stereo image. It is not
music, but it has what the measurements look at: a crest factor and loudness dynamics like a mix,
energy in every band up to the file's own Nyquist, quiet moments between notes and a stereo image
that is neither mono nor uncorrelated. The other helpers apply damage with an exactly known ground
truth (hard clip at a chosen fraction, low-pass, channel delay, polarity, added noise and hum).
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def _env(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-t / decay)


def _saw(freq: float, n: int, sr: int, rng: np.random.Generator, brightness: float) -> np.ndarray:
    """Sawtooth with a random phase, softened by a one-pole low-pass at ``brightness`` * Nyquist."""
    ph = (rng.random() + freq * np.arange(n) / sr) % 1.0
    s = 2.0 * ph - 1.0
    a = float(np.exp(-np.pi * brightness))
    return signal.lfilter([1.0 - a], [1.0, -a], s)


def music_like(
    seconds: float = 10.0,
    sr: int = 44100,
    seed: int = 0,
    channels: int = 2,
    peak_dbfs: float = -1.0,
    bpm: float | None = None,
) -> np.ndarray:
    """float32 [channels, n]: a seeded music-like mix normalised to ``peak_dbfs`` sample peak."""
    rng = np.random.default_rng(seed)
    n = max(int(round(seconds * sr)), 1)
    bpm = float(bpm if bpm is not None else rng.uniform(90, 140))
    beat = 60.0 / bpm
    out = np.zeros((2, n))
    pans = {"kick": 0.5, "snare": rng.uniform(0.4, 0.6), "hat": rng.uniform(0.2, 0.8), "bass": 0.5, "chord": None}

    def add(x: np.ndarray, start: int, pan: float) -> None:
        if start >= n:
            return
        x = x[: n - start]
        gl, gr = np.cos(pan * np.pi / 2), np.sin(pan * np.pi / 2)
        out[0, start : start + len(x)] += gl * x
        out[1, start : start + len(x)] += gr * x

    # high-frequency shaping of the noise parts: a one-pole roll-off above 2.5 kHz (mixes fall by a few
    # dB per octave in 1/3-octave bands; a one-pole has no zero at Nyquist, so the spectrum reaches the
    # file's own band edge)
    pole = float(np.exp(-2 * np.pi * 2500.0 / sr))
    hat_b, hat_a = [1.0 - pole], [1.0, -pole]
    hp_b, hp_a = signal.butter(2, min(0.9, 5000.0 / (sr / 2)), "high")
    n_beats = int(seconds / beat) + 1
    scale = np.array([0, 2, 3, 5, 7, 8, 10])
    root = int(rng.integers(28, 40))
    for b in range(n_beats):
        t0 = int(b * beat * sr)
        # kick: decaying sine sweep
        m = int(0.35 * sr)
        tt = np.arange(m) / sr
        f = 45.0 + 90.0 * np.exp(-tt / 0.04)
        kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-tt / 0.12)
        add(0.9 * kick, t0, pans["kick"])
        # snare on beats 2 and 4: noise + tone
        if b % 2 == 1:
            m = int(0.25 * sr)
            sn = rng.standard_normal(m) * _env(m, sr, 0.001, 0.06)
            sn = 0.35 * signal.lfilter(hat_b, hat_a, sn) + 0.3 * np.sin(2 * np.pi * 190 * np.arange(m) / sr) * _env(
                m, sr, 0.001, 0.05
            )
            add(sn, t0 + int(rng.integers(0, int(0.004 * sr) + 1)), pans["snare"])
        # hi-hats on eighths: high-passed noise bursts
        for h in range(2):
            m = int(0.12 * sr)
            hn = rng.standard_normal(m) * _env(m, sr, 0.0005, rng.uniform(0.015, 0.05))
            hn = signal.lfilter(hat_b, hat_a, signal.lfilter(hp_b, hp_a, hn))
            add(rng.uniform(0.15, 0.3) * hn, t0 + int(h * beat * sr / 2), pans["hat"])
        # bass note every beat
        note = root + int(scale[rng.integers(0, 7)])
        m = int(beat * sr)
        bs = _saw(440.0 * 2 ** ((note - 69) / 12), m, sr, rng, 0.02) * _env(m, sr, 0.005, 0.35)
        add(0.5 * bs, t0, pans["bass"])
        # chord every 4 beats: three sawtooth voices spread across the stereo image
        if b % 4 == 0:
            m = int(4 * beat * sr)
            base = root + 24 + int(scale[rng.integers(0, 7)])
            for k, iv in enumerate((0, 3 + int(rng.integers(0, 2)), 7)):
                v = _saw(440.0 * 2 ** ((base + iv - 69) / 12), m, sr, rng, 0.1) * _env(m, sr, 0.02, 1.2)
                add(0.12 * v, t0, 0.15 + 0.35 * k)
    # a little independent "room" noise per channel (decorrelates L and R slightly), -60 dB-ish
    room = rng.standard_normal((2, n))
    room = signal.lfilter(hat_b, hat_a, room, axis=-1)
    out += 1e-3 * room
    out -= out.mean(axis=1, keepdims=True)
    pk = float(np.max(np.abs(out))) or 1.0
    out *= 10 ** (peak_dbfs / 20) / pk
    if channels == 1:
        out = out.mean(axis=0, keepdims=True)
        out *= 10 ** (peak_dbfs / 20) / (float(np.max(np.abs(out))) or 1.0)
    elif channels > 2:
        extra = [0.5 * (out[0] + out[1]), 0.1 * out[0], 0.7 * out[0], 0.7 * out[1]]
        out = np.vstack([out] + [extra[(c - 2) % 4] for c in range(2, channels)])
    return out.astype(np.float32)


def hard_clip_fraction(x: np.ndarray, fraction: float) -> tuple[np.ndarray, float]:
    """Hard-clips ``x`` so that ``fraction`` of all samples sit at the ceiling, then scales the
    ceiling to 0 dBFS. Returns (clipped float32, exact clipped fraction = share of |y| == 1)."""
    mag = np.abs(x.astype(np.float64))
    t = float(np.quantile(mag, 1.0 - fraction))
    y = np.clip(x.astype(np.float64), -t, t) / t
    y = y.astype(np.float32)
    return y, float(np.mean(np.abs(y) == 1.0))


def lowpass(x: np.ndarray, sr: int, cutoff_hz: float, order: int = 8, kind: str = "butter") -> np.ndarray:
    """Low-passed copy: ``butter`` = Butterworth of ``order`` applied once (-3 dB at the cut-off);
    ``brick`` = FFT brick wall (every bin above the cut-off zeroed, like an MP3 encoder's low-pass)."""
    if kind == "brick":
        spec = np.fft.rfft(x.astype(np.float64), axis=-1)
        f = np.fft.rfftfreq(x.shape[-1], 1.0 / sr)
        spec[..., f > cutoff_hz] = 0.0
        return np.fft.irfft(spec, n=x.shape[-1], axis=-1).astype(np.float32)
    sos = signal.butter(order, cutoff_hz, "low", fs=sr, output="sos")
    return signal.sosfilt(sos, x.astype(np.float64), axis=-1).astype(np.float32)


def delay_right(x: np.ndarray, samples: int) -> np.ndarray:
    """Stereo copy whose right channel lags the left by ``samples`` (R[n] = R0[n - samples])."""
    y = x.copy()
    if samples > 0:
        y[1, samples:] = x[1, :-samples]
        y[1, :samples] = 0.0
    elif samples < 0:
        y[1, :samples] = x[1, -samples:]
        y[1, samples:] = 0.0
    return y


def add_noise(
    x: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white", sr: int = 44100
) -> np.ndarray:
    """``x`` plus stationary noise at exactly ``snr_db`` (power of x over power of the noise)."""
    noise = rng.standard_normal(x.shape)
    if colour == "pink":  # 1/f power spectrum, flat below 20 Hz
        spec = np.fft.rfft(noise, axis=-1)
        f = np.maximum(np.fft.rfftfreq(x.shape[-1], 1.0 / sr), 20.0)
        noise = np.fft.irfft(spec / np.sqrt(f), n=x.shape[-1], axis=-1)
    p_x = float(np.mean(x.astype(np.float64) ** 2))
    noise *= np.sqrt(p_x / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def add_hum(
    x: np.ndarray,
    sr: int,
    mains_hz: float,
    snr_db: float = 24.0,
    offset_hz: float = 0.07,
    harmonics: int = 12,
    decay: float = 1.0,
) -> np.ndarray:
    """``x`` plus mains hum: ``mains_hz + offset_hz`` and its harmonics (amplitude k^-decay, up to
    ``harmonics`` or 0.45 x the rate), scaled to ``snr_db`` below the power of ``x``."""
    t = np.arange(x.shape[-1]) / sr
    f0 = mains_hz + offset_hz
    hum = np.zeros_like(t)
    for k in range(1, harmonics + 1):
        if k * f0 < 0.45 * sr:
            hum += k ** (-decay) * np.sin(2 * np.pi * k * f0 * t + 0.7 * k)
    p_x = float(np.mean(x.astype(np.float64) ** 2))
    hum *= np.sqrt(p_x / np.mean(hum**2) / 10 ** (snr_db / 10))
    return (x + hum).astype(np.float32)


def measure_in_blocks(x: np.ndarray, sr: int, sizes, expected: int | None) -> dict:
    """A TrackMeter's result for ``x`` [C, n] fed as consecutive blocks of ``sizes`` (summing to n)."""
    from adv.measurements.track_meter import TrackMeter

    meter = TrackMeter(sr, x.shape[0], expected)
    i = 0
    for s in sizes:
        meter.update(x[:, i : i + s])
        i += s
    if i != x.shape[1]:
        raise ValueError(f"block sizes add up to {i}, the signal has {x.shape[1]} samples")
    return meter.result()
