"""One pass of FFTs over 100-ms blocks, shared by the loudness, bandwidth, noise, spectrum and stereo
measurements.

The signal is cut into consecutive 100-ms blocks (the sub-block of BS.1770 gating) and each block of
each channel is transformed once (10 Hz bins at every sample rate). From the rectangular-window
spectra come the mean square of every block, plain and K-weighted (Parseval with |K(f)|^2, so no
time-domain IIR pass is needed); from the same spectra Hann-windowed by a 3-tap convolution in
frequency (sidelobes low enough to see a low-pass's stop band 60+ dB down) come the long-term power
spectrum, the per-block energies in 40-Hz groups of bins (noise floor) and the L/R cross spectrum. Blocks are
processed in chunks that stay in cache.

``TrackBlocks`` does this for a stream of blocks (whole tracks): per block it keeps one number (the
channel-weighted K-weighted mean square, for the loudness gates), and it sums the rest (plain
energies, exact sample sums, and the long-term and cross spectra of every ``every``-th block);
the noise-floor group energies are kept per analysed block, for at most 600 blocks: when more
come, ``every`` doubles and the odd ones are dropped, and the sums are kept per power of two
dividing the block's index, so that what remains is exactly every ``every``-th block
(``analyse_every``).
``block_spectra`` serves a single window (blocks of a power of two, windowed in time).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

from adv.measurements._common import ExactSums

BLOCK_SECONDS = 0.1
GROUP_HZ = 40.0  # noise-floor groups: 4 bins of 10 Hz, from bin 4 (40 Hz) up
_CHUNK_SAMPLES = 1 << 19  # samples per channel and chunk
TRACK_ANALYSED_BLOCKS = 600  # whole tracks: 300 to 600 evenly spread 100-ms blocks feed the spectral
# measures; loudness uses every block


def analyse_every(n_blocks: int, cap: int = TRACK_ANALYSED_BLOCKS) -> int:
    """The smallest power of two k for which every k-th of ``n_blocks`` blocks makes at most
    ``cap``: what a stream that starts at k = 1 and doubles k whenever it holds more than ``cap``
    ends with, so that a stream of unknown (or understated) length analyses the same blocks."""
    k = 1
    while -(-int(n_blocks) // k) > cap:
        k *= 2
    return k


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
    cols = [c / n**2]
    if k_weight:
        cols.append(c / n**2 * k_weighting_power(sample_rate, f))
    return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)


# The BS.1770 K-weighting as analogue-prototype parameters (gain dB, Q, corner Hz) of its two
# stages, fitted to the ITU 48-kHz biquads (BS.1770-4 Tables 1 and 2) by B. De Man; the bilinear
# transform at any rate then reproduces the ITU coefficients at 48 kHz (pyloudnorm's "DeMan" filters).
_SHELF = (3.99984385397, 0.7071752369554193, 1681.974450955532)
_HIGHPASS_Q, _HIGHPASS_HZ = 0.5003270373253953, 38.13547087613982


def k_weighting_biquads(sample_rate: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """((b, a) of the shelving pre-filter, (b, a) of the RLB high-pass) at ``sample_rate``."""
    gain_db, q, fc = _SHELF
    k = np.tan(np.pi * fc / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    d = 1.0 + k / q + k * k
    shelf = (
        np.array([vh + vb * k / q + k * k, 2.0 * (k * k - vh), vh - vb * k / q + k * k]) / d,
        np.array([1.0, 2.0 * (k * k - 1.0) / d, (1.0 - k / q + k * k) / d]),
    )
    k = np.tan(np.pi * _HIGHPASS_HZ / sample_rate)
    d = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = (
        np.array([1.0, -2.0, 1.0]),
        np.array([1.0, 2.0 * (k * k - 1.0) / d, (1.0 - k / _HIGHPASS_Q + k * k) / d]),
    )
    return shelf, highpass


def k_weighting_power(sample_rate: int, freqs: np.ndarray) -> np.ndarray:
    """|K(f)|^2 of the BS.1770 K-weighting (shelving pre-filter then RLB high-pass) at ``freqs``."""
    z = np.exp(-2j * np.pi * np.asarray(freqs, dtype=float) / sample_rate)  # z^-1 on the unit circle
    h = np.ones(z.shape, dtype=complex)
    for b, a in k_weighting_biquads(sample_rate):
        h *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.abs(h) ** 2


@dataclass
class BlockSpectra:
    sample_rate: int
    block_len: int
    freqs: np.ndarray  # [F] bin frequencies
    psd: np.ndarray  # [C, F] long-term power spectrum (Hann-windowed blocks, mean power per bin)
    group_bins: int  # bins per noise-floor group (``GROUP_HZ`` wide)
    group_energy: np.ndarray  # [b, g] Hann-windowed power per group of bins and analysed block, channels summed
    cross: np.ndarray | None  # [F] complex sum of conj(L) * R over the analysed blocks (Hann)
    n_blocks: int  # blocks in the signal
    n_analysed: int  # blocks that went into psd / group_energy / cross


def _hann(spec: np.ndarray, n: int) -> np.ndarray:
    """Spectrum of the Hann-windowed block from the rectangular one (periodic Hann = a 3-tap
    convolution in frequency: 0.5 X[k] - 0.25 (X[k-1] + X[k+1])), computed on the float32 view."""
    v = spec.view(np.float32)
    out = np.empty_like(v)
    np.add(v[..., :-4], v[..., 4:], out=out[..., 2:-2])
    out[..., 2:-2] *= -0.25
    out[..., 2:-2] += 0.5 * v[..., 2:-2]
    out[..., 0] = 0.5 * v[..., 0] - 0.5 * v[..., 2]  # X[-1] = conj(X[1])
    out[..., 1] = 0.0
    if n % 2 == 0:  # Nyquist bin: X[N/2 + 1] = conj(X[N/2 - 1])
        out[..., -2] = 0.5 * v[..., -2] - 0.5 * v[..., -4]
        out[..., -1] = 0.0
    else:  # last bin's right neighbour is its conjugate
        out[..., -2] = 0.25 * v[..., -2] - 0.25 * v[..., -4]
        out[..., -1] = 0.75 * v[..., -1] - 0.25 * v[..., -3]
    return out.view(np.complex64)


@lru_cache(maxsize=16)
def _hann_window(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def block_spectra(x: np.ndarray, sample_rate: int, *, analyse_every: int = 1) -> BlockSpectra | None:
    """Hann-windowed spectra of every ``analyse_every``-th complete block of ``x`` [C, n] float32
    (blocks a power of two near 100 ms long: a faster FFT; one window needs no BS.1770 gating):
    long-term spectrum, group energies, cross spectrum. None when ``x`` is shorter than one block."""
    C = x.shape[0]
    n = block_length(sample_rate, pow2=True)
    nb_all = x.shape[1] // n
    if nb_all == 0:
        return None
    every = max(1, min(int(analyse_every), nb_all))
    blocks = x[:, : nb_all * n].reshape(C, nb_all, n)[:, ::every]
    nb = blocks.shape[1]
    F = n // 2 + 1
    gb = _group_bins(sample_rate, n)
    g_lo = np.arange(gb, F - gb + 1, gb)
    psd = np.zeros((C, 2 * F), dtype=np.float64)  # interleaved re^2 / im^2 sums
    band_parts = []
    cross = np.zeros(F, dtype=np.complex128) if C >= 2 else None
    step = max(1, _CHUNK_SAMPLES // n)
    for b0 in range(0, nb, step):
        hs = sfft.rfft(blocks[:, b0 : b0 + step] * _hann_window(n), axis=-1)
        hv = hs.view(np.float32)
        hp = hv * hv  # [C, m, 2F]: re^2, im^2 interleaved
        psd += hp.sum(axis=1)
        band_parts.append(_group_rows(hp, g_lo))
        if cross is not None:
            cross += np.einsum("bf,bf->f", np.conj(hs[0]), hs[1])
    psd = (psd[:, 0::2] + psd[:, 1::2]) / (nb * n)
    return BlockSpectra(
        sample_rate=sample_rate,
        block_len=n,
        freqs=np.fft.rfftfreq(n, 1.0 / sample_rate),
        psd=psd,
        group_bins=gb,
        group_energy=np.concatenate(band_parts, axis=0).astype(np.float64) / n,
        cross=cross,
        n_blocks=nb_all,
        n_analysed=nb,
    )


def _group_bins(sample_rate: int, n: int) -> int:
    return max(1, int(round(GROUP_HZ * n / sample_rate)))


def _group_rows(hp: np.ndarray, g_lo: np.ndarray) -> np.ndarray:
    """[m, groups] float32: power per noise-floor group of each block, channels summed (the last,
    partial group and the DC group left out)."""
    tot = hp.sum(axis=0) if hp.shape[0] > 1 else hp[0]
    return np.add.reduceat(tot, 2 * g_lo, axis=-1)[:, :-1] if len(g_lo) > 1 else tot[:, :0]


_ZERO_LEVEL = 62  # "trailing zeros" of block multiple 0: it stays at every doubling


def _levels(m: np.ndarray) -> np.ndarray:
    """Trailing zero bits of each ``m`` (block index / every): m stays a multiple of every after
    ``level`` doublings."""
    low = m & -m
    out = np.full(m.shape, _ZERO_LEVEL, dtype=np.int64)
    nz = low > 0
    out[nz] = np.log2(low[nz]).astype(np.int64)
    return out


class TrackBlocks:
    """Streaming 100-ms block analysis of a track (see the module docstring). ``add`` takes the
    next complete blocks in order; ``spectra`` gives the ``BlockSpectra`` of everything so far."""

    def __init__(self, sample_rate: int, channels: int, every: int = 1, max_analysed: int = TRACK_ANALYSED_BLOCKS):
        from adv.measurements.loudness import channel_weights

        self.sample_rate, self.C = int(sample_rate), int(channels)
        self.n = n = block_length(sample_rate)
        self.w = np.repeat(_weights(self.sample_rate, n, True), 2, axis=0).T.copy()
        self.F = n // 2 + 1
        self.gb = _group_bins(self.sample_rate, n)
        self.g_lo = np.arange(self.gb, self.F - self.gb + 1, self.gb)
        self.cw = channel_weights(self.C)
        self.every = max(1, int(every))
        self.max_analysed = max_analysed
        self.n_blocks = 0
        self._weighted = np.empty(256, dtype=np.float64)  # per block: loudness input
        self.energy = np.zeros(min(self.C, 2))  # sum of the blocks' mean squares, L and R
        self.sums = ExactSums(self.C)
        self._acc: dict[int, list] = {}  # level -> [psd sums, cross sum, blocks]
        n_groups = max(len(self.g_lo) - 1, 0)
        self._rows = np.empty((16, n_groups), dtype=np.float32)
        self._row_m = np.empty(16, dtype=np.int64)
        self.n_rows = 0

    @property
    def weighted(self) -> np.ndarray:
        """[blocks] channel-weighted K-weighted mean square of every block so far."""
        return self._weighted[: self.n_blocks]

    def add(self, blocks: np.ndarray) -> None:
        """The next complete blocks, [C, m, block_len] float32 (a view is fine)."""
        C, nb, n = blocks.shape
        while analyse_every(self.n_blocks + nb, self.max_analysed) > self.every:
            self._double()  # the stream is known to be this long
        step = max(1, _CHUNK_SAMPLES // n)
        for a in range(0, nb, step):
            part = blocks[:, a : a + step]
            self._add(part, self.n_blocks)
            self.n_blocks += part.shape[1]

    def _add(self, blocks: np.ndarray, b0: int) -> None:
        C, m, n = blocks.shape
        spec = sfft.rfft(blocks, axis=-1)  # complex64 [C, m, F]
        sv = spec.view(np.float32)
        sq = sv * sv
        # Parseval weights per interleaved re/im value; einsum, not matmul: a BLAS call here would run
        # multi-threaded, and threads fight badly on a busy 2-core machine
        e_plain = np.einsum("cbk,k->cb", sq, self.w[0])
        e_k = np.einsum("cbk,k->cb", sq, self.w[1])
        if b0 + m > self._weighted.size:
            self._weighted = np.resize(self._weighted, max(2 * self._weighted.size, b0 + m))
        wk = np.zeros(m)
        for c in range(C):
            if self.cw[c]:
                wk += self.cw[c] * e_k[c].astype(np.float64)
        self._weighted[b0 : b0 + m] = wk
        self.energy += e_plain[:2].sum(axis=1, dtype=np.float64)
        self.sums.add(sv[..., 0])  # bin 0 = the block's sample sum
        i0 = (-b0) % self.every
        if i0 >= m:
            return
        sel = spec if self.every == 1 else np.ascontiguousarray(spec[:, i0 :: self.every])
        hs = _hann(sel, n)
        hv = hs.view(np.float32)
        hp = hv * hv  # [C, k, 2F]: re^2, im^2 interleaved
        mult = (b0 + i0) // self.every + np.arange(hp.shape[1])
        self._add_rows(_group_rows(hp, self.g_lo), mult)
        lv = _levels(mult)
        for level in lv[:1] if lv.size == 1 else np.unique(lv):
            s = slice(None) if lv.size == 1 or (lv == level).all() else (lv == level)
            acc = self._acc.get(int(level))
            if acc is None:
                acc = self._acc[int(level)] = [
                    np.zeros((C, self.F)),
                    np.zeros(self.F, np.complex128) if C >= 2 else None,
                    0,
                ]
            h = hp[:, s].sum(axis=1)
            acc[0] += h[..., 0::2] + h[..., 1::2]
            if acc[1] is not None:
                acc[1] += np.einsum("bf,bf->f", np.conj(hs[0, s]), hs[1, s])
            acc[2] += hp.shape[1] if lv.size == 1 or isinstance(s, slice) else int(np.count_nonzero(s))
        while self.n_rows > self.max_analysed:
            self._double()

    def _add_rows(self, rows: np.ndarray, mult: np.ndarray) -> None:
        k = rows.shape[0]
        if self.n_rows + k > self._rows.shape[0]:  # never more than max_analysed + one chunk's
            cap = min(
                max(2 * self._rows.shape[0], self.n_rows + k), self.max_analysed + max(k, _CHUNK_SAMPLES // self.n + 1)
            )
            cap = max(cap, self.n_rows + k)
            self._rows = np.resize(self._rows, (cap, self._rows.shape[1]))
            self._row_m = np.resize(self._row_m, cap)
        self._rows[self.n_rows : self.n_rows + k] = rows
        self._row_m[self.n_rows : self.n_rows + k] = mult
        self.n_rows += k

    def _double(self) -> None:
        """Analyses every 2 x ``every``-th block from now on, and drops what came from the others."""
        self.every *= 2
        keep = self._row_m[: self.n_rows] % 2 == 0
        k = int(np.count_nonzero(keep))
        self._rows[:k] = self._rows[: self.n_rows][keep]
        self._row_m[:k] = self._row_m[: self.n_rows][keep] // 2
        self.n_rows = k
        self._acc = {(lv if lv == _ZERO_LEVEL else lv - 1): acc for lv, acc in self._acc.items() if lv > 0}

    def spectra(self) -> BlockSpectra | None:
        """The long-term, group and cross spectra of the analysed blocks (None before a block)."""
        if self.n_blocks == 0:
            return None
        n = self.n
        psd = np.zeros((self.C, self.F))
        cross = np.zeros(self.F, np.complex128) if self.C >= 2 else None
        n_an = 0
        for lv in sorted(self._acc):
            acc = self._acc[lv]
            psd += acc[0]
            if cross is not None:
                cross += acc[1]
            n_an += acc[2]
        return BlockSpectra(
            sample_rate=self.sample_rate,
            block_len=n,
            freqs=np.fft.rfftfreq(n, 1.0 / self.sample_rate),
            psd=psd / (n_an * n),
            group_bins=self.gb,
            group_energy=self._rows[: self.n_rows].astype(np.float64) / n,
            cross=cross,
            n_blocks=self.n_blocks,
            n_analysed=n_an,
        )
