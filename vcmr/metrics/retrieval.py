"""Audio <-> video retrieval metrics in the joint space: Recall@K and median rank.

Item i of the audio set matches item i of the video set. Ranks start at 1. The chance level
of Recall@K over N candidates is K / N and the chance median rank is (N + 1) / 2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def ranks_of_matches(query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of candidate i for query i under cosine similarity: 1 + the number of
    candidates strictly more similar (a candidate exactly as similar does not push it down)."""
    sim = F.normalize(query.float(), dim=1) @ F.normalize(candidates.float(), dim=1).t()
    correct = sim.diagonal().unsqueeze(1)
    return (sim > correct).sum(dim=1) + 1


def retrieval_metrics(audio: torch.Tensor, video: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Recall@K and median rank in both directions, with the chance level of each."""
    n = audio.shape[0]
    out: dict[str, float] = {"n": float(n)}
    for name, q, c in (("a2v", audio, video), ("v2a", video, audio)):
        r = ranks_of_matches(q, c).float()
        for k in ks:
            out[f"{name}_R@{k}"] = (r <= k).float().mean().item()
        out[f"{name}_median_rank"] = r.median().item()
    for k in ks:
        out[f"chance_R@{k}"] = min(1.0, k / n)
    out["chance_median_rank"] = (n + 1) / 2
    return out
