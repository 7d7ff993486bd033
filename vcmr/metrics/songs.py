"""Song-level scoring: the segments of a song for each overlap ratio, and segment scores
aggregated into one score per tag.

    segs, grid = segment_song(x, 59049, [0.0, 0.5])   # every segment computed once
    probs = sigmoid(logits_of(segs))                    # (segments, tags)
    song = aggregate(probs[grid[0.5]], "average")       # (tags,)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vcmr.errors import VcmrError

AGGREGATIONS = ("average", "max", "majority")


def segment_starts(n_samples: int, length: int, overlap: float, pad_last: bool = False) -> list[int]:
    """Start offsets of ``length`` windows with the given overlap ratio in [0, 1): the one
    segmentation rule of vcmr (song-level evaluation and ``EmbeddingModel.embed``).

    The hop is ``length * (1 - overlap)``, kept fractional, and window k starts at
    ``round(k * hop)`` (not ``k * round(hop)``): the grids then nest exactly, every window of
    overlap 0 is also a window of overlap 0.5 even when the hop is fractional. A song shorter
    than one window gives one window at 0 (zero-padded by the caller). The tail, audio after the
    last full window, is dropped (``pad_last=False``, the reference evaluation) or covered by one
    more window that the caller zero-pads at the end (``pad_last=True``, embedding).
    """
    if not 0.0 <= overlap < 1.0:
        raise VcmrError(f"overlap ratio {overlap} must be in [0, 1) (e.g. --overlap_ratios 0,0.5)")
    if n_samples <= length:
        return [0]
    hop = max(1.0, length * (1.0 - overlap))
    n_full = int((n_samples - length) // hop) + 1  # windows k with k * hop <= n_samples - length
    if round(n_full * hop) + length <= n_samples:  # a start of n_samples - length + 0.5 rounds
        n_full += 1                                 # down (half to even): that window is full too
    count = n_full + (pad_last and round((n_full - 1) * hop) + length < n_samples)
    return [int(round(k * hop)) for k in range(count)]


def segment_song(x: np.ndarray, length: int, overlaps: Sequence[float]) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """All segments needed by the overlap ratios, each computed once.

    Returns ``(segments (S, length), {overlap: indices into segments})``.
    """
    grids = {ov: segment_starts(len(x), length, ov) for ov in overlaps}
    starts = sorted(set(s for g in grids.values() for s in g))
    pos = {s: i for i, s in enumerate(starts)}
    segs = np.zeros((len(starts), length), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = np.asarray(x[s:s + length], dtype=np.float32)
        segs[i, :len(piece)] = piece
    return segs, {ov: np.array([pos[s] for s in g]) for ov, g in grids.items()}


def aggregate(probs: np.ndarray, method: str = "average") -> np.ndarray:
    """Segment probabilities (S, T) -> one song score per tag (T,).

    ``majority``: the share of segments whose probability is over 0.5 (a vote count scaled to
    [0, 1]); thresholding it at 0.5 gives the majority decision, and as a score it still ranks
    songs for the AUCs.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"expected segment probabilities of shape (segments, tags), got {probs.shape}")
    if method == "average":
        return probs.mean(axis=0)
    if method == "max":
        return probs.max(axis=0)
    if method == "majority":
        return (probs > 0.5).mean(axis=0)
    raise VcmrError(f"unknown aggregation {method!r}: choose one of {', '.join(AGGREGATIONS)}")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
