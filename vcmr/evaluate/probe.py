"""Fast probe: frozen embeddings extracted once, then a linear or small MLP head fitted on them.

    vcmr probe --dataset magnatagatune --dataset_dir data/mtat --pretrained_ckpt_path stage1.ckpt

Every song of the train, valid and test subsets is cut into ``audio_length`` segments (no
overlap), each segment is embedded once by the frozen encoder, and the embeddings are cached
on disk (``<cache_dir or results_dir/dataset/name>/probe_cache/*.npz``, keyed by checkpoint file,
size and modification time), so probing a checkpoint again costs only the head fit. The head
(``probe_head``: ``linear`` or ``mlp`` = the stage-3 head) is trained on segment embeddings
with their song's tags in batches of at least 256 (BCE, AdamW with the config's learning
rate and weight decay), early
stopping on the validation loss (``patience``) and keeping the epoch with the best
song-level validation PR-AUC, like ``vcmr train tagging``. Test metrics are song-level: segment
probabilities averaged per song, the same as ``vcmr evaluate`` at overlap 0.

The end-to-end head sees one random crop per song per epoch; the probe sees every segment of
every song each epoch without decoding audio, which is why it is many times faster.

The probe always keeps the encoder's BatchNorm statistics as the checkpoint stores them (eval
mode, ``encoder_batchnorm: frozen``): embeddings computed once cannot follow statistics that
change while the head trains. ``vcmr train tagging`` defaults to ``encoder_batchnorm: adapt`` (the
authors' stage 3), so probe and fine-tuning numbers of the same checkpoint can differ for that
reason too; ``vcmr train tagging --encoder_batchnorm frozen`` is the like-for-like comparison. The
result records ``"encoder_batchnorm": "frozen"``.

Python::

    from vcmr.evaluate.probe import probe
    out = probe(cfg)   # {"test": metrics, "valid": metrics, "timing": {...}, "files": {...}}
"""
from __future__ import annotations

import copy
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vcmr.config import TaggingConfig
from vcmr.data.tag_categories import categories_for
from vcmr.data.tagging import TaggingSplit, load_split_from_config
from vcmr.devices import resolve_device
from vcmr.evaluate.tagging import default_model_name, run_segments, write_results
from vcmr.io.checkpoint import resolve_encoder
from vcmr.metrics.tagging import tagging_metrics
from vcmr.models.heads import tagging_head

log = logging.getLogger(__name__)
# Embeddings are cheap to move: large batches make an epoch a handful of optimiser steps.
PROBE_BATCH = 256


def _encoder_key(cfg: TaggingConfig) -> str:
    p = cfg.pretrained_ckpt_path
    if p is None:
        ident = f"random-seed{cfg.seed}-{cfg.n_blocks}-{cfg.n_channels}-{cfg.output_size}"
    else:
        st = Path(p).stat()
        ident = f"{Path(p).resolve()}-{st.st_size}-{st.st_mtime_ns}"
    return hashlib.sha1(ident.encode()).hexdigest()[:12]


def extract_embeddings(encoder: nn.Module, split: TaggingSplit, cfg: TaggingConfig, cache: Path,
                       device: torch.device, progress: bool = False) -> dict[str, np.ndarray]:
    """``{"emb" (segments, D), "song" (segments,) song row, "labels" (songs, T), "song_ids"
    (songs,)}``, cached."""
    name = f"{_encoder_key(cfg)}_{split.dataset}_{cfg.split}_{cfg.subset_category}_{split.subset}.npz"
    path = cache / name
    if path.is_file():
        data = dict(np.load(path))
        if (len(data["labels"]) and "song_ids" in data
                and data.get("n_items", np.array(-1)).item() == len(split.items)):
            return data
    encoder = encoder.to(device).eval()
    outs = run_segments(split, encoder, cfg.sample_rate, cfg.audio_length, [0.0], cfg.batch_size,
                        cfg.workers, cfg.cache_dir, device, progress)
    labels = split.labels()
    data = {"emb": np.concatenate([o for _, o, _ in outs]).astype(np.float32),
            "song": np.concatenate([np.full(len(o), row) for row, (_, o, _) in enumerate(outs)]),
            "labels": labels[[idx for idx, _, _ in outs]], "n_items": np.array(len(split.items)),
            "song_ids": np.array([str(split.items[idx].key) for idx, _, _ in outs], dtype=str)}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)
    return data


def build_probe_head(kind: str, in_dim: int, n_tags: int, cfg: TaggingConfig) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_dim, n_tags)
    return tagging_head(in_dim, n_tags, cfg.head_hidden, cfg.head_dropout)


@torch.no_grad()
def song_probs(head: nn.Module, data: dict[str, np.ndarray]) -> np.ndarray:
    """Average of segment probabilities per song (rows of ``data["labels"]``)."""
    head.eval()
    p = torch.sigmoid(head(torch.from_numpy(data["emb"]))).numpy().astype(np.float64)
    n = len(data["labels"])
    sums = np.zeros((n, p.shape[1]))
    np.add.at(sums, data["song"], p)
    counts = np.bincount(data["song"], minlength=n)[:, None]
    return sums / np.maximum(counts, 1)


def fit_head(train: dict, valid: dict, tags: list[str], cfg: TaggingConfig) -> tuple[nn.Module, dict]:
    """Train the probe head; returns the head of the best validation PR-AUC (``probe_keep:
    best``) or the head after the last epoch (``last``: no selection on the validation
    split, which for small splits adds noise of its own), and a history."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, several only contend
    try:
        return _fit_head(train, valid, tags, cfg)
    finally:
        torch.set_num_threads(threads)


def _fit_head(train: dict, valid: dict, tags: list[str], cfg: TaggingConfig) -> tuple[nn.Module, dict]:
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    x, y = torch.from_numpy(train["emb"]), torch.from_numpy(train["labels"][train["song"]])
    xv, yv = torch.from_numpy(valid["emb"]), torch.from_numpy(valid["labels"][valid["song"]])
    head = build_probe_head(cfg.probe_head, x.shape[1], len(tags), cfg)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=cfg.lr_patience)
    loss_fn = nn.BCEWithLogitsLoss()
    best, best_pr, best_loss, bad, history = copy.deepcopy(head), -1.0, float("inf"), 0, []
    for epoch in range(cfg.probe_epochs):
        head.train()
        for idx in torch.randperm(len(x), generator=g).split(max(cfg.batch_size, PROBE_BATCH)):
            opt.zero_grad()
            loss_fn(head(x[idx]), y[idx]).backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            vloss = float(loss_fn(head(xv), yv))
        sched.step(vloss)
        pr = None
        if cfg.probe_keep == "best":  # "last": no selection on the validation split
            pr = tagging_metrics(valid["labels"], song_probs(head, valid), tags)["pr_auc"] or 0.0
            if pr > best_pr:
                best, best_pr = copy.deepcopy(head), pr
        history.append({"epoch": epoch, "valid_loss": vloss, "valid_pr_auc": pr})
        if vloss < best_loss - 1e-6:
            best_loss, bad = vloss, 0
        else:
            bad += 1
            if bad > cfg.patience:
                break
    if cfg.probe_keep == "last":
        best, best_pr = head, None
    return best.eval(), {"epochs": len(history), "best_valid_pr_auc": best_pr, "history": history}


def probe(cfg: TaggingConfig, progress: bool = False) -> dict[str, Any]:
    """Embed train/valid/test once (cached), fit the probe head, report song-level metrics.

    Writes ``<results_dir>/<dataset>/<model_name>/probe_<head>/global_metrics.json`` and
    ``per_tag_metrics.csv`` (test subset). Returns ``{"model_name", "valid", "test", "timing":
    {"extract_s", "fit_s"}, "epochs", "files"}``.
    """
    encoder, cfg = resolve_encoder(cfg)
    torch.manual_seed(cfg.seed)
    name = cfg.model_name or (default_model_name(cfg.pretrained_ckpt_path) if cfg.pretrained_ckpt_path else "random")
    out_dir = Path(cfg.results_dir) / cfg.dataset / name
    cache = Path(cfg.cache_dir) / "probe_cache" if cfg.cache_dir else out_dir / "probe_cache"
    device = resolve_device(cfg.accelerator, "accelerator")
    t0 = time.perf_counter()
    splits = {s: load_split_from_config(cfg, s) for s in ("train", "valid", "test")}
    data = {s: extract_embeddings(encoder, sp, cfg, cache, device, progress) for s, sp in splits.items()}
    t1 = time.perf_counter()
    tags = splits["train"].tags
    head, info = fit_head(data["train"], data["valid"], tags, cfg)
    t2 = time.perf_counter()
    cats = categories_for(tags, cfg.dataset, cfg.tag_categories)
    test_probs = song_probs(head, data["test"])
    result = {"model_name": name, "dataset": cfg.dataset, "split": cfg.split, "subset": "test",
              "aggregation": "average", "probe_head": cfg.probe_head, "encoder_batchnorm": "frozen",
              "pretrained_ckpt_path": cfg.pretrained_ckpt_path, "n_songs": len(data["test"]["labels"]),
              "n_missing": len(splits["test"].missing), "categories": cats,
              "timing": {"extract_s": t1 - t0, "fit_s": t2 - t1}, "epochs": info["epochs"],
              "best_valid_pr_auc": info["best_valid_pr_auc"],
              "overlaps": {"0.0": tagging_metrics(data["test"]["labels"], test_probs, tags, cats)},
              "song_scores": {"song_ids": [str(k) for k in data["test"]["song_ids"]], "tags": list(tags),
                              "labels": data["test"]["labels"], "scores": {"0.0": test_probs}}}
    result["files"] = write_results(out_dir / f"probe_{cfg.probe_head}", result)
    del result["song_scores"]  # on disk (files["song_scores"]): the result stays JSON-ready
    result["test"] = result["overlaps"]["0.0"]
    result["valid"] = tagging_metrics(data["valid"]["labels"], song_probs(head, data["valid"]), tags, cats)
    return result
