"""Paired bootstrap over songs for the difference of two models' macro ROC-AUC / PR-AUC.

Both models are scored on the same resamples of the songs (drawn with replacement), so what
the songs share (easy and hard songs, rare tags) cancels out of the difference. A resample is
a vector of counts per song; a song drawn k times weighs k, which gives exactly the metric of
the resampled song list (duplicates included) without building it. Per tag the songs are
sorted by score once and all resamples are handled at once as the columns of a (songs,
resamples) matrix; only the distinct scores of the tag's positive songs are visited. A tag
with no positive or no negative song in a resample has no AUC there and is left out of that
resample's macro average (as :mod:`vcmr.metrics.tagging` does for the full set); a resample
where no tag of a group is defined is not counted for that group.

The interval is the 2.5 and 97.5 percentiles of the resampled differences; a difference whose
interval excludes 0 is larger than what resampling the songs produces.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

METRICS = ("roc_auc", "pr_auc")


def resample_counts(n_songs: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_songs)`` counts: how often each song is drawn in each resample."""
    if n_songs < 1 or n_boot < 1:
        raise ValueError(f"a bootstrap needs at least one song and one resample, got "
                         f"{n_songs} songs and n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_songs, size=(n_boot, n_songs))
    flat = (draws + n_songs * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_songs).reshape(n_boot, n_songs)


def _prefix_at(weights_t: np.ndarray, sorted_rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``(len(positions), resamples)``: summed weight of the first ``p`` rows of ``sorted_rows``
    for each position ``p`` (one pass over the rows; ``weights_t`` is (songs, resamples))."""
    n = len(sorted_rows)
    cuts = np.unique(np.r_[0, positions, n])
    out = np.zeros((len(cuts), weights_t.shape[1]))
    if n:
        segments = np.add.reduceat(weights_t[sorted_rows], cuts[:-1], axis=0)
        out[1:] = np.cumsum(segments, axis=0)
    return out[np.searchsorted(cuts, positions)]


def _one_tag(positive: np.ndarray, score: np.ndarray, weights_t: np.ndarray, metric: str) -> np.ndarray:
    """One tag's metric for every column of ``weights_t`` (songs, resamples); NaN where a
    resample has no positive or no negative. Only the K distinct scores of the positive songs
    matter: per resample, the positives' weight at each and the negatives' weight below it (and
    tied with it: ROC ties count one half, average precision takes a tie as one threshold, as
    scikit-learn does)."""
    pos_rows = np.flatnonzero(positive)
    neg_rows = np.flatnonzero(~positive)
    pos_rows = pos_rows[np.argsort(score[pos_rows], kind="stable")]
    neg_rows = neg_rows[np.argsort(score[neg_rows], kind="stable")]
    pos_scores, neg_scores = score[pos_rows], score[neg_rows]
    if not len(pos_rows) or not len(neg_rows):
        return np.full(weights_t.shape[1], np.nan)
    starts = np.flatnonzero(np.r_[True, pos_scores[1:] != pos_scores[:-1]])
    pos = np.add.reduceat(weights_t[pos_rows], starts, axis=0)  # (K, resamples)
    levels = pos_scores[starts]
    k = len(levels)
    cut = np.r_[np.searchsorted(neg_scores, levels, "left"), np.searchsorted(neg_scores, levels, "right")]
    prefix = _prefix_at(weights_t, neg_rows, np.r_[cut, len(neg_rows)])
    below, upto, n_neg = prefix[:k], prefix[k:2 * k], prefix[-1]
    n_pos = pos.sum(axis=0)
    if metric == "roc_auc":
        value = (pos * (below + upto)).sum(axis=0) / np.maximum(2 * n_pos * n_neg, 1e-300)
    else:  # average precision: the precision at each positive score, weighted by its positives
        tp = np.cumsum(pos[::-1], axis=0)[::-1]
        fp = n_neg - below
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        value = (pos * precision).sum(axis=0) / np.maximum(n_pos, 1e-300)
    return np.where((n_pos > 0) & (n_neg > 0), value, np.nan)


def tag_metric(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, metric: str) -> np.ndarray:
    """``(rows of weights, tags)`` ROC-AUC or PR-AUC of each tag under each song weighting
    (``weights`` (R, songs), e.g. :func:`resample_counts`; ones for the songs as they are)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 2 or weights.shape[1] != labels.shape[0]:
        raise ValueError(f"labels {labels.shape}, scores {scores.shape} and weights {weights.shape} "
                         f"must be (songs, tags), (songs, tags) and (resamples, songs)")
    weights_t = np.ascontiguousarray(np.asarray(weights, dtype=np.float64).T)  # rows: songs
    return np.stack([_one_tag(labels[:, j] > 0.5, scores[:, j], weights_t, metric)
                     for j in range(labels.shape[1])], axis=1)


def macro_mean(values: np.ndarray) -> np.ndarray:
    """Row means over the defined (non-NaN) entries; NaN for a row with none."""
    defined = ~np.isnan(values)
    count = defined.sum(axis=1)
    total = np.where(defined, values, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(len(values), np.nan), where=count > 0)


def difference_summary(boot_a: np.ndarray, boot_b: np.ndarray, observed_a: np.ndarray,
                       observed_b: np.ndarray, columns: Sequence[int]) -> dict[str, Any]:
    """Macro metric of a and b over ``columns`` (observed), their difference a - b, its 95 %
    percentile interval over the resamples and the number of resamples it rests on."""
    cols = list(columns)
    a, b = (macro_mean(o[None, cols])[0] for o in (observed_a, observed_b))
    diffs = macro_mean(boot_a[:, cols]) - macro_mean(boot_b[:, cols])
    diffs = diffs[~np.isnan(diffs)]
    low, high = np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (np.nan, np.nan)

    def num(x):
        return None if np.isnan(x) else float(x)
    return {"a": num(a), "b": num(b), "difference": num(a - b), "low": num(low), "high": num(high),
            "n_valid": int(len(diffs)), "n_tags": int((~np.isnan(observed_a[cols])).sum())}


def group_columns(tag_groups: Optional[dict[str, Sequence]], tags: Optional[Sequence[str]],
                  n_tags: int) -> dict[str, list[int]]:
    """``{"all": every column, group: its columns}``; members are tag names (with ``tags``) or
    column indices; names not among ``tags`` are ignored, as in the tagging metrics."""
    out = {"all": list(range(n_tags))}
    index = {t: j for j, t in enumerate(tags or [])}
    for group, members in (tag_groups or {}).items():
        cols = [index[m] if isinstance(m, str) else int(m) for m in members
                if not isinstance(m, str) or m in index]
        if any(not 0 <= c < n_tags for c in cols):
            raise ValueError(f"tag group {group!r} names a column outside 0..{n_tags - 1}")
        if cols:
            out[group] = cols
    return out


def paired_bootstrap(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray,
                     metric: str = "roc_auc", n_boot: int = 1000, seed: int = 0,
                     tag_groups: Optional[dict[str, Sequence]] = None,
                     tags: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Macro ``metric`` of models a and b on the same songs and their difference a - b, with
    a paired bootstrap over songs (the same ``n_boot`` resamples, drawn from ``seed``, for both).

    ``labels``, ``scores_a``, ``scores_b``: (songs, tags). ``tag_groups``: ``{group: tag names
    (give ``tags``) or column indices}``. Returns ``{"metric", "n_boot", "n_songs", "all":
    summary, "per_category": {group: summary}}``, a summary being ``{"a", "b", "difference",
    "low", "high", "n_valid", "n_tags"}`` (None where undefined, e.g. no tag has a positive).
    """
    labels = np.asarray(labels)
    for name, s in (("scores_a", scores_a), ("scores_b", scores_b)):
        if np.shape(s) != labels.shape:
            raise ValueError(f"{name} has shape {np.shape(s)} but labels have {labels.shape}: "
                             f"both models must score the same songs and tags")
    counts = resample_counts(labels.shape[0], n_boot, seed)
    ones = np.ones((1, labels.shape[0]))
    boot = [tag_metric(labels, s, counts, metric) for s in (scores_a, scores_b)]
    observed = [tag_metric(labels, s, ones, metric)[0] for s in (scores_a, scores_b)]
    groups = group_columns(tag_groups, tags, labels.shape[1])
    summaries = {g: difference_summary(*boot, *observed, cols) for g, cols in groups.items()}
    return {"metric": metric, "n_boot": n_boot, "n_songs": int(labels.shape[0]),
            "all": summaries.pop("all"), "per_category": summaries}
