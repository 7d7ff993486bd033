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
    cfg = load_config("evaluate", overrides={"dataset_dir": "data/mtat"})
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
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from vcmr.data.tag_categories import categories_for
from vcmr.data.tagging import SongDataset, TaggingSplit, collate_songs, load_split_from_config
from vcmr.devices import resolve_device
from vcmr.errors import CheckpointError, VcmrError
from vcmr.evaluate.compare import write_comparison
from vcmr.evaluate.differences import SONG_SCORES, category_and_tag_differences, save_song_scores
from vcmr.inference import EmbeddingModel
from vcmr.io.load import load_model
from vcmr.metrics.songs import AGGREGATIONS, aggregate, segment_song, sigmoid
from vcmr.metrics.tagging import tagging_metrics

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- models
def load_tagging_model(path: str | Path) -> EmbeddingModel:
    """A stage-3 model (on CPU) from any file ``load_model`` reads; another stage is refused."""
    model = load_model(path, device="cpu")
    if model.stage != "tagging":
        raise CheckpointError(
            f"{path} is a {model.stage!r} model without a tagging head; fine-tune it first "
            f"(vcmr train tagging --pretrained_ckpt_path {path}) and evaluate the stage-3 checkpoint")
    return model


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

    for batch in tqdm(loader, desc="songs", unit="batch", disable=not progress):
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


# ---------------------------------------------------------------------------- results on disk
def write_results(out_dir: Path, result: dict[str, Any]) -> dict[str, str]:
    """``global_metrics.json`` (everything but the per-tag rows and the song scores),
    ``per_tag_metrics.csv`` and ``song_scores.npz`` (``vcmr.evaluate.differences``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    slim = {k: v for k, v in result.items() if k not in ("overlaps", "song_scores")}
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
    files = {"global_metrics": str(out_dir / "global_metrics.json"), "per_tag": str(out_dir / "per_tag_metrics.csv")}
    if result.get("song_scores") is not None:
        save_song_scores(out_dir / SONG_SCORES, result["song_scores"])
        files["song_scores"] = str(out_dir / SONG_SCORES)
    return files


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
    ``EmbeddingModel.net`` of a stage-3 model) on a loaded split, for each overlap, and under
    ``"song_scores"`` the song ids, labels and song scores per overlap they rest on."""
    if list(tags) != list(split.tags):
        raise VcmrError(f"the model was trained on {len(tags)} tags that differ from the dataset's "
                        f"{len(split.tags)} tags ({cfg.dataset}, {cfg.split}); evaluate it on the "
                        f"dataset and split it was fine-tuned on")
    if cfg.aggregation not in AGGREGATIONS:
        raise VcmrError(f"unknown aggregation {cfg.aggregation!r}: choose one of {', '.join(AGGREGATIONS)}")
    device = device or resolve_device(cfg.accelerator, "accelerator")
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
            "overlaps": {str(ov): tagging_metrics(labels, scores[ov], tags, cats) for ov in cfg.overlap_ratios},
            "song_scores": {"song_ids": [split.items[i].key for i in indices], "tags": list(tags),
                            "labels": labels, "scores": {str(ov): scores[ov] for ov in cfg.overlap_ratios}}}


def evaluate_checkpoints(cfg, ckpts: Sequence[str], names: Optional[Sequence[str]] = None,
                         progress: bool = False) -> dict[str, dict[str, Any]]:
    """Evaluate stage-3 checkpoints on ``cfg.subset`` of ``cfg.dataset`` (an EvaluateConfig).

    Each checkpoint's own architecture (sample_rate, audio_length, …) is used; the encoder
    keys of ``cfg`` are ignored here. Writes ``<results_dir>/<dataset>/<name>/`` per model
    (``global_metrics.json``, ``per_tag_metrics.csv``, ``song_scores.npz``) and, for several
    checkpoints, ``<results_dir>/<dataset>/comparison.md`` (with every pair's difference and its
    paired bootstrap interval, ``cfg.bootstrap_resamples`` resamples from ``cfg.seed``),
    ``comparison.png`` and ``differences.csv``. Returns ``{name: metrics}`` where metrics is
    the ``global_metrics.json`` content plus the per-tag rows, and the key ``"files"`` holds the
    paths written (``files["song_scores"]``: the song-level scores).
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
        del res["song_scores"]  # on disk (files["song_scores"]): the result stays JSON-ready
        results[name] = res
        log.info("%s: %s", name, {ov: (m["roc_auc"], m["pr_auc"]) for ov, m in res["overlaps"].items()})
    if len(results) > 1:
        rows, tag_rows = category_and_tag_differences(results, n_boot=cfg.bootstrap_resamples, seed=cfg.seed)
        results_files = write_comparison(results, base, rows, tag_rows)
        for r in results.values():
            r["files"].update(results_files)
    return results
