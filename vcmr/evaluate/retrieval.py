"""Audio <-> video retrieval metrics in the joint space: Recall@K and median rank.

Item i of the audio set matches item i of the video set. Ranks start at 1. The chance level
of Recall@K over N candidates is K / N and the chance median rank is (N + 1) / 2.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vcmr.audio.io import read_audio
from vcmr.data.audio_visual import kept_ids, list_segments


def ranks_of_matches(query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Rank (1 = best) of candidate i for query i under cosine similarity; ties count against."""
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


# ----------------------------------------------------------------------------- dataset index
def _video_windows(features, n_seconds: int, rows: slice | None = None):
    """Non-overlapping windows of ``n_seconds`` rows: (n_windows, n_seconds, D)."""
    f = np.asarray(features if rows is None else features[rows], dtype=np.float32)
    n = max(1, f.shape[0] // n_seconds)
    return f[: n * n_seconds].reshape(n, n_seconds, f.shape[1])


def build_index(model, dataset_dir, ids=None, progress: bool = True) -> dict:
    """Joint-space embeddings of every kept segment of a prepared dataset.

    Returns ``{"segments": [(id, k)], "audio": (N, d), "video": (N, d), "video_ids": [...],
    "video_level": (M, d)}``: a segment's audio embedding is the mean over its audio crops,
    its video embedding the mean over its windows of ``model.video_seconds`` seconds, and a
    video's embedding the mean over all its windows.
    """
    root = Path(dataset_dir)
    ids = kept_ids(root) if ids is None else list(ids)
    segments = list_segments(root, ids)
    n_sec = model.video_seconds
    keys, audio, video, feats_cache = [], [], [], {}
    for seg in tqdm(segments, desc="embedding segments", unit="seg", disable=not progress):
        x, sr = read_audio(seg.audio_path)
        seg_seconds = round(len(x) / sr)
        if seg.video_id not in feats_cache:
            feats_cache[seg.video_id] = np.load(seg.feature_path)
        rows = slice(seg.index * seg_seconds, (seg.index + 1) * seg_seconds)
        keys.append((seg.video_id, seg.index))
        audio.append(model.embed_song(x, sr, space="joint"))
        video.append(model.embed_video_features(_video_windows(feats_cache[seg.video_id], n_sec, rows)).mean(0))
    video_level = [model.embed_video_features(_video_windows(feats_cache[v], n_sec)).mean(0)
                   for v in ids]
    return {"segments": keys, "audio": np.stack(audio), "video": np.stack(video),
            "video_ids": ids, "video_level": np.stack(video_level)}


def segment_retrieval_metrics(index: dict) -> dict[str, float]:
    """Recall@K / median rank between each segment's audio and the video of the same segment."""
    return retrieval_metrics(torch.as_tensor(index["audio"]), torch.as_tensor(index["video"]))


def video_retrieval_metrics(index: dict) -> dict[str, float]:
    """Recall@K / median rank between each video's mean segment audio and every video."""
    rows = {}
    for i, (vid, _) in enumerate(index["segments"]):
        rows.setdefault(vid, []).append(i)
    audio = np.stack([index["audio"][rows[vid]].mean(0) for vid in index["video_ids"]])
    return retrieval_metrics(torch.as_tensor(audio), torch.as_tensor(index["video_level"]))


def rank(query, candidates, top: int) -> list[tuple[int, float]]:
    """Indices and cosine scores of the ``top`` candidates closest to ``query``."""
    q = F.normalize(torch.as_tensor(query, dtype=torch.float32).reshape(1, -1), dim=1)
    c = F.normalize(torch.as_tensor(candidates, dtype=torch.float32), dim=1)
    scores = (c @ q.t()).squeeze(1)
    best = torch.argsort(scores, descending=True)[:top]
    return [(int(i), float(scores[i])) for i in best]
