"""Cuts a stream of audio blocks into the analysis windows of `windows.window_starts`, holding only
about one window of audio at a time, so memory does not grow with the length of a file.

The windows are planned from the expected length (a file header's). When the stream goes on past
the plan, windows follow at the plain hop; when it ends before, the planned windows that do not
fit are dropped. A last window flush with the real end is added when needed, so with a right
expectation the windows equal ``window_starts`` of the real length. Without an expectation the hop
is never widened.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from adv.inference.windows import window_starts


class WindowStream:
    """``push(block)`` takes [channels, n] blocks in order and returns the windows completed,
    ``finish()`` the last ones; each window is ``(start_sample, audio [channels, length])``."""

    def __init__(
        self, sample_rate: int, window_s: float, hop_s: float, max_windows: int, expected_samples: int | None = None
    ):
        self.win = int(window_s * sample_rate)
        self._hop = max(int(hop_s * sample_rate), 1)
        planned = (
            window_starts(expected_samples, sample_rate, window_s, hop_s, max_windows)
            if expected_samples is not None and expected_samples > 0
            else [0]
        )
        self._plan: Iterator[int] = iter(planned)
        self._next = next(self._plan)
        self._blocks: list[tuple[int, np.ndarray]] = []  # (absolute start, block)
        self.total = 0
        self._last_start: int | None = None

    def _cut(self, start: int, stop: int) -> np.ndarray:
        parts = [b[:, max(start - s, 0) : stop - s] for s, b in self._blocks if s < stop and s + b.shape[1] > start]
        return np.ascontiguousarray(np.concatenate(parts, axis=1)) if len(parts) > 1 else parts[0].copy()

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if block.shape[1] == 0:
            return []
        self._blocks.append((self.total, block))
        self.total += block.shape[1]
        out = []
        while self._next + self.win <= self.total:
            out.append((self._next, self._cut(self._next, self._next + self.win)))
            self._last_start = self._next
            self._next = next(self._plan, self._next + self._hop)  # past the plan: the plain hop
        keep_from = max(0, min(self.total - self.win, self._next))
        while self._blocks and self._blocks[0][0] + self._blocks[0][1].shape[1] <= keep_from:
            self._blocks.pop(0)
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The windows that end the track: all of a track shorter than one window, or the one flush
        with the end when the last window emitted stops before it."""
        if self.total == 0:
            return []
        if self.total <= self.win:
            return [] if self._last_start is not None else [(0, self._cut(0, self.total))]
        span = self.total - self.win
        if self._last_start is None or self._last_start < span:
            self._last_start = span
            return [(span, self._cut(span, self.total))]
        return []
