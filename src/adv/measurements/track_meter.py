"""Whole-track measurements of a stream of decoded blocks, in memory that does not grow with the track.

``TrackMeter(sample_rate, channels, expected_frames)`` takes a track as consecutive [channels, n]
blocks of any size (``update``) and gives ``measure_track``'s dict (``result``); ``measure_track``
is this class fed the whole track in one block, so there is one implementation. It keeps:

* samples: updates gathered up to 2^17 frames (~3 s at 44.1 kHz, 1 MB in stereo) before they are
  measured (a pass has ~0.2 ms of fixed cost, a third of a 65536-frame one's), then at most one
  partial 100-ms block, < 48 samples of true-peak context and < 12 of hum decimation;
* per 100-ms block one float64, the channel-weighted K-weighted mean square: the loudness gates
  and the LRA percentiles need every block (288 KB per hour);
* sums: peaks, exact per-channel sample sums (DC), energies and the L*R sum (correlation), the
  long-term and cross spectra of the analysed blocks and their noise-floor rows (at most 600;
  ``_blocks.TrackBlocks``), the spectra of at most ~24 hum frames (``noise.HumFrames``);
* clipping, per channel and side (``_ClipSide``): the running ceiling, the run still open at the
  end of the last block, two small tables of judged runs and a bounded store of runs (below).

About 3.5 MB per hour of stereo 44.1 kHz audio, 5 MB when it is heavily clipped (``nbytes``).

Clipping. The clip rule needs the track's ceiling (its largest sample), known only at the end. A
run of candidates (samples within 0.05 dB of the running ceiling M, which only rises) is judged,
once closed, at M by the window path's rule (``clipping.evaluate_runs``), which also tells whether
the run is stable: whether its verdict holds at every higher ceiling until its top falls out of
tolerance (its "void"): its span is flat at its top, it rises and then falls (no valley whose loss
would split it) and no sample outside its span can join the core. A clipped master's flat tops
are stable. Stable runs go into tables keyed by their void (clip runs: count, span samples,
longest span; samples at the ceiling of non-clip runs: by the last ceiling they are at it), and
an entry counts at the end if its key is at or above the final ceiling, so it is exact whatever
the ceiling does later; keys under M are dropped, so the tables hold float32 keys within 0.05 dB
of M (a few on a clipped master, at most ``MAX_KEYS``, beyond which keys are rounded down). The
other runs (a dithered or noisy top, a notch or a valley within the tolerance) are kept, run-length
coded (flat tops shrink to a few entries), and judged at the final ceiling by ``result``; only when
more come than the store holds (``UNSTABLE_ENTRIES`` entries per side; the oldest, judged when the
ceiling was lowest, are kept) are the newer ones' verdicts taken as they are at M until they are
gone. That is the one approximation, and only when the ceiling then rises, by less than 0.05 dB,
after such runs: measured within 0.01 % of the clipped samples on 40 %-clipped 16-bit dithered and
noisy-topped tracks with a sample 0.003-0.045 dB above their ceiling at the very end (the tests'
worst case); a constructed track of notched tops that only the final ceiling splits into clips
would lose the clips beyond the store (run-length coding keeps ~100 s of it). Runs closed by the
update that reaches the announced length are judged at the next update or at the end, so one pass
over a whole track judges once, at its final ceiling. An open run longer than ``OPEN_RUN_ENTRIES``
entries (DC at the ceiling) is run-length coded, and a noisy one's middle summarised (approximate).

``expected_frames`` (a header's length; may be wrong or None) only sets where the subsampling
starts: every k-th 100-ms block is analysed (300 to 600 in all) and every k-th ~2-s hum frame
(9 to 16), k a power of two. When more come, k doubles and the odd ones are dropped, exactly (sums
are kept per power of two dividing the index), so a stream of unknown or understated length ends
with the very blocks and frames one pass takes, and so does one overstated up to 1.25x (k is
planned for 80 % of the announced length; a bigger margin costs up to 15 % more time on every
stream for analysing blocks that are then dropped). A length overstated more than that may leave
half (or fewer) of the analysed blocks (spectral measures then vary as with a shorter sample: up to
~0.9 dB SNR and ~80 Hz cut-off at 2x on the synthetic mixes; the first 8 hum frames are always
kept). Loudness, peaks, clipping, DC and correlation use every sample whatever it says.
"""

from __future__ import annotations

import math

import numpy as np

from adv.measurements import bandwidth, clipping, loudness, noise, spectrum, stereo, truepeak
from adv.measurements._blocks import TrackBlocks, analyse_every, block_length
from adv.measurements._common import SILENT_PEAK, ExactSums, as_audio, db_amp, finite, rnd, sig

MIN_CHUNK = 1 << 17  # frames: updates are gathered up to this before they are processed (each
# pass costs ~0.2 ms of fixed numpy overhead, a third of a 65536-frame one)
OPEN_RUN_ENTRIES = 1 << 14  # an open run (DC at the ceiling ...) longer than this is run-length coded
OPEN_RUN_KEEP = 1024  # ... and, if still longer, its middle summarised, keeping this many each end
MAX_KEYS = 4096  # judged-run table size beyond which its keys are rounded down
UNSTABLE_ENTRIES = 1 << 14  # entries (samples, or stretches of equal ones) of runs kept per side to
# be judged at the final ceiling

LENGTH_MARGIN = 1.25  # subsampling is planned for expected_frames / this (see __init__)
_TP_CONTEXT = 16  # samples of history kept for the interpolator (it needs 11)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of a * b without BLAS (whose threads fight badly on a busy 2-core machine)."""
    return float(np.einsum("i,i->", a, b))


class _Runs:
    """Closed runs of candidates kept as entries (sign-adjusted values, counts) to be judged later."""

    def __init__(self, hi=None, lo=None, cnt=None, first=None, n_ent=None, before=None, after=None):
        e, z = np.empty(0), np.zeros(0, np.int64)
        self.hi, self.lo, self.cnt = (e if hi is None else hi), (e if lo is None else lo), (z if cnt is None else cnt)
        self.first, self.n_ent = (z if first is None else first), (z if n_ent is None else n_ent)
        self.before, self.after = (e if before is None else before), (e if after is None else after)

    def __len__(self) -> int:
        return self.first.size

    def args(self) -> tuple:
        return self.hi, self.lo, self.cnt, self.first, self.n_ent, self.before, self.after

    def take(self, runs: np.ndarray) -> "_Runs":
        """The runs ``runs`` (sorted indices), renumbered."""
        if runs.size == len(self):
            return self
        m = self.n_ent[runs]
        idx = np.repeat(self.first[runs], m) + (np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m))
        return _Runs(
            self.hi[idx],
            self.lo[idx],
            self.cnt[idx],
            (np.cumsum(m) - m).astype(np.int64),
            m,
            self.before[runs],
            self.after[runs],
        )

    def coded(self) -> "_Runs":
        """The same runs with neighbouring equal samples as one entry (lossless: clip tops are flat)."""
        if self.hi.size < 2:
            return self
        hi, lo = self.hi, self.lo
        start = np.zeros(hi.size, dtype=bool)
        start[self.first] = True
        same = (
            np.r_[False, (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1]) & (hi[1:] == lo[1:]) & (hi[:-1] == lo[:-1])] & ~start
        )
        g = np.flatnonzero(~same)
        if g.size == hi.size:
            return self
        gid = np.cumsum(~same) - 1
        new_first = gid[self.first]
        return _Runs(
            hi[g],
            lo[g],
            np.add.reduceat(self.cnt, g),
            new_first,
            np.diff(np.r_[new_first, g.size]),
            self.before,
            self.after,
        )

    def cut(self, c: float, tol: float) -> "_Runs":
        """The pieces these runs fall into at ceiling ``c`` (only samples >= c (1 - tol) stay
        candidates), each with its neighbours."""
        if self.hi.size == 0 or self.hi.min() >= c * (1.0 - tol):
            return self
        keep = np.flatnonzero(self.hi >= c * (1.0 - tol))
        if keep.size == 0:
            return _Runs()
        run_of = np.repeat(np.arange(len(self)), self.n_ent)
        par = run_of[keep]
        brk = np.r_[True, (keep[1:] != keep[:-1] + 1) | (par[1:] != par[:-1])]
        f = np.flatnonzero(brk)
        n_new = np.diff(np.r_[f, keep.size])
        start, end = keep[f], keep[f + n_new - 1]
        p_first = self.first[par[f]]
        p_last = p_first + self.n_ent[par[f]] - 1
        b = np.where(start > p_first, self.hi[np.maximum(start - 1, 0)], self.before[par[f]])
        a = np.where(end < p_last, self.hi[np.minimum(end + 1, self.hi.size - 1)], self.after[par[f]])
        return _Runs(self.hi[keep], self.lo[keep], self.cnt[keep], f.astype(np.int64), n_new, b, a)

    def compact(self) -> "_Runs":
        """The same runs in float32 / int32 (exact: the samples are float32 values)."""
        return _Runs(
            self.hi.astype(np.float32),
            self.lo.astype(np.float32),
            self.cnt.astype(np.int32),
            self.first.astype(np.int32),
            self.n_ent.astype(np.int32),
            self.before.astype(np.float32),
            self.after.astype(np.float32),
        )

    def wide(self) -> "_Runs":
        """The same runs in float64 / int64, as the evaluator takes them."""
        if self.hi.dtype == np.float64:
            return self
        return _Runs(
            self.hi.astype(np.float64),
            self.lo.astype(np.float64),
            self.cnt.astype(np.int64),
            self.first.astype(np.int64),
            self.n_ent.astype(np.int64),
            self.before.astype(np.float64),
            self.after.astype(np.float64),
        )

    @staticmethod
    def join(parts: list) -> "_Runs":
        """All the runs of ``parts``, in order."""
        parts = [q.wide() for q in parts if len(q)]
        if len(parts) <= 1:
            return parts[0] if parts else _Runs()
        off = np.cumsum([0] + [q.hi.size for q in parts[:-1]])
        return _Runs(
            *(np.concatenate([getattr(q, a) for q in parts]) for a in ("hi", "lo", "cnt")),
            np.concatenate([q.first + o for q, o in zip(parts, off)]),
            *(np.concatenate([getattr(q, a) for q in parts]) for a in ("n_ent", "before", "after")),
        )

    def __add__(self, other: "_Runs") -> "_Runs":
        if len(other) == 0:
            return self
        if len(self) == 0:
            return other
        return _Runs(
            np.r_[self.hi, other.hi],
            np.r_[self.lo, other.lo],
            np.r_[self.cnt, other.cnt],
            np.r_[self.first, other.first + self.hi.size],
            np.r_[self.n_ent, other.n_ent],
            np.r_[self.before, other.before],
            np.r_[self.after, other.after],
        )


class _ClipSide:
    """Streaming clip rule for one side (``sign`` +1: top, -1: bottom) of one channel."""

    def __init__(self, sign: float, tol: float):
        self.sign, self.tol = sign, tol
        self.ceiling = 0.0  # running max of sign * x
        z = np.empty(0, np.int64)
        # judged runs whose verdict holds until they are gone, by the ceiling that ends it
        self.clips = (z, (z, z, z))  # void -> clip runs, their span samples, the longest span
        self.exact = (z, (z,))  # last ceiling it is at -> samples at the ceiling (non-clips)
        self.later = _Runs()  # closed at the last update, judged at the next
        self.unstable: list[tuple[_Runs, np.ndarray]] = []  # runs whose verdict may change before
        self.n_unstable = 0  # they are gone (with their voids), samples
        self._u_purged = 0.0  # ceiling at the last purge of those gone
        self.o_hi = self.o_lo = None  # the open run's entries (sign-adjusted) ...
        self.o_cnt = None
        self.o_start = 0  # ... its first sample
        self.o_before = math.nan  # ... and the sample before it

    def update(self, ext: truepeak.Extrema, c: int, buf0: int, r0: int, side_max: float, defer: bool) -> None:
        """Takes samples ``r0 ..`` of ``ext.x[c]`` (``ext.x`` starts at sample ``buf0``; samples
        before ``r0`` were seen and the one at ``r0 - 1`` is there; ``side_max``: the largest
        sign * x in it) and judges the runs it closes, or with ``defer`` (the stream has reached
        its announced length) keeps them to be judged at the next update or at the end: one pass
        over a whole track then judges once, at its final ceiling, without the stability test."""
        x = ext.x
        self.ceiling = max(self.ceiling, side_max)
        if self.ceiling <= SILENT_PEAK:  # nothing that quiet is judged (nor would count)
            return
        M = self.ceiling
        thr = M * (1.0 - self.tol)
        if len(self.later):
            self._judge(self.later)
            self.later = _Runs()
        if self.o_hi is None and side_max < thr:  # nothing near the ceiling here
            return
        idx = clipping.candidates(ext, c, self.sign, thr, start=r0)
        v = self.sign * x[c, idx].astype(np.float64)
        n_end = buf0 + x.shape[1]
        if self.o_hi is not None:
            o_pos = self.o_start + np.r_[0, np.cumsum(self.o_cnt)[:-1]]
            keep = self.o_hi >= thr
            hi = np.r_[self.o_hi[keep], v]
            lo = np.r_[self.o_lo[keep], v]
            cnt = np.r_[self.o_cnt[keep], np.ones(v.size, np.int64)]
            pos = np.r_[o_pos[keep], buf0 + idx]
        else:
            o_pos = None
            hi, lo, cnt, pos = v, v, np.ones(v.size, np.int64), buf0 + idx
        if hi.size == 0:
            self.o_hi = None
            return
        first = np.r_[0, np.flatnonzero(pos[1:] != pos[:-1] + cnt[:-1]) + 1]
        n_ent = np.diff(np.r_[first, hi.size])
        start = pos[first]
        last = first + n_ent - 1
        end = pos[last] + cnt[last] - 1

        def value_at(g: np.ndarray) -> np.ndarray:
            out = np.full(g.shape, np.nan)
            inbuf = g >= buf0
            out[inbuf] = self.sign * x[c, g[inbuf] - buf0].astype(np.float64)
            if o_pos is not None:
                inrun = ~inbuf & (g >= self.o_start)
                out[inrun] = self.o_hi[np.searchsorted(o_pos, g[inrun], side="right") - 1]
                out[~inbuf & (g == self.o_start - 1)] = self.o_before
            return out

        before = np.where(start > 0, value_at(np.maximum(start - 1, 0)), np.nan)
        closed = len(first) - 1 if end[-1] == n_end - 1 else len(first)  # the last may go on
        if closed:
            e = last[closed - 1] + 1
            closed_runs = _Runs(
                hi[:e], lo[:e], cnt[:e], first[:closed], n_ent[:closed], before[:closed], value_at(end[:closed] + 1)
            )
            if defer:
                self.later = closed_runs
            else:
                self._judge(closed_runs)
        if closed < len(first):
            a = first[-1]
            self.o_hi, self.o_lo, self.o_cnt = hi[a:], lo[a:], cnt[a:]
            self.o_start, self.o_before = int(start[-1]), float(before[-1])
            if self.o_hi.size > OPEN_RUN_ENTRIES:
                self._compress()
        else:
            self.o_hi = None

    def _judge(self, runs: _Runs) -> None:
        """Judges ``runs`` at the running ceiling: those whose verdict holds until they are gone go
        into the tables; the others are kept (run-length coded, up to ``UNSTABLE_ENTRIES`` samples)
        to be judged at the final ceiling, and once that store is full their verdict is taken as
        it is (the store keeps the oldest: judged when the ceiling was lowest)."""
        runs = runs.cut(self.ceiling, self.tol)
        if len(runs) == 0:
            return
        r = clipping.evaluate_runs(*runs.args(), self.ceiling, self.tol)
        self._add(r, np.flatnonzero(r.stable))
        shaky = np.flatnonzero(~r.stable)
        if shaky.size:
            if self.n_unstable >= UNSTABLE_ENTRIES and self._u_purged < self.ceiling:
                self._purge()
            room = UNSTABLE_ENTRIES - self.n_unstable
            kept = runs.take(shaky).coded() if room > 0 else _Runs()
            fit = int(np.searchsorted(np.cumsum(kept.n_ent), room, side="right"))
            if fit:
                part = kept.take(np.arange(fit)).compact()
                self.unstable.append((part, r.void[shaky[:fit]]))
                self.n_unstable += part.hi.size
            self._add(r, shaky[fit:])
        self._prune()

    def _purge(self) -> None:
        """Drops the kept runs that are gone (their top under the running ceiling's candidates)."""
        runs = _Runs.join([u for u, _ in self.unstable])
        void = np.concatenate([v for _, v in self.unstable]) if self.unstable else np.empty(0)
        alive = np.flatnonzero(void >= self.ceiling)
        runs = runs.take(alive).compact()
        self.unstable = [(runs, void[alive])] if len(runs) else []
        self.n_unstable = runs.hi.size
        self._u_purged = self.ceiling

    def _add(self, r: clipping.RunVerdicts, runs: np.ndarray) -> None:
        """Adds the verdicts of ``runs`` (indices into ``r``), taken to hold until each run is gone."""
        cl = runs[r.clip[runs]]
        if cl.size:
            sl = r.span_len[cl]
            self.clips = _merge(
                self.clips, _bits(r.void[cl]), (np.ones(cl.size, np.int64), sl, sl), ("sum", "sum", "max")
            )
        sel = np.isin(r.exact_run, runs)
        if sel.any():
            self.exact = _merge(self.exact, _bits(r.exact_key[sel]), (r.exact_n[sel],), ("sum",))

    def _prune(self) -> None:
        """Drops what can no longer count (ending under the running ceiling), bounds the tables."""
        self.clips = _bounded(self.clips, self.ceiling, ("sum", "sum", "max"))
        self.exact = _bounded(self.exact, self.ceiling, ("sum",))

    def _compress(self) -> None:
        """Bounds a long open run: equal neighbours become one entry (exact); if still too long,
        pairs in its middle are merged into (max, min, count) entries (approximate)."""
        hi, lo, cnt = self.o_hi, self.o_lo, self.o_cnt
        same = np.r_[False, (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1]) & (hi[1:] == lo[1:]) & (hi[:-1] == lo[:-1])]
        g = np.flatnonzero(~same)
        hi, lo, cnt = hi[g], lo[g], np.add.reduceat(cnt, g)
        if hi.size > OPEN_RUN_ENTRIES:
            k = OPEN_RUN_KEEP
            mid = slice(k, hi.size - k)
            m_hi, m_lo, m_cnt = hi[mid], lo[mid], cnt[mid]
            pairs = np.arange(0, m_hi.size, 2)
            hi = np.r_[hi[:k], np.maximum.reduceat(m_hi, pairs), hi[-k:]]
            lo = np.r_[lo[:k], np.minimum.reduceat(m_lo, pairs), lo[-k:]]
            cnt = np.r_[cnt[:k], np.add.reduceat(m_cnt, pairs), cnt[-k:]]
        self.o_hi, self.o_lo, self.o_cnt = hi, lo, cnt

    def result(self) -> tuple[int, int]:
        """(clipped samples, longest clip) if the stream ended here (state unchanged): the tables,
        and the runs not yet judged for good (and the open one, which ends with the signal) judged
        at the final ceiling."""
        M = self.ceiling
        if M <= SILENT_PEAK:
            return 0, 0
        rest = _Runs.join([self.later] + [u for u, _ in self.unstable])
        if self.o_hi is not None:
            rest = rest + _Runs(
                self.o_hi,
                self.o_lo,
                self.o_cnt,
                np.array([0]),
                np.array([self.o_hi.size]),
                np.array([self.o_before]),
                np.array([np.nan]),
            )
        rest = rest.cut(M, self.tol)
        n_clip = n_span = n_exact = longest = 0
        if len(rest):
            r = clipping.evaluate_runs(*rest.args(), M, self.tol, keys=False)
            n_clip, n_exact = int(np.count_nonzero(r.clip)), int(r.exact_n.sum())
            n_span = int(r.span_len[r.clip].sum())
            longest = int(r.span_len[r.clip].max()) if n_clip else 0
        b = int(_bits(np.array([M]))[0])
        ck, (t_runs, t_span, t_long) = self.clips
        ek, (t_exact,) = self.exact
        on = ck >= b
        if on.any():
            n_clip += int(t_runs[on].sum())
            n_span += int(t_span[on].sum())
            longest = max(longest, int(t_long[on].max()))
        n_exact += int(t_exact[ek >= b].sum())
        return clipping.side_result(n_clip, n_span, n_exact, longest)


def _bits(v: np.ndarray) -> np.ndarray:
    """float32 bit patterns (as int64) of positive ceilings: they order like the values."""
    return np.minimum(np.asarray(v, dtype=np.float64), 3.0e38).astype(np.float32).view(np.uint32).astype(np.int64)


def _merge(table: tuple, new_keys: np.ndarray, new_cols: tuple, ops: tuple) -> tuple:
    """A (sorted unique int64 keys, columns) table with rows added (columns summed or maxed per key)."""
    keys, cols = table
    allk = np.r_[keys, new_keys]
    if allk.size == 0:
        return table
    order = np.argsort(allk, kind="stable")
    sk = allk[order]
    starts = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    out = tuple(
        (np.add if op == "sum" else np.maximum).reduceat(np.r_[col, new].astype(np.int64)[order], starts)
        for col, new, op in zip(cols, new_cols, ops)
    )
    return sk[starts], out


def _bounded(table: tuple, ceiling: float, ops: tuple) -> tuple:
    """``table`` (keys: the last ceiling an entry counts at) without the keys under ``ceiling``, and
    with at most ``MAX_KEYS`` keys: beyond it keys are rounded down (float32 mantissa bits cleared
    two at a time, never below ``ceiling``), so entries stop counting a little early."""
    keys, cols = table
    if keys.size == 0:
        return table
    b = int(_bits(np.array([ceiling]))[0])
    if keys[0] < b:
        k = keys >= b
        keys, cols = keys[k], tuple(c[k] for c in cols)
    bits = 0
    while keys.size > MAX_KEYS:
        bits += 2
        coarse = np.maximum(keys & ~((1 << bits) - 1), b)
        keys, cols = _merge((keys[:0], tuple(c[:0] for c in cols)), coarse, cols, ops)
    return keys, cols


class TrackMeter:
    """Streaming ``measure_track``: ``update`` with consecutive [channels, n] blocks (any n >= 0,
    float32-convertible; 1-D for mono; integer PCM is scaled), then ``result``. See the module
    docstring for what is kept and how far it agrees with one pass."""

    def __init__(self, sample_rate: int, channels: int, expected_frames: int | None = None):
        self.sr = int(sample_rate)
        self.C = int(channels)
        if self.sr <= 0 or self.C <= 0:
            raise ValueError("sample_rate and channels must be positive")
        self.n = 0  # frames seen
        self.expected = int(expected_frames) if expected_frames else None
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._carry = np.zeros((self.C, 0), dtype=np.float32)  # samples from _buf0 to n
        self._buf0 = 0
        self.bl = block_length(self.sr)
        # planned for a shorter length than announced: doubling is exact, so a header that
        # overstates the length (up to LENGTH_MARGIN x) still gives the analysed blocks of the true one
        hint = int(int(expected_frames) / LENGTH_MARGIN) if expected_frames else 0
        self.blocks = TrackBlocks(self.sr, self.C, analyse_every(hint // self.bl))
        self._fft_next = 0
        self.hum = noise.HumFrames(self.sr, hint)
        self.peak = np.zeros(self.C, dtype=np.float32)
        self.tp = np.zeros(self.C, dtype=np.float64)
        self.overs = np.zeros(self.C, dtype=np.int64)
        self._tp_next = 0  # next 16-sample block to interpolate
        tol = clipping.tolerance()
        self.clip = [(_ClipSide(1.0, tol), _ClipSide(-1.0, tol)) for _ in range(self.C)]
        self.e_lr = 0.0

    # ----------------------------------------------------------------------------------- input
    def update(self, block) -> None:
        """Adds the next ``block`` [channels, n] of the track (any n >= 0). Blocks are measured once
        2^17 frames have gathered; nothing refers to ``block`` afterwards, so the caller may reuse it."""
        x = np.asarray(block)
        if x.dtype != np.float32 or x.ndim != 2 or x.strides[1] != 4:
            x = as_audio(x, check_finite=False)  # rows need only be contiguous
        if x.shape[0] != self.C:
            raise ValueError(f"expected {self.C} channels, got {x.shape[0]}")
        if x.shape[1] == 0:
            return
        if self._pending_n + x.shape[1] < MIN_CHUNK:
            self._pending.append(x.copy())  # the caller may reuse its buffer
            self._pending_n += x.shape[1]
            return
        self._process(self._pending + [x])
        self._pending, self._pending_n = [], 0

    def _flush(self) -> None:
        if self._pending:
            self._process(self._pending)
            self._pending, self._pending_n = [], 0

    def _process(self, pieces: list[np.ndarray]) -> None:
        """Measures the samples in ``pieces`` (consecutive [C, n] float32 arrays) after the carry."""
        n_prev = self.n
        parts = ([self._carry] if self._carry.shape[1] else []) + pieces
        buf = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        buf0 = n_prev - self._carry.shape[1]
        ext = truepeak.Extrema(buf)
        if not np.isfinite(ext.peak).all():  # NaN / inf samples count as 0
            buf = finite(buf)
            ext = truepeak.Extrema(buf)
        L = buf.shape[1]
        self.n = n = buf0 + L
        r0 = n_prev - buf0  # first new sample in buf
        np.maximum(self.peak, ext.peak, out=self.peak)

        # true peak: 16-sample blocks whose next block is complete (context for the interpolator)
        j0, j1 = (self._tp_next - buf0) // truepeak.BLOCK, L // truepeak.BLOCK - 1
        if j1 > j0:
            if float(self.peak.max()) > 0.0:
                p, o = truepeak.interval_peaks(
                    ext,
                    truepeak.candidate_level(float(self.peak.max())),
                    j0,
                    j1,
                    k_lo=max(0, truepeak._HALF - 1 - buf0),
                    k_hi=L,
                )
                np.maximum(self.tp, p, out=self.tp)
                self.overs += o
            self._tp_next = buf0 + j1 * truepeak.BLOCK

        top, bottom = ext.coarse_max.max(axis=1), ext.coarse_min.min(axis=1)
        defer = self.expected is not None and n >= self.expected
        for c in range(self.C):
            self.clip[c][0].update(ext, c, buf0, r0, float(top[c]), defer)
            self.clip[c][1].update(ext, c, buf0, r0, -float(bottom[c]), defer)

        a = self._fft_next - buf0
        nb = (L - a) // self.bl
        if nb:
            self.blocks.add(buf[:, a : a + nb * self.bl].reshape(self.C, nb, self.bl))
            self._fft_next += nb * self.bl

        self.hum.update(buf, buf0, n)
        if self.C >= 2:
            self.e_lr += _dot(buf[0, r0:], buf[1, r0:])

        keep = min(max(self._tp_next - _TP_CONTEXT, 0), n - 1, self._fft_next, self.hum.carry_from(n))
        keep = max(buf0, keep - keep % truepeak.BLOCK)
        self._carry = buf[:, keep - buf0 :].copy()
        self._buf0 = keep

    def nbytes(self) -> int:
        """Bytes held in the meter's arrays (its state, without Python object overhead)."""
        seen: set[int] = set()

        def walk(o) -> int:
            if id(o) in seen:
                return 0
            seen.add(id(o))
            if isinstance(o, np.ndarray):
                return o.nbytes
            if isinstance(o, (list, tuple)):
                return sum(walk(v) for v in o)
            if isinstance(o, dict):
                return sum(walk(v) for v in o.values())
            if hasattr(o, "__dict__"):
                return sum(walk(v) for v in vars(o).values())
            return 0

        return walk(self)

    # ----------------------------------------------------------------------------------- output
    def result(self) -> dict:
        """``measure_track``'s dict (keys ``TRACK_KEYS``) of the track so far; the meter can go on."""
        from adv.measurements import TRACK_KEYS

        self._flush()
        C, n, sr = self.C, self.n, self.sr
        if n == 0:
            out = empty_peaks(C)
        else:
            tp, overs = self._final_true_peak()
            clip = [(a + b, max(la, lb)) for (a, la), (b, lb) in ((s0.result(), s1.result()) for s0, s1 in self.clip)]
            out = peak_fields(self.peak, tp, overs, clip, n)
        bs = self.blocks.spectra()
        tail = self._carry[:, self._fft_next - self._buf0 :]
        sums = ExactSums(C)
        sums.acc = self.blocks.sums.acc.copy()
        sums.add(tail)
        ch_sums = sums.total()
        out.update(
            integrated_lufs=None,
            loudness_range_lu=None,
            cutoff_hz=None,
            snr_db=None,
            spectral_deviation_db=None,
            most_deviant_band_hz=None,
            most_deviant_band_db=None,
        )
        out["dc_offset"] = sig(loudness.dc_offset(ch_sums, n), 4) if n else 0.0
        if bs is not None:
            w = self.blocks.weighted
            out["integrated_lufs"] = rnd(loudness.integrated_lufs(w), 2)
            out["loudness_range_lu"] = rnd(loudness.loudness_range_lu(w), 2)
            long_term = bs.psd.mean(axis=0)
            out["cutoff_hz"] = rnd(bandwidth.cutoff_hz(bs.freqs, long_term, sr), 1)
            out["snr_db"] = snr_from(bs, C)
            dev, band_hz, band_db = spectrum.spectral_deviation(bs.freqs, long_term, sr)
            out.update(
                spectral_deviation_db=rnd(dev, 2), most_deviant_band_hz=band_hz, most_deviant_band_db=rnd(band_db, 2)
            )
        out["hum_hz"] = self.hum.result(n) if n else None
        if C >= 2 and n:
            e = self.blocks.energy * self.bl
            out.update(
                stereo_fields(
                    n,
                    float(e[0]) + _dot(tail[0], tail[0]),
                    float(e[1]) + _dot(tail[1], tail[1]),
                    self.e_lr,
                    float(ch_sums[0]),
                    float(ch_sums[1]),
                    bs,
                )
            )
        else:
            out.update(stereo_fields(0, 0.0, 0.0, 0.0, 0.0, 0.0, None))
        return {k: out[k] for k in TRACK_KEYS}

    def _final_true_peak(self) -> tuple[np.ndarray, np.ndarray]:
        """True peak and overs with the last blocks (to the signal's end) included (state unchanged)."""
        tp, overs = np.maximum(self.tp, self.peak.astype(np.float64)), self.overs.copy()
        pk = float(self.peak.max())
        if self.n < 2 or pk <= 0.0:
            return self.peak.astype(np.float64), np.zeros(self.C, np.int64)
        buf, buf0 = self._carry, self._buf0
        ext = truepeak.Extrema(buf)
        j0 = (self._tp_next - buf0) // truepeak.BLOCK
        p, o = truepeak.interval_peaks(
            ext,
            truepeak.candidate_level(pk),
            j0,
            None,
            k_lo=max(0, truepeak._HALF - 1 - buf0),
            k_hi=self.n - truepeak._HALF - buf0,
        )
        return np.maximum(tp, p), overs + o


def peak_fields(peak: np.ndarray, tp: np.ndarray, overs: np.ndarray, clip: list, n: int) -> dict:
    """Peak and clipping keys from per-channel sample peaks, true peaks, overs and (clipped
    samples, longest clip) of a signal of ``n`` frames."""
    per = []
    for c, (cs, longest) in enumerate(clip):
        per.append(
            {
                "clipped_samples": int(cs),
                "clipped_fraction": sig(cs / n) if n else 0.0,
                "longest_clip_run": int(longest),
                "intersample_overs": int(overs[c]),
            }
        )
    total = sum(p["clipped_samples"] for p in per)
    return {
        "sample_peak_dbfs": rnd(loudness.sample_peak_dbfs(peak), 2),
        "true_peak_dbtp": rnd(db_amp(float(tp.max())), 2),
        "clipped_samples": int(total),
        "clipped_fraction": sig(total / (len(per) * n)) if n else 0.0,
        "longest_clip_run": int(max(p["longest_clip_run"] for p in per)),
        "intersample_overs": int(sum(p["intersample_overs"] for p in per)),
        "clipping_per_channel": per,
    }


def empty_peaks(C: int) -> dict:
    """Peak and clipping keys of an empty signal."""
    per = [
        {"clipped_samples": 0, "clipped_fraction": 0.0, "longest_clip_run": 0, "intersample_overs": 0} for _ in range(C)
    ]
    return {
        "sample_peak_dbfs": None,
        "true_peak_dbtp": None,
        "clipped_samples": 0,
        "clipped_fraction": 0.0,
        "longest_clip_run": 0,
        "intersample_overs": 0,
        "clipping_per_channel": per,
    }


def snr_from(bs, n_channels: int) -> float | None:
    """``snr_db`` from block spectra; None for silence, DC or sub-40-Hz rumble (no music to speak of)."""
    if bs is None:
        return None
    if float(bs.psd[:, 2 * bs.group_bins :].sum()) <= 1e-9 * float(bs.psd.sum()):
        return None
    return rnd(noise.snr_db(bs.group_energy, bs.group_bins, n_channels), 1)


def stereo_fields(n: int, e_l: float, e_r: float, e_lr: float, s_l: float, s_r: float, bs) -> dict:
    """Stereo keys from the sums of L^2, R^2, L*R, L and R over ``n`` frames (0: not stereo) and the
    block spectra (delay and polarity; None: not measured)."""
    out = {"lr_correlation": None, "channel_delay_ms": None, "polarity_inverted": None, "mono_downmix_loss_db": None}
    if n == 0:
        return out
    corr, loss = stereo.correlation_and_loss(e_l, e_r, e_lr, s_l / n, s_r / n, n)
    out["lr_correlation"] = rnd(corr, 4)
    out["mono_downmix_loss_db"] = rnd(loss, 2)
    if bs is not None:
        delay, inverted = stereo.delay_and_polarity(
            bs.cross, bs.psd[0], bs.psd[1], bs.n_analysed, bs.block_len, bs.sample_rate
        )
        out["channel_delay_ms"] = rnd(delay, 3)
        out["polarity_inverted"] = inverted
    return out
