"""Audio <-> video retrieval with a stage-2 model: joint-space embeddings of a prepared dataset
(:func:`build_index`), Recall@K and median rank between matching segments and videos
(:mod:`vcmr.metrics.retrieval`), and ranking candidates for a query (``vcmr retrieve``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vcmr.audio.io import read_audio
from vcmr.data.audio_visual import kept_ids, list_segments
from vcmr.metrics.retrieval import retrieval_metrics


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


def video_level(index: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per video (in ``index["video_ids"]`` order): its mean segment audio and its video embedding."""
    rows = {}
    for i, (vid, _) in enumerate(index["segments"]):
        rows.setdefault(vid, []).append(i)
    audio = np.stack([index["audio"][rows[vid]].mean(0) for vid in index["video_ids"]])
    return torch.as_tensor(audio), torch.as_tensor(index["video_level"])


def video_retrieval_metrics(index: dict) -> dict[str, float]:
    """Recall@K / median rank between each video's mean segment audio and every video."""
    return retrieval_metrics(*video_level(index))


def rank(query, candidates, top: int) -> list[tuple[int, float]]:
    """Indices and cosine scores of the ``top`` candidates closest to ``query``."""
    q = F.normalize(torch.as_tensor(query, dtype=torch.float32).reshape(1, -1), dim=1)
    c = F.normalize(torch.as_tensor(candidates, dtype=torch.float32), dim=1)
    scores = (c @ q.t()).squeeze(1)
    best = torch.argsort(scores, descending=True)[:top]
    return [(int(i), float(scores[i])) for i in best]
