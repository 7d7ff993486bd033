"""Stage 4: song-level tagging evaluation of stage-3 checkpoints.

Each song is cut into ``audio_length`` segments for every overlap ratio (default 0 and 0.5),
the segments go through encoder + head in batches (on the GPU when there is one), segment
probabilities are aggregated per song (average, max or majority vote), and macro ROC-AUC and
PR-AUC (average precision, scikit-learn) are computed over all tags and per tag category.
The segment grids of all overlap ratios are merged first, so a segment shared by two grids is
computed once (the 0.0 grid is part of the 0.5 grid: evaluating both costs the 0.5 grid alone).

Tags whose subset has no positive (or no negative) example have no AUC; they are listed under
``tags_without_positives`` / ``tags_without_negatives`` and left out of the averages, and the
number of tags averaged is stored next to every average.

    vcmr evaluate --dataset magnatagatune --dataset_dir data/mtat --ckpt a.ckpt --ckpt b.ckpt

Python (the demo calls this directly)::

    from vcmr.config import load_config
    from vcmr.evaluate.tagging import evaluate_checkpoints
    cfg = load_config("eval", overrides={"dataset_dir": "data/mtat"})
    results = evaluate_checkpoints(cfg, ["a.ckpt", "b.ckpt"], names=["audio", "video"])
    results["audio"]["overlaps"]["0.0"]["roc_auc"]
"""
from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import yaml
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn
from torch.utils.data import DataLoader

from vcmr.data.tagging import SongDataset, TaggingSplit, collate_songs, load_split_from_config
from vcmr.errors import CheckpointError, VcmrError
from vcmr.inference import EmbeddingModel
from vcmr.io.load import load_model

log = logging.getLogger(__name__)

AGGREGATIONS = ("average", "max", "majority")
# The VCMR authors' grouping of the MagnaTagATune top-50 tags, as in their
# config/mtat_tag_categories.yaml (and ours): 47 tags in 5 groups. Like theirs, it leaves
# woman, male vocal and no voice out of every group; those tags still count in the all-tag
# averages, only not in a per-category one.
MTAT_CATEGORIES = {
    "genre": ["classical", "techno", "electronic", "rock", "indian", "opera", "pop", "classic",
              "new age", "dance", "country", "metal"],
    "mood": ["slow", "fast", "ambient", "loud", "quiet", "soft", "weird"],
    "instrument": ["guitar", "strings", "drums", "piano", "violin", "synth", "harpsichord", "flute",
                   "sitar", "harp", "cello"],
    "vocals": ["vocal", "female", "male", "singing", "vocals", "no vocals", "no vocal", "man",
               "voice", "male voice", "female vocal", "female voice"],
    "other": ["beat", "solo", "beats", "choir", "choral"],
}


# ---------------------------------------------------------------------------- segments
def segment_starts(n_samples: int, length: int, overlap: float) -> list[int]:
    """Start offsets of the full ``length`` windows with the given overlap ratio in [0, 1).

    A song shorter than one window gives one window at 0 (zero-padded later); a tail shorter
    than a window is dropped, as in the reference evaluation.
    """
    if not 0.0 <= overlap < 1.0:
        raise VcmrError(f"overlap ratio {overlap} must be in [0, 1) (e.g. --overlap_ratios 0,0.5)")
    if n_samples <= length:
        return [0]
    # start k = round(k * hop) rather than k * round(hop): grids then nest exactly (every
    # window of overlap 0 is also a window of overlap 0.5 when the hop is fractional).
    hop = max(1.0, length * (1.0 - overlap))
    n = int((n_samples - length) // hop) + 1
    return sorted({int(round(k * hop)) for k in range(n) if round(k * hop) + length <= n_samples})


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


# ---------------------------------------------------------------------------- metrics
def categories_for(tags: Sequence[str], dataset: str, path: Optional[str] = None) -> dict[str, list[str]]:
    """Tag groups for per-category metrics.

    A YAML file (``tag_categories``) wins; else MagnaTagATune uses MTAT_CATEGORIES and
    MTG-Jamendo groups tags by their prefix (``genre---rock`` -> ``genre``).
    """
    if path:
        p = Path(path)
        if not p.is_file():
            raise VcmrError(f"tag_categories file {path!r} not found: give a YAML of group: [tags]")
        groups = yaml.safe_load(p.read_text()) or {}
        if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
            raise VcmrError(f"tag_categories file {path!r} must map each group name to a list of tags")
    elif dataset == "magnatagatune":
        groups = MTAT_CATEGORIES
    else:
        groups = {}
        for t in tags:
            if "---" in t:
                groups.setdefault(t.split("---")[0], []).append(t)
    present = set(tags)
    return {g: [str(t) for t in ts if str(t) in present] for g, ts in groups.items()
            if any(str(t) in present for t in ts)}


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


# ---------------------------------------------------------------------------- models
def load_tagging_model(path: str | Path) -> EmbeddingModel:
    """A stage-3 model (on CPU) from any file ``load_model`` reads; another stage is refused."""
    model = load_model(path, device="cpu")
    if model.stage != "sup":
        raise CheckpointError(
            f"{path} is a {model.stage!r} model without a tagging head; fine-tune it first "
            f"(vcmr finetune --pretrained_ckpt_path {path}) and evaluate the stage-3 checkpoint")
    return model


def pick_device(accelerator: str = "auto") -> torch.device:
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise VcmrError("accelerator gpu was asked for but no CUDA device is available; use --accelerator cpu")
        return torch.device("cuda")
    return torch.device("cpu")


@torch.no_grad()
def run_segments(split: TaggingSplit, fn: Callable[[torch.Tensor], torch.Tensor], sample_rate: int,
                 audio_length: int, overlaps: Sequence[float], batch_size: int = 32, workers: int = 0,
                 cache_dir: Optional[str] = None, device: torch.device = torch.device("cpu"),
                 progress: bool = False) -> list[tuple[int, np.ndarray, dict[float, np.ndarray]]]:
    """``fn`` on every segment of every readable song, batched across songs.

    Returns ``[(item index, outputs (S, D), {overlap: segment indices})]``; unreadable songs
    are skipped with a warning (``SongDataset``) and listed nowhere else.
    """
    loader = DataLoader(SongDataset(split, sample_rate, cache_dir), batch_size=4, num_workers=workers,
                        collate_fn=collate_songs)
    pending, results = [], []

    def flush(force: bool):
        nonlocal pending
        while pending and (force or sum(len(s) for _, s, _ in pending) >= batch_size):
            segs = np.concatenate([s for _, s, _ in pending])
            outs = []
            for i in range(0, len(segs), batch_size):
                x = torch.from_numpy(segs[i:i + batch_size]).to(device)
                outs.append(fn(x).float().cpu().numpy())
            outs = np.concatenate(outs)
            offset = 0
            for idx, s, grid in pending:
                results.append((idx, outs[offset:offset + len(s)], grid))
                offset += len(s)
            pending = []

    iterator = loader
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(loader, desc="songs", unit="batch")
    for batch in iterator:
        for idx, x, _ in batch:
            segs, grid = segment_song(x, audio_length, overlaps)
            pending.append((idx, segs, grid))
        flush(force=False)
    flush(force=True)
    return results


def song_scores(outputs: list[tuple[int, np.ndarray, dict]], overlaps: Sequence[float], method: str,
                transform: Callable[[np.ndarray], np.ndarray]) -> tuple[list[int], dict[float, np.ndarray]]:
    """Aggregate segment outputs per song for each overlap: ``(item indices, {ov: (N, T)})``."""
    indices = [idx for idx, _, _ in outputs]
    scores = {ov: np.stack([aggregate(transform(out[grid[ov]]), method) for _, out, grid in outputs])
              for ov in overlaps}
    return indices, scores


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# ---------------------------------------------------------------------------- results on disk
def write_results(out_dir: Path, result: dict[str, Any]) -> dict[str, str]:
    """``global_metrics.json`` (everything but the per-tag rows) and ``per_tag_metrics.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    slim = {k: v for k, v in result.items() if k != "overlaps"}
    slim["overlaps"] = {}
    for ov, m in result["overlaps"].items():
        slim["overlaps"][ov] = {k: v for k, v in m.items() if k != "per_tag"}
        group_of = {t: g for g, ts in result.get("categories", {}).items() for t in ts}
        rows += [{"overlap": ov, "category": group_of.get(r["tag"], ""), **r} for r in m["per_tag"]]
    (out_dir / "global_metrics.json").write_text(json.dumps(slim, indent=2))
    with open(out_dir / "per_tag_metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["overlap", "tag", "category", "n_positive", "roc_auc", "pr_auc"])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in w.fieldnames})
    return {"global_metrics": str(out_dir / "global_metrics.json"), "per_tag": str(out_dir / "per_tag_metrics.csv")}


def default_model_name(path: str | Path) -> str:
    """``runs/exp/version_3/checkpoints/best.ckpt`` -> ``exp-version_3-best``; else the file stem."""
    p = Path(path)
    if p.parent.name == "checkpoints" and p.parent.parent.name.startswith("version_"):
        return f"{p.parent.parent.parent.name}-{p.parent.parent.name}-{p.stem}"
    return p.stem


def unique_names(ckpts: Sequence[str], names: Optional[Sequence[Optional[str]]]) -> list[str]:
    names = list(names or [])
    out = []
    for i, c in enumerate(ckpts):
        base = names[i] if i < len(names) and names[i] else default_model_name(c)
        base = re.sub(r"[^\w.+-]", "_", base)
        name, k = base, 2
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out.append(name)
    return out


# ---------------------------------------------------------------------------- public entry points
def evaluate_tagger(model: nn.Module, tags: list[str], split: TaggingSplit, cfg, sample_rate: int,
                    audio_length: int, device: Optional[torch.device] = None,
                    progress: bool = False) -> dict[str, Any]:
    """Song-level metrics of a tagging network ``model`` (waveforms -> logits, e.g.
    ``EmbeddingModel.net`` of a stage-3 model) on a loaded split, for each overlap."""
    if list(tags) != list(split.tags):
        raise VcmrError(f"the model was trained on {len(tags)} tags that differ from the dataset's "
                        f"{len(split.tags)} tags ({cfg.dataset}, {cfg.split}); evaluate it on the "
                        f"dataset and split it was fine-tuned on")
    if cfg.aggregation not in AGGREGATIONS:
        raise VcmrError(f"unknown aggregation {cfg.aggregation!r}: choose one of {', '.join(AGGREGATIONS)}")
    device = device or pick_device(cfg.accelerator)
    model = model.to(device).eval()
    outputs = run_segments(split, model, sample_rate, audio_length, cfg.overlap_ratios, cfg.batch_size,
                           cfg.workers, cfg.cache_dir, device, progress)
    if not outputs:
        raise VcmrError(f"no song of the {split.subset} subset could be read; check the audio files")
    indices, scores = song_scores(outputs, cfg.overlap_ratios, cfg.aggregation, sigmoid)
    labels = split.labels()[indices]
    cats = categories_for(tags, cfg.dataset, cfg.tag_categories)
    return {"dataset": cfg.dataset, "split": cfg.split, "subset": split.subset,
            "aggregation": cfg.aggregation, "n_songs": len(indices),
            "n_missing": len(split.missing), "n_unreadable": len(split.items) - len(indices),
            "categories": cats,
            "overlaps": {str(ov): tagging_metrics(labels, scores[ov], tags, cats) for ov in cfg.overlap_ratios}}


def evaluate_checkpoints(cfg, ckpts: Sequence[str], names: Optional[Sequence[str]] = None,
                         progress: bool = False) -> dict[str, dict[str, Any]]:
    """Evaluate stage-3 checkpoints on ``cfg.subset`` of ``cfg.dataset`` (an EvalConfig).

    Each checkpoint's own architecture (sample_rate, audio_length, …) is used; the encoder
    keys of ``cfg`` are ignored here. Writes ``<results_dir>/<dataset>/<name>/`` per model
    (``global_metrics.json``, ``per_tag_metrics.csv``) and, for several checkpoints,
    ``<results_dir>/<dataset>/comparison.md`` + ``comparison.png``. Returns ``{name: metrics}``
    where metrics is the ``global_metrics.json`` content plus the per-tag rows, and the key
    ``"files"`` holds the paths written.
    """
    if not ckpts:
        raise VcmrError("no checkpoint given: pass --ckpt path/to/best.ckpt (repeat for several models)")
    if cfg.model_name and len(ckpts) == 1 and not names:
        names = [cfg.model_name]
    names = unique_names(ckpts, names)
    models = [load_tagging_model(c) for c in ckpts]  # every file checked before any audio is read
    split = load_split_from_config(cfg, cfg.subset)
    results: dict[str, dict[str, Any]] = {}
    base = Path(cfg.results_dir) / cfg.dataset
    for ckpt, name, model in zip(ckpts, names, models):
        tags = model.tags
        if model.layout and len(tags) == len(split.tags):  # a foreign file stores no tag names
            log.info("%s stores no tag names: its outputs are taken in the dataset's tag order", ckpt)
            tags = list(split.tags)
        res = evaluate_tagger(model.net, tags, split, cfg, model.sample_rate, model.segment_samples,
                              progress=progress)
        res.update(model_name=name, checkpoint=str(ckpt),
                   pretrained_ckpt_path=model.config.get("pretrained_ckpt_path"))
        res["files"] = write_results(base / name, res)
        results[name] = res
        log.info("%s: %s", name, {ov: (m["roc_auc"], m["pr_auc"]) for ov, m in res["overlaps"].items()})
    if len(results) > 1:
        from vcmr.evaluate.compare import write_comparison
        results_files = write_comparison(results, base)
        for r in results.values():
            r["files"].update(results_files)
    return results
