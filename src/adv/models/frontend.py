"""Log-mel front end compatible with the official PANN checkpoints.

The official PANN models (Kong et al. 2020) computed their input features
with torchlibrosa: an STFT implemented as two 1-D convolutions (real and
imaginary DFT kernels multiplied by a periodic Hann window), a power
spectrogram, a slaney mel filterbank and ``10*log10``.  This module
re-implements that pipeline in plain torch with the *same* state-dict
names and shapes, so the official checkpoints load strictly:

* ``spectrogram_extractor.stft.conv_real.weight``  ``[n_fft//2+1, 1, n_fft]``
* ``spectrogram_extractor.stft.conv_imag.weight``  ``[n_fft//2+1, 1, n_fft]``
* ``logmel_extractor.melW``                         ``[n_fft//2+1, mel_bins]``

The tensors are registered as (persistent) buffers rather than parameters:
they are constants, never trained, and stay out of ``model.parameters()``.
Everything uses ops that export to ONNX (opset 17): reflect padding,
``conv1d``, ``matmul``, ``clamp`` and ``log10`` (no ``torch.stft``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "hann_window",
    "dft_kernels",
    "STFT",
    "Spectrogram",
    "LogmelFilterBank",
    "LogMelFrontEnd",
]

# --------------------------------------------------------------------------
# Slaney mel scale (the librosa default, htk=False)
# --------------------------------------------------------------------------
_F_SP = 200.0 / 3.0  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0  # start of the logarithmic part
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # = 15 mel
_LOGSTEP = math.log(6.4) / 27.0  # step size of the log region


def hz_to_mel(freqs):
    """Hz -> mel on the Slaney (Auditory Toolbox) scale: linear below 1 kHz, log above."""
    f = np.asarray(freqs, dtype=np.float64)
    mels = f / _F_SP
    log_region = f >= _MIN_LOG_HZ
    with np.errstate(divide="ignore"):
        log_mels = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-300) / _MIN_LOG_HZ) / _LOGSTEP
    mels = np.where(log_region, log_mels, mels)
    return mels if mels.ndim else float(mels)


def mel_to_hz(mels):
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    freqs = _F_SP * m
    log_region = m >= _MIN_LOG_MEL
    freqs = np.where(log_region, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), freqs)
    return freqs if freqs.ndim else float(freqs)


def mel_filterbank(
    sr: int,
    n_fft: int,
    n_mels: int = 64,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Triangular mel filterbank with Slaney area normalisation.

    Equivalent to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels,
    fmin=fmin, fmax=fmax)`` (htk=False, norm='slaney') but returned
    *transposed*, i.e. with shape ``[n_fft//2+1, n_mels]`` as PANN's
    ``melW`` expects.  float32.
    """
    if fmax is None:
        fmax = sr / 2.0
    if not (0.0 <= fmin < fmax <= sr / 2.0 + 1e-9):
        raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    n_freqs = n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, sr / 2.0, n_freqs)
    # n_mels + 2 band edges equally spaced on the mel scale
    edges_mel = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    edges_hz = mel_to_hz(edges_mel)
    widths = np.diff(edges_hz)  # [n_mels + 1]
    # distance of every edge to every FFT bin centre: [n_mels + 2, n_freqs]
    dist = edges_hz[:, None] - fft_freqs[None, :]
    rising = -dist[:-2] / widths[:-1, None]  # 0 at left edge -> 1 at centre
    falling = dist[2:] / widths[1:, None]  # 1 at centre -> 0 at right edge
    weights = np.maximum(0.0, np.minimum(rising, falling))  # [n_mels, n_freqs]
    # Slaney normalisation: every triangle has (approximately) unit area in Hz
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return np.ascontiguousarray(weights.T.astype(np.float32))


# --------------------------------------------------------------------------
# STFT as a convolution
# --------------------------------------------------------------------------
def hann_window(n: int) -> np.ndarray:
    """Periodic ("fftbins=True") Hann window of length n, float64."""
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)


def dft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Windowed one-sided DFT kernels ``(real, imag)``, each ``[n_fft//2+1, 1, n_fft]``.

    ``X[k] = sum_n x[n] w[n] exp(-2*pi*i*k*n/N)``; the phase index ``k*n`` is
    reduced modulo N before the trig call so the kernels are exact.
    """
    n_out = n_fft // 2 + 1
    k = np.arange(n_out, dtype=np.int64)[:, None]
    n = np.arange(n_fft, dtype=np.int64)[None, :]
    phase = 2.0 * np.pi * ((k * n) % n_fft) / n_fft
    win = hann_window(n_fft)[None, :]
    real = (np.cos(phase) * win).astype(np.float32)[:, None, :]
    imag = (-np.sin(phase) * win).astype(np.float32)[:, None, :]
    return real, imag


class _FrozenConv1d(nn.Module):
    """Holds a fixed conv1d kernel under the key ``weight`` (a buffer, not a parameter)."""

    def __init__(self, weight: np.ndarray):
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(np.ascontiguousarray(weight)))

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.weight.shape)}"


class STFT(nn.Module):
    """Framed DFT via conv1d. Input ``[B, L]``; returns ``(real, imag)``, each ``[B, 1, T, F]``."""

    def __init__(self, n_fft: int = 1024, hop_length: int = 320, center: bool = True, pad_mode: str = "reflect"):
        super().__init__()
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {pad_mode!r}")
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.center = bool(center)
        self.pad_mode = pad_mode
        real, imag = dft_kernels(self.n_fft)
        self.conv_real = _FrozenConv1d(real)
        self.conv_imag = _FrozenConv1d(imag)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = waveform.unsqueeze(1)  # [B, 1, L]
        if self.center:
            half = self.n_fft // 2
            x = F.pad(x, (half, half), mode=self.pad_mode)
        n_out = self.conv_real.weight.shape[0]
        # one convolution for both parts: [2F, 1, N]
        kernel = torch.cat([self.conv_real.weight, self.conv_imag.weight], dim=0)
        spec = F.conv1d(x, kernel, stride=self.hop_length)  # [B, 2F, T]
        spec = spec.transpose(1, 2).unsqueeze(1)  # [B, 1, T, 2F]
        return spec[..., :n_out], spec[..., n_out:]


class Spectrogram(nn.Module):
    """Power spectrogram ``|STFT|^2``: ``[B, L] -> [B, 1, T, n_fft//2+1]``."""

    def __init__(self, n_fft: int = 1024, hop_length: int = 320, center: bool = True, pad_mode: str = "reflect"):
        super().__init__()
        self.stft = STFT(n_fft=n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(waveform)
        return real * real + imag * imag


class LogmelFilterBank(nn.Module):
    """Power spectrogram -> mel -> ``10*log10(max(x, amin)) - 10*log10(max(amin, ref))``."""

    def __init__(
        self,
        sr: int = 32000,
        n_fft: int = 1024,
        n_mels: int = 64,
        fmin: float = 50.0,
        fmax: float | None = 14000.0,
        ref: float = 1.0,
        amin: float = 1e-10,
        top_db: float | None = None,
    ):
        super().__init__()
        if amin <= 0:
            raise ValueError("amin must be > 0")
        self.ref = float(ref)
        self.amin = float(amin)
        self.top_db = None if top_db is None else float(top_db)
        self.register_buffer("melW", torch.from_numpy(mel_filterbank(sr, n_fft, n_mels, fmin, fmax)))

    def forward(self, power_spec: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(power_spec, self.melW)
        logmel = 10.0 * torch.log10(torch.clamp(mel, min=self.amin))
        offset = 10.0 * math.log10(max(self.amin, self.ref))
        if offset != 0.0:
            logmel = logmel - offset
        if self.top_db is not None:
            # per-example floor at (max - top_db); keeps ONNX-friendly ops
            peak = logmel.amax(dim=(-3, -2, -1), keepdim=True)
            logmel = torch.maximum(logmel, peak - self.top_db)
        return logmel


class LogMelFrontEnd(nn.Module):
    """Standalone waveform -> log-mel module (``[B, L] -> [B, 1, T, mel_bins]``).

    The PANN models hold the two stages directly (``spectrogram_extractor``,
    ``logmel_extractor``) to keep the official key names; this wrapper is for
    callers that want only the features (e.g. caching log-mels).
    """

    def __init__(
        self,
        sample_rate: int = 32000,
        window_size: int = 1024,
        hop_size: int = 320,
        mel_bins: int = 64,
        fmin: float = 50.0,
        fmax: float = 14000.0,
    ):
        super().__init__()
        self.spectrogram_extractor = Spectrogram(n_fft=window_size, hop_length=hop_size)
        self.logmel_extractor = LogmelFilterBank(
            sr=sample_rate, n_fft=window_size, n_mels=mel_bins, fmin=fmin, fmax=fmax
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.logmel_extractor(self.spectrogram_extractor(waveform))
