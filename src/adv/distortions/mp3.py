"""Lossy-codec artifacts (MP3 and other perceptual codecs).

The audio is round-tripped through a real encoder/decoder pair run as a subprocess on temporary
files (always removed afterwards):

1. every channel pair is resampled with soxr to the codec rate (44.1 kHz; 48 kHz for Opus; lower
   for low-bitrate Vorbis) and written as a 24-bit WAV (lame 3.100 mis-scales float WAV input), so
   nothing clips before encoding: if the resampled peak exceeds 0.98 it is scaled down and the gain
   is restored after decoding; mono input is encoded as dual-mono stereo and averaged back;
2. encoded (``lame`` CLI for the MP3 variants, ``ffmpeg`` for the others) and decoded with
   ``ffmpeg`` to 32-bit float, which keeps decoder overshoots above 1.0;
3. decoder output is aligned to the input: the containers' gapless information normally removes
   the encoder delay/padding exactly (ffmpeg honours the LAME/Info tag, Ogg pre-skip and the MP4
   edit list). The residual lag is measured by cross-correlating the mono downmixes (search range
   +-4096 samples) and compensated when the correlation peak is clearly better than at lag 0
   (>= 0.2 and > 1.25x the lag-0 value; codecs that re-synthesise bands at very low bitrates would
   otherwise produce spurious small lags). Observed: lag 0 everywhere except lame CBR at 32/40
   kbps, whose frames are too small for the LAME tag, giving 1105 samples (576 encoder + 529
   decoder delay) that are removed here. Then the result is resampled back to the input rate and
   trimmed/padded to exactly the input length.

Severity -> bitrate (log maps, monotone decreasing; ``bitrate_kbps`` in the params):

* ``lame_abr``: ``kbps = 128 * (32 / 128) ** severity`` (128 at 0, ~112 at 0.1, ~96 at 0.21,
  64 at 0.5, 32 at 1), ``lame --quiet --abr <kbps> -q <q> --resample 44.1``.
* ``lame_cbr``: the same map, rounded (in the log domain) to the nearest MPEG-1 layer III bitrate
  (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192 kbps), ``lame --cbr -b <kbps> -q <q> --resample
  44.1``. Piecewise constant in severity.
* Both LAME variants (corpus v5) draw the encoder quality ``q`` from 2 / 5 / 7, and half the time
  leave out ``--resample 44.1``: lame then picks its own output rate as it does by default (24,
  22.05 or 16 kHz at low bitrates), the decoder keeps that rate, and it is brought back to 44.1 kHz
  with a drawn resampler: soxr HQ, soxr's quick cubic mode or linear interpolation. The cheap ones
  leave image/alias energy above the decoded band (-30..-45 dB re the original there), like many
  playback and conversion chains; an MP3 made by audiomentations (fast-mp3-augment, lame -q 7) shows
  such a floor, and was called `noise` a third of the time by a model that had never seen one.
  ``lame_quality``, ``native_rate``, ``resampler`` and ``lame_output_rate`` are in the params.
* ``aac`` (ffmpeg native encoder, .m4a): ``kbps = 112 * (24 / 112) ** severity``.
* ``opus`` (libopus at 48 kHz, .opus): ``kbps = 48 * (8 / 48) ** severity`` (Opus is close to
  transparent at 64 kbps).
* ``vorbis`` (libvorbis, .ogg): ``kbps = 112 * (32 / 112) ** severity``; libvorbis refuses
  managed bitrates below ~48 kbps at 44.1 kHz stereo, so the codec rate is 44.1 kHz for
  kbps >= 48, 32 kHz for 40..47 kbps and 22.05 kHz below 40 kbps (as low-bitrate Vorbis files were
  made in practice).

The codec variants exist only when ``ffmpeg -encoders`` lists the encoder (checked once at import);
the MP3 variants need the ``lame`` binary. ``variant=None`` picks an MP3 variant (uniformly among
``lame_abr``/``lame_cbr``) with probability 0.7 and one of the other available codecs otherwise.
All codecs involved are deterministic, so the output depends only on the inputs and ``rng``.

Opus and Vorbis preserve band energies (noise filling) at moderate bitrates, so for them the
energy above ~11 kHz only falls once the coded bandwidth shrinks; the waveform error (and the
codec noise) grows with severity for every variant.

The top of each map is where the codec starts to become audible (the severity maps were moved
there in corpus v2: 192 kbps MP3, severity 0 before, is transparent and shows nothing at a 32 kHz
analysis rate, so it was a "damaged" label on undamaged-sounding audio). Severity 0 (128 kbps ABR)
is near-transparent for most listeners but not bit-exact.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf
from scipy import signal
from adv.audio_io import resample
from adv.distortions.common import check_audio_and_severity as _check

KIND = "mp3"

_LAME = shutil.which("lame")
_FFMPEG = shutil.which("ffmpeg")

_MPEG1_L3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)

# variant -> (ffmpeg encoder, codec rate, container extension, kbps at severity 0, kbps at severity 1)
_FFMPEG_CODECS = {
    "aac": ("aac", 44100, ".m4a", 112.0, 24.0),
    "opus": ("libopus", 48000, ".opus", 48.0, 8.0),
    "vorbis": ("libvorbis", 44100, ".ogg", 112.0, 32.0),
}
# libvorbis refuses managed bitrates below ~48 kbps for 44.1 kHz stereo; low-bitrate Vorbis files
# were typically made at reduced sample rates, so the codec rate drops with the bitrate.
_VORBIS_RATES = ((48, 44100), (40, 32000), (0, 22050))
_LAME_RANGE = (128.0, 32.0)
LAME_QUALITIES = (2, 5, 7)  # lame -q: 2 = slow and careful ... 7 = fast (audiomentations' default)
NATIVE_RATE_P = 0.5  # share of LAME encodes where lame picks its own rate (see the docstring)
RESAMPLERS = ("soxr_hq", "soxr_qq", "linear")
_MAX_LAG = 4096
_TIMEOUT_S = 300


@functools.lru_cache(maxsize=1)
def ffmpeg_encoders() -> frozenset[str]:
    """Names of the audio encoders the installed ffmpeg offers (empty when ffmpeg is missing)."""
    if _FFMPEG is None:
        return frozenset()
    try:
        proc = subprocess.run([_FFMPEG, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0].startswith("A"):
            names.add(parts[1])
    return frozenset(names)


def _available_variants() -> tuple[str, ...]:
    out: list[str] = []
    if _LAME is not None and _FFMPEG is not None:
        out += ["lame_abr", "lame_cbr"]
    enc = ffmpeg_encoders()
    out += [v for v, spec in _FFMPEG_CODECS.items() if spec[0] in enc]
    return tuple(out)


VARIANTS = _available_variants()
LAME_VARIANTS = tuple(v for v in VARIANTS if v.startswith("lame_"))
OTHER_VARIANTS = tuple(v for v in VARIANTS if not v.startswith("lame_"))


def _log_map(severity: float, lo_sev: float, hi_sev: float) -> float:
    return lo_sev * (hi_sev / lo_sev) ** severity


def bitrate_for(variant: str, severity: float) -> int:
    """Nominal bitrate (kbps) that ``variant`` uses at ``severity``."""
    if variant in ("lame_abr", "lame_cbr"):
        kbps = _log_map(severity, *_LAME_RANGE)
        if variant == "lame_cbr":
            return min(_MPEG1_L3_KBPS, key=lambda b: abs(math.log(b / kbps)))
        return int(round(kbps))
    if variant in _FFMPEG_CODECS:
        _, _, _, hi, lo = _FFMPEG_CODECS[variant]
        return int(round(_log_map(severity, hi, lo)))
    raise ValueError(f"unknown mp3 variant {variant!r}; expected one of {sorted(VARIANTS)}")


def _pick_variant(rng: np.random.Generator, variant: str | None) -> str:
    if variant is not None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown or unavailable mp3 variant {variant!r}; available: {VARIANTS}")
        return variant
    if not VARIANTS:
        raise RuntimeError("no codec available: install lame and/or ffmpeg")
    use_lame = bool(LAME_VARIANTS) and (not OTHER_VARIANTS or rng.random() < 0.7)
    pool = LAME_VARIANTS if use_lame else OTHER_VARIANTS
    return str(pool[int(rng.integers(len(pool)))])


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(
            f"{os.path.basename(cmd[0])} failed (exit {proc.returncode}): {msg[-1] if msg else 'no message'}"
        )


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[1] >= n:
        return x[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])))


def _codec_roundtrip(
    stereo: np.ndarray,
    variant: str,
    kbps: int,
    rate: int,
    tmpdir: str,
    lame_quality: int = 2,
    native_rate: bool = False,
) -> tuple[np.ndarray, int]:
    """Encodes and decodes one [2, M] block given at ``rate``; returns the decoded [2, D] and its rate
    (``rate``, or with ``native_rate`` the rate LAME chose, which the decoder keeps)."""
    src = os.path.join(tmpdir, "in.wav")
    sf.write(src, np.ascontiguousarray(stereo.T), rate, subtype="PCM_24")
    if variant.startswith("lame_"):
        enc = os.path.join(tmpdir, "enc.mp3")
        mode = ["--abr", str(kbps)] if variant == "lame_abr" else ["--cbr", "-b", str(kbps)]
        resample = [] if native_rate else ["--resample", "44.1"]
        _run([_LAME, "--quiet", *mode, "-q", str(lame_quality), *resample, src, enc])
    else:
        encoder, _, ext, _, _ = _FFMPEG_CODECS[variant]
        enc = os.path.join(tmpdir, "enc" + ext)
        _run(
            [
                _FFMPEG,
                "-nostdin",
                "-hide_banner",
                "-v",
                "error",
                "-y",
                "-i",
                src,
                "-c:a",
                encoder,
                "-b:a",
                f"{kbps}k",
                "-ar",
                str(rate),
                "-ac",
                "2",
                "-threads",
                "1",
                enc,
            ]
        )
    dec = os.path.join(tmpdir, "dec.wav")
    out_rate = [] if native_rate else ["-ar", str(rate)]
    _run(
        [
            _FFMPEG,
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-i",
            enc,
            "-map",
            "0:a:0",
            *out_rate,
            "-ac",
            "2",
            "-f",
            "wav",
            "-acodec",
            "pcm_f32le",
            dec,
        ]
    )
    data, dec_rate = sf.read(dec, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(dec_rate)


def resample_back(x: np.ndarray, sr_in: int, sr_out: int, method: str) -> np.ndarray:
    """[C, N] -> [C, M] float32 with one of :data:`RESAMPLERS`: ``soxr_hq`` (clean), ``soxr_qq``
    (soxr's quick cubic mode) or ``linear`` interpolation; the last two leave image/alias energy
    above the decoded band, as cheap playback and conversion chains do."""
    if method == "linear" and sr_in != sr_out:
        n_out = int(round(x.shape[1] * sr_out / sr_in))
        t = np.arange(n_out) * (sr_in / sr_out)
        src = np.arange(x.shape[1])
        return np.stack([np.interp(t, src, ch) for ch in x]).astype(np.float32)
    if method not in RESAMPLERS:
        raise ValueError(f"unknown resampler {method!r}; expected one of {RESAMPLERS}")
    return resample(x, sr_in, sr_out, quality="HQ" if method == "soxr_hq" else "QQ")


def _codec_rate(variant: str, kbps: int) -> int:
    if variant == "vorbis":
        return next(rate for min_kbps, rate in _VORBIS_RATES if kbps >= min_kbps)
    return _FFMPEG_CODECS[variant][1] if variant in _FFMPEG_CODECS else 44100


def estimate_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int = _MAX_LAG) -> tuple[int, float]:
    """Lag (samples) by which ``decoded`` trails ``reference`` and the normalised correlation there.

    Both are [C, N] arrays at the same rate; mono downmixes are cross-correlated via FFT within
    +-``max_lag``. A positive lag means ``decoded`` is late. A non-zero lag is only reported when its
    correlation is >= 0.2 and > 1.25x the correlation at lag 0, otherwise (0, correlation at 0).
    """
    a = reference.mean(axis=0).astype(np.float64)
    b = decoded.mean(axis=0).astype(np.float64)
    n = min(a.size, b.size)
    if n == 0:
        return 0, 0.0
    a, b = a[:n], b[:n]
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    if denom <= 1e-20:
        return 0, 0.0
    xc = signal.correlate(b, a, mode="full", method="fft")  # index n-1 <-> lag 0
    lag_range = min(max_lag, n - 1)
    window = xc[n - 1 - lag_range : n + lag_range]
    k = int(np.argmax(window))
    best, at_zero = float(window[k] / denom), float(window[lag_range] / denom)
    if k != lag_range and best >= 0.2 and best > 1.25 * max(at_zero, 0.0):
        return k - lag_range, best
    return 0, at_zero


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """Removes a delay of ``lag`` samples (advances x when lag > 0, delays it when lag < 0)."""
    if lag > 0:
        return x[:, lag:]
    if lag < 0:
        return np.pad(x, ((0, 0), (-lag, 0)))
    return x


def effective_cutoff_hz(clean: np.ndarray, coded: np.ndarray, sample_rate: int, drop_db: float = 12.0) -> float:
    """Highest frequency where the coded PSD is within ``drop_db`` of the clean PSD (estimate).

    Only frequencies where the clean signal has energy (within 80 dB of its PSD peak) count; returns
    Nyquist when the codec removed nothing measurable.
    """
    nper = min(2048, clean.shape[1])
    f, p_in = signal.welch(clean.mean(axis=0), fs=sample_rate, nperseg=nper)
    _, p_out = signal.welch(coded.mean(axis=0), fs=sample_rate, nperseg=nper)
    if p_in.max() <= 0:
        return float(sample_rate / 2)
    ok = p_in > p_in.max() * 1e-8
    kept = ok & (p_out >= p_in * 10 ** (-drop_db / 10))
    idx = np.nonzero(kept)[0]
    if idx.size == 0:
        return 0.0
    last_with_energy = np.nonzero(ok)[0][-1]
    if idx[-1] >= last_with_energy:
        return float(sample_rate / 2)
    return float(f[idx[-1]])


def apply(
    audio: np.ndarray,
    sample_rate: int,
    severity: float,
    rng: np.random.Generator,
    variant: str | None = None,
    native_rate: bool | None = None,
    resampler: str | None = None,
    **kwargs,
) -> tuple[np.ndarray, dict]:
    """Round-trips ``audio`` [C, N] through a lossy codec; returns (float32 [C, N], params).
    ``native_rate`` / ``resampler`` fix the LAME options that are otherwise drawn (tests)."""
    x = _check(audio, severity)
    severity = float(severity)
    variant = _pick_variant(rng, variant)
    kbps = bitrate_for(variant, severity)
    rate = _codec_rate(variant, kbps)
    channels, n = x.shape
    x = x.astype(np.float32, copy=False)

    out = np.empty((channels, n), dtype=np.float32)
    lags: list[int] = []
    corrs: list[float] = []
    gains: list[float] = []
    lame_opts: dict = {}
    if variant.startswith("lame_"):  # drawn after variant and bitrate: the older draws are unchanged
        lame_opts = {"lame_quality": int(rng.choice(LAME_QUALITIES)), "native_rate": bool(rng.random() < NATIVE_RATE_P)}
        lame_opts["resampler"] = str(rng.choice(RESAMPLERS)) if lame_opts["native_rate"] else "soxr_hq"
        if native_rate is not None:
            lame_opts["native_rate"] = bool(native_rate)
        if resampler is not None:
            lame_opts["resampler"] = resampler
    dec_rates: list[int] = []
    with tempfile.TemporaryDirectory(prefix="adv_codec_") as tmpdir:
        for start in range(0, channels, 2):
            block = x[start : start + 2]
            mono = block.shape[0] == 1
            stereo = np.repeat(block, 2, axis=0) if mono else block
            up = resample(stereo, sample_rate, rate)
            m = up.shape[1]
            peak = float(np.max(np.abs(up))) if up.size else 0.0
            gain = 0.98 / peak if peak > 0.98 else 1.0
            decoded, dec_rate = _codec_roundtrip(
                up * gain,
                variant,
                kbps,
                rate,
                tmpdir,
                lame_opts.get("lame_quality", 2),
                lame_opts.get("native_rate", False),
            )
            dec_rates.append(dec_rate)
            if dec_rate != rate:  # lame chose a lower rate: back to the codec rate with the drawn resampler
                decoded = resample_back(decoded, dec_rate, rate, lame_opts["resampler"])
            lag, corr = estimate_lag(up, decoded)
            decoded = _fit_length(_shift(decoded, lag), m) / gain
            back = _fit_length(resample(decoded, rate, sample_rate), n)
            out[start : start + 2] = back.mean(axis=0, keepdims=True) if mono else back
            lags.append(lag)
            corrs.append(corr)
            gains.append(gain)

    out = np.nan_to_num(out, copy=False)
    params = {
        "kind": KIND,
        "variant": variant,
        "severity": severity,
        "codec": "lame" if variant.startswith("lame_") else _FFMPEG_CODECS[variant][0],
        "mode": {"lame_abr": "abr", "lame_cbr": "cbr"}.get(variant, "ffmpeg_bitrate"),
        "bitrate_kbps": int(kbps),
        "codec_sample_rate": int(rate),
        **({**lame_opts, "lame_output_rate": int(min(dec_rates))} if lame_opts else {}),
        "alignment_lag_samples": [int(v) for v in lags],
        "alignment_correlation": [round(float(v), 5) for v in corrs],
        "pre_gain_db": round(float(20 * math.log10(min(gains))), 3),
        "effective_cutoff_hz": round(effective_cutoff_hz(x, out, sample_rate), 1),
    }
    return out, params
