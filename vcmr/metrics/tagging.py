"""Tagging metrics: ROC-AUC and PR-AUC (average precision, scikit-learn) per tag, their macro
averages over all tags and per tag category.

A tag whose songs are all negative (or all positive) has no AUC: it is listed under
``tags_without_positives`` / ``tags_without_negatives`` and left out of the averages, and the
number of tags averaged is stored next to every average.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def _macro(values: list[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def tagging_metrics(y_true: np.ndarray, y_score: np.ndarray, tags: Sequence[str],
                    categories: Optional[dict[str, list[str]]] = None) -> dict[str, Any]:
    """Per-tag and macro ROC-AUC / PR-AUC; tags without positives or negatives are reported.

    Returns ``{"roc_auc", "pr_auc", "n_tags_averaged", "n_songs", "tags_without_positives",
    "tags_without_negatives", "per_tag": [{tag, n_positive, roc_auc, pr_auc}], "per_category":
    {group: {roc_auc, pr_auc, n_tags_averaged}}}``; an AUC that is undefined is ``None``.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2 or y_true.shape[1] != len(tags):
        raise ValueError(f"labels {y_true.shape} and scores {y_score.shape} must both be (songs, {len(tags)})")
    per_tag = []
    for j, tag in enumerate(tags):
        yt, n_pos = y_true[:, j] > 0.5, int((y_true[:, j] > 0.5).sum())
        defined = 0 < n_pos < len(yt)
        per_tag.append({"tag": tag, "n_positive": n_pos,
                        "roc_auc": float(roc_auc_score(yt, y_score[:, j])) if defined else None,
                        "pr_auc": float(average_precision_score(yt, y_score[:, j])) if defined else None})
    by_tag = {r["tag"]: r for r in per_tag}
    out = {
        "roc_auc": _macro([r["roc_auc"] for r in per_tag]),
        "pr_auc": _macro([r["pr_auc"] for r in per_tag]),
        "n_tags_averaged": sum(r["roc_auc"] is not None for r in per_tag),
        "n_songs": int(y_true.shape[0]),
        "tags_without_positives": [r["tag"] for r in per_tag if r["n_positive"] == 0],
        "tags_without_negatives": [r["tag"] for r in per_tag if r["n_positive"] == y_true.shape[0] > 0],
        "per_tag": per_tag, "per_category": {},
    }
    for group, members in (categories or {}).items():
        rows = [by_tag[t] for t in members if t in by_tag]
        out["per_category"][group] = {"roc_auc": _macro([r["roc_auc"] for r in rows]),
                                      "pr_auc": _macro([r["pr_auc"] for r in rows]),
                                      "n_tags_averaged": sum(r["roc_auc"] is not None for r in rows)}
    return out
