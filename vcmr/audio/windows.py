"""Windows cut from a stream of audio blocks, a batch at a time, never the whole signal.

``stream_windows`` yields ``(starts, windows)`` batches: ``windows`` (b, segment) float32,
zero-padded where a window runs before sample 0 or past the end. The windows are either given
(``starts``: sorted sample offsets, negative allowed: HEAR's centred windows) or follow the
segmentation rule of ``vcmr.metrics.songs.segment_starts`` (``overlap``, ``pad_last``) for a
stream whose length is known only at its end: every full window is cut as soon as its samples
have arrived, and the rule's last (padded) window once the stream ends. Only the samples from
the next window's start on are kept, so memory is one block plus one batch of windows.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from vcmr.metrics.songs import segment_starts


class WindowStream:
    """Iterate for the batches; afterwards ``n_samples`` is the stream's length."""

    def __init__(self, blocks: Iterable[np.ndarray], segment: int, batch: int, *,
                 starts: np.ndarray | None = None, overlap: float = 0.0, pad_last: bool = True):
        self.blocks, self.segment, self.batch = blocks, int(segment), max(1, int(batch))
        self.given = None if starts is None else np.asarray(starts, np.int64)
        self.overlap, self.pad_last = overlap, pad_last
        self.hop = max(1.0, segment * (1.0 - overlap))
        self.n_samples = 0

    def _start(self, k: int) -> int | None:
        """Start of window k while the length is unknown (None: no such window)."""
        if self.given is not None:
            return int(self.given[k]) if k < len(self.given) else None
        return int(round(k * self.hop))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        buf, buf_at = np.zeros(0, np.float32), 0  # buf holds samples [buf_at, buf_at + len(buf))
        k, pending = 0, []
        for block in self.blocks:
            buf = np.concatenate([buf, np.asarray(block, np.float32)])
            self.n_samples += len(block)
            while (s := self._start(k)) is not None and s + self.segment <= self.n_samples:
                pending.append((s, self._cut(buf, buf_at, s)))
                k += 1
                if len(pending) == self.batch:
                    yield _stack(pending)
                    pending = []
            keep_from = max(buf_at, min(self._start(k) if self._start(k) is not None else self.n_samples,
                                        self.n_samples))
            buf, buf_at = buf[keep_from - buf_at:], keep_from
        for s in self._final_starts()[k:]:
            pending.append((int(s), self._cut(buf, buf_at, int(s))))
            if len(pending) == self.batch:
                yield _stack(pending)
                pending = []
        if pending:
            yield _stack(pending)

    def _final_starts(self) -> np.ndarray:
        if self.given is not None:
            return self.given
        return np.asarray(segment_starts(self.n_samples, self.segment, self.overlap, self.pad_last), np.int64)

    def _cut(self, buf: np.ndarray, buf_at: int, s: int) -> np.ndarray:
        """Samples [s, s + segment) from ``buf``, zero where they are not in it."""
        w = np.zeros(self.segment, np.float32)
        lo, hi = max(s, buf_at), min(s + self.segment, buf_at + len(buf))
        if hi > lo:
            w[lo - s:hi - s] = buf[lo - buf_at:hi - buf_at]
        return w


def _stack(pending: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([s for s, _ in pending], np.int64), np.stack([w for _, w in pending])
