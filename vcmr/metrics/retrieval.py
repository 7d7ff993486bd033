"""Audio <-> video retrieval metrics in the joint space: Recall@K and median rank.

Item i of the audio set matches item i of the video set. Ranks start at 1. The chance level
of Recall@K over N candidates is K / N and the chance median rank is (N + 1) / 2.
:func:`recall_bootstrap` gives Recall@K intervals over resampled queries (two models ranked on
the same queries are compared on the same resamples).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def ranks_of_matches(query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of candidate i for query i under cosine similarity: 1 + the number of
    candidates strictly more similar (a candidate exactly as similar does not push it down)."""
    sim = F.normalize(query.float(), dim=1) @ F.normalize(candidates.float(), dim=1).t()
    correct = sim.diagonal().unsqueeze(1)
    return (sim > correct).sum(dim=1) + 1


def _both_ways(audio: torch.Tensor, video: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"a2v": ranks_of_matches(audio, video), "v2a": ranks_of_matches(video, audio)}


def match_ranks(audio: torch.Tensor, video: torch.Tensor) -> dict[str, list[int]]:
    """Per query, the rank of its match: ``{"a2v": [...], "v2a": [...]}``."""
    return {name: r.tolist() for name, r in _both_ways(audio, video).items()}


def retrieval_metrics(audio: torch.Tensor, video: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Recall@K and median rank in both directions, with the chance level of each."""
    n = audio.shape[0]
    out: dict[str, float] = {"n": float(n)}
    for name, ranks in _both_ways(audio, video).items():
        r = ranks.float()
        for k in ks:
            out[f"{name}_R@{k}"] = (r <= k).float().mean().item()
        out[f"{name}_median_rank"] = r.median().item()
    for k in ks:
        out[f"chance_R@{k}"] = min(1.0, k / n)
    out["chance_median_rank"] = (n + 1) / 2
    return out


def recall_bootstrap(ranks: np.ndarray, k: int, counts: np.ndarray) -> np.ndarray:
    """Recall@K on each resample of the queries: ``ranks`` is ``(n_queries,)`` or ``(n_runs,
    n_queries)`` (runs, e.g. seeds, on the same queries are averaged), ``counts`` the
    ``(n_boot, n_queries)`` draw counts of :func:`vcmr.metrics.bootstrap.resample_counts`."""
    hits = (np.atleast_2d(np.asarray(ranks)) <= k).astype(np.float64)
    if hits.shape[1] != counts.shape[1]:
        raise ValueError(f"{hits.shape[1]} ranked queries but resamples of {counts.shape[1]}")
    return (counts @ hits.T).mean(axis=1) / counts.shape[1]
