"""One pass of FFTs over 100-ms blocks, shared by the loudness, bandwidth, noise, spectrum and stereo
measurements.

The signal is cut into consecutive 100-ms blocks (the sub-block of BS.1770 gating) and each block of
each channel is transformed once (10 Hz bins at every sample rate). From the rectangular-window
spectra come the mean square of every block, plain and K-weighted (Parseval with |K(f)|^2, so no
time-domain IIR pass is needed); from the same spectra Hann-windowed by a 3-tap convolution in
frequency (sidelobes low enough to see a low-pass's stop band 60+ dB down) come the long-term power
spectrum, the per-block energies in 40-Hz groups of bins (noise floor) and the L/R cross spectrum. Blocks are
processed in chunks that stay in cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

BLOCK_SECONDS = 0.1
GROUP_HZ = 40.0               # noise-floor groups: 4 bins of 10 Hz, from bin 4 (40 Hz) up
_CHUNK_SAMPLES = 1 << 19  # samples per channel and chunk


def block_length(sample_rate: int, pow2: bool = False) -> int:
    """100 ms of samples; with ``pow2`` the nearest power of two (a faster FFT, when the blocks need
    not line up with BS.1770's 100-ms gating)."""
    n = max(int(round(sample_rate * BLOCK_SECONDS)), 1)
    return 1 << int(round(np.log2(n))) if pow2 else n


@lru_cache(maxsize=16)
def _weights(sample_rate: int, n: int, k_weight: bool) -> np.ndarray:
    """[F, 1 or 2] float32: Parseval weights turning |X_k|^2 into the block's mean square, plain
    (column 0) and K-weighted (column 1, BS.1770 pre-filter of pyloudnorm's ITU-matching design)."""
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    c = np.full(f.shape, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    cols = [c / n ** 2]
    if k_weight:
        cols.append(c / n ** 2 * k_weighting_power(sample_rate, f))
    return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)


# BS.1770-4 Tables 1 and 2: the K-weighting biquads at 48 kHz
_ITU_48K = (([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585]),
            ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621]))


def k_weighting_power(sample_rate: int, freqs: np.ndarray) -> np.ndarray:
    """|K(f)|^2 of the BS.1770 K-weighting (shelving pre-filter then RLB high-pass) at ``freqs``,
    from pyloudnorm's "DeMan" design, which reproduces the ITU coefficients at 48 kHz and derives
    them for other rates. Without pyloudnorm: the response of the ITU 48-kHz biquads (flat above
    23.9 kHz), within 0.1 dB of the per-rate design below 20 kHz."""
    from scipy.signal import freqz

    f = np.asarray(freqs, dtype=float)
    h = np.ones(len(f), dtype=complex)
    try:
        from pyloudnorm import Meter

        stages = [(flt.b, flt.a, flt.passband_gain) for flt in Meter(sample_rate, filter_class="DeMan")._filters.values()]
        fs = sample_rate
    except ImportError:
        stages = [(b, a, 1.0) for b, a in _ITU_48K]
        fs, f = 48000, np.minimum(f, 23900.0)
    for b, a, gain in stages:
        _, hf = freqz(b, a, worN=f, fs=fs)
        h *= hf * gain
    return np.abs(h) ** 2


@dataclass
class BlockSpectra:
    sample_rate: int
    block_len: int
    freqs: np.ndarray              # [F] bin frequencies
    energy: np.ndarray | None      # [C, B] mean square per block (all blocks; with ``levels``)
    k_energy: np.ndarray | None    # [C, B] K-weighted mean square per block (with ``levels``)
    block_sum: np.ndarray | None   # [C, B] sum of the samples per block (with ``levels``)
    psd: np.ndarray                # [C, F] long-term power spectrum (Hann-windowed blocks, mean power per bin)
    group_bins: int                # bins per noise-floor group (``GROUP_HZ`` wide)
    group_energy: np.ndarray       # [b, g] Hann-windowed power per group of bins and analysed block, channels summed
    cross: np.ndarray | None       # [F] complex sum of conj(L) * R over the analysed blocks (Hann)
    n_blocks: int                  # blocks in the signal
    n_analysed: int                # blocks that went into psd / group_energy / cross


def _hann(spec: np.ndarray, n: int) -> np.ndarray:
    """Spectrum of the Hann-windowed block from the rectangular one (periodic Hann = a 3-tap
    convolution in frequency: 0.5 X[k] - 0.25 (X[k-1] + X[k+1])), computed on the float32 view."""
    v = spec.view(np.float32)
    out = np.empty_like(v)
    np.add(v[..., :-4], v[..., 4:], out=out[..., 2:-2])
    out[..., 2:-2] *= -0.25
    out[..., 2:-2] += 0.5 * v[..., 2:-2]
    out[..., 0] = 0.5 * v[..., 0] - 0.5 * v[..., 2]           # X[-1] = conj(X[1])
    out[..., 1] = 0.0
    if n % 2 == 0:                                            # Nyquist bin: X[N/2 + 1] = conj(X[N/2 - 1])
        out[..., -2] = 0.5 * v[..., -2] - 0.5 * v[..., -4]
        out[..., -1] = 0.0
    else:                                                     # last bin's right neighbour is its conjugate
        out[..., -2] = 0.25 * v[..., -2] - 0.25 * v[..., -4]
        out[..., -1] = 0.75 * v[..., -1] - 0.25 * v[..., -3]
    return out.view(np.complex64)


@lru_cache(maxsize=16)
def _hann_window(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def block_spectra(x: np.ndarray, sample_rate: int, *, levels: bool = False, analyse_every: int = 1) -> BlockSpectra | None:
    """Spectra of the complete 100-ms blocks of ``x`` [C, n] float32. With ``levels`` every block is
    transformed and its plain and K-weighted mean squares and sample sum are kept (loudness, DC),
    and the Hann-windowed analysis (long-term spectrum, group energies, cross spectrum) uses every
    ``analyse_every``-th block's spectrum windowed in frequency. Without ``levels`` only the analysed
    blocks are transformed, windowed in time, and the blocks are a power of two near 100 ms long.
    None when ``x`` is shorter than one block."""
    C = x.shape[0]
    n = block_length(sample_rate, pow2=not levels)
    nb_all = x.shape[1] // n
    if nb_all == 0:
        return None
    every = max(1, min(int(analyse_every), nb_all))
    blocks = x[:, : nb_all * n].reshape(C, nb_all, n)
    if not levels:
        blocks = blocks[:, ::every]
        every = 1
    nb = blocks.shape[1]
    # Parseval weights per interleaved re/im value; einsum, not matmul: a BLAS call here would run
    # multi-threaded, and threads fight badly on a busy 2-core machine
    w = np.repeat(_weights(sample_rate, n, True), 2, axis=0).T.copy() if levels else None
    F = n // 2 + 1
    gb = max(1, int(round(GROUP_HZ * n / sample_rate)))
    g_lo = np.arange(gb, F - gb + 1, gb)                     # group starts (DC group left out)
    energy = np.empty((C, nb, 2), dtype=np.float64) if levels else None
    block_sum = np.empty((C, nb), dtype=np.float64) if levels else None
    psd = np.zeros((C, 2 * F), dtype=np.float64)             # interleaved re^2 / im^2 sums
    band_parts = []
    cross = np.zeros(F, dtype=np.complex128) if C >= 2 else None
    n_an = 0
    step = max(every, (max(1, _CHUNK_SAMPLES // n) // every) * every)
    for b0 in range(0, nb, step):
        b1 = min(nb, b0 + step)
        if levels:
            spec = sfft.rfft(blocks[:, b0:b1], axis=-1)       # complex64 [C, m, F]
            sv = spec.view(np.float32)
            sq = sv * sv
            energy[:, b0:b1, 0] = np.einsum("cbk,k->cb", sq, w[0])
            energy[:, b0:b1, 1] = np.einsum("cbk,k->cb", sq, w[1])
            block_sum[:, b0:b1] = sv[..., 0]
            hs = _hann(np.ascontiguousarray(spec[:, ::every]) if every > 1 else spec, n)
        else:
            hs = sfft.rfft(blocks[:, b0:b1] * _hann_window(n), axis=-1)
        hv = hs.view(np.float32)
        hp = hv * hv                                          # [C, m, 2F]: re^2, im^2 interleaved
        n_an += hp.shape[1]
        psd += hp.sum(axis=1)
        tot = hp.sum(axis=0) if C > 1 else hp[0]
        band_parts.append(np.add.reduceat(tot, 2 * g_lo, axis=-1)[:, :-1] if len(g_lo) > 1 else tot[:, :0])
        if cross is not None:
            cross += np.einsum("bf,bf->f", np.conj(hs[0]), hs[1])
    psd = (psd[:, 0::2] + psd[:, 1::2]) / (n_an * n)
    return BlockSpectra(
        sample_rate=sample_rate, block_len=n, freqs=np.fft.rfftfreq(n, 1.0 / sample_rate),
        energy=energy[..., 0] if levels else None, k_energy=energy[..., 1] if levels else None,
        block_sum=block_sum, psd=psd, group_bins=gb,
        group_energy=np.concatenate(band_parts, axis=0).astype(np.float64) / n, cross=cross,
        n_blocks=nb_all, n_analysed=n_an)
