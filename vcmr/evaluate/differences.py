"""Differences between evaluated models with paired bootstrap intervals over songs.

``vcmr evaluate`` writes each model's song-level scores next to its ``global_metrics.json``
(``song_scores.npz``: ``song_ids``, ``tags``, ``labels`` (songs, tags), ``overlaps`` and
``scores`` (overlaps, songs, tags); plain arrays, read with ``allow_pickle=False``).
:func:`pairwise_differences` compares every pair of models on the same resamples of the songs
(:mod:`vcmr.metrics.bootstrap`), overall and per tag category (or per tag, ``per_tag=True``)::

    from vcmr.evaluate.differences import pairwise_differences
    rows = pairwise_differences({"audio": "results/magnatagatune/audio",
                                 "video": "results/magnatagatune/video"})
    # [{"model": "video", "baseline": "audio", "metric": "roc_auc", "category": "all",
    #   "difference": ..., "low": ..., "high": ..., "verdict": "within noise", ...}, ...]

For every pair the earlier model (in the order given) is the baseline: ``difference`` is
model − baseline.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from vcmr.errors import VcmrError
from vcmr.metrics.bootstrap import (METRICS, difference_summary, group_columns, resample_counts,
                                   tag_metric)

SONG_SCORES = "song_scores.npz"
_KEYS = ("song_ids", "tags", "labels", "overlaps", "scores")


def save_song_scores(path: str | Path, song_scores: dict[str, Any]) -> None:
    """Write ``{"song_ids", "tags", "labels", "scores": {overlap: (songs, tags)}}`` as .npz."""
    overlaps = list(song_scores["scores"])
    np.savez(path, song_ids=np.asarray(song_scores["song_ids"], dtype=str),
             tags=np.asarray(song_scores["tags"], dtype=str),
             labels=np.asarray(song_scores["labels"] > 0.5, dtype=np.uint8),
             overlaps=np.asarray(overlaps, dtype=str),
             scores=np.stack([np.asarray(song_scores["scores"][ov]) for ov in overlaps]))


def load_song_scores(path: str | Path) -> dict[str, Any]:
    """What :func:`save_song_scores` wrote; a damaged or incomplete file is a clear error."""
    path = Path(path)
    if path.is_dir():
        path = path / SONG_SCORES
    if not path.is_file():
        raise VcmrError(f"{path} not found: `vcmr evaluate` writes it next to global_metrics.json; "
                        f"re-run the evaluation of that model")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in _KEYS}
    except Exception as e:  # not a .npz, a missing key, an object array
        raise VcmrError(f"{path} cannot be read as song scores ({type(e).__name__}: {e}); "
                        f"re-run `vcmr evaluate` for that model") from None
    n, t = len(data["song_ids"]), len(data["tags"])
    if data["labels"].shape != (n, t) or data["scores"].shape != (len(data["overlaps"]), n, t):
        raise VcmrError(f"{path}: labels {data['labels'].shape} and scores {data['scores'].shape} do "
                        f"not fit {n} songs x {t} tags; re-run `vcmr evaluate` for that model")
    return {"song_ids": [str(s) for s in data["song_ids"]], "tags": [str(t) for t in data["tags"]],
            "labels": data["labels"],
            "scores": {str(ov): data["scores"][i] for i, ov in enumerate(data["overlaps"])}}


def _source(source: Any) -> tuple[dict[str, Any], Optional[dict]]:
    """``(song scores, tag categories)`` of a results folder (or its .npz), an
    ``evaluate_checkpoints`` result (its ``files["song_scores"]``) or a song-score dict."""
    if isinstance(source, (str, Path)):
        folder = Path(source) if Path(source).is_dir() else Path(source).parent
        metrics = folder / "global_metrics.json"
        cats = json.loads(metrics.read_text()).get("categories") if metrics.is_file() else None
        return load_song_scores(source), cats
    if "song_scores" in source:
        return source["song_scores"], source.get("categories")
    if "song_scores" in source.get("files", {}):
        return load_song_scores(source["files"]["song_scores"]), source.get("categories")
    if all(k in source for k in ("song_ids", "tags", "labels", "scores")):
        return source, source.get("categories")
    raise VcmrError("a model to compare is a results folder, an evaluate_checkpoints result or a dict "
                    "with song_ids, tags, labels and scores {overlap: (songs, tags)}; got a dict with "
                    f"keys {', '.join(map(str, list(source)[:8]))}")


def _aligned(name: str, ref_name: str, ref: dict, other: dict, overlap: str) -> np.ndarray:
    """``other``'s scores at ``overlap`` in the song order of ``ref``; refuses other songs/tags."""
    if list(other["tags"]) != list(ref["tags"]):
        raise VcmrError(f"{name!r} and {ref_name!r} were evaluated on different tags; compare models "
                        f"evaluated on the same dataset, split and subset")
    if overlap not in other["scores"]:
        raise VcmrError(f"{name!r} has no scores at overlap {overlap} (it has "
                        f"{', '.join(other['scores'])}); pick an overlap both were evaluated at")
    ids, ref_ids = list(other["song_ids"]), list(ref["song_ids"])
    if ids != ref_ids:
        if len(set(ids)) != len(ids) or set(ids) != set(ref_ids):
            only = sorted(set(ref_ids) ^ set(ids))
            raise VcmrError(f"{name!r} and {ref_name!r} were scored on different songs ({len(ids)} vs "
                            f"{len(ref_ids)}; e.g. {', '.join(only[:3]) or 'repeated ids'} in one only): "
                            f"a paired comparison needs the same songs (same subset, no unreadable clip)")
        order = {s: i for i, s in enumerate(ids)}
        rows = [order[s] for s in ref_ids]
        other = {**other, "labels": np.asarray(other["labels"])[rows],
                 "scores": {overlap: np.asarray(other["scores"][overlap])[rows]}}
    if not np.array_equal(np.asarray(other["labels"]) > 0.5, np.asarray(ref["labels"]) > 0.5):
        raise VcmrError(f"{name!r} and {ref_name!r} have different labels for the same songs; "
                        f"compare models evaluated on the same dataset")
    return np.asarray(other["scores"][overlap], dtype=np.float64)


def verdict(low: Optional[float], high: Optional[float]) -> str:
    """``"model better"`` / ``"baseline better"`` when the interval excludes 0, else noise."""
    if low is None or high is None:
        return "undefined"
    return "model better" if low > 0 else "baseline better" if high < 0 else "within noise"


def _named(models: Mapping[str, Any] | Sequence[str | Path]) -> dict[str, Any]:
    if isinstance(models, Mapping):
        return dict(models)
    out = {}
    for p in models:
        metrics = Path(p) / "global_metrics.json"
        name = (json.loads(metrics.read_text()).get("model_name") if metrics.is_file() else None) or Path(p).name
        out[name if name not in out else str(p)] = p
    return out


def pairwise_differences(models: Mapping[str, Any] | Sequence[str | Path], overlap: Any = None,
                         metrics: Sequence[str] = METRICS, n_boot: int = 1000, seed: int = 0,
                         categories: Optional[dict[str, list[str]]] = None,
                         per_tag: bool = False) -> list[dict[str, Any]]:
    """Every pair of models: macro metric difference (later − earlier model) over all tags and
    per category, with a paired bootstrap 95 % interval over songs (the same ``n_boot``
    resamples from ``seed`` for every model). ``per_tag``: one row per tag instead (key
    ``tag`` in place of ``category``), the same test on that tag's metric alone.

    ``models``: ``{name: results folder | evaluate_checkpoints result | song-score dict}`` or a
    list of results folders (named by their ``global_metrics.json``). ``overlap``: default the
    first model's first overlap. ``categories``: default those stored with the first model.
    Rows: ``{"model", "baseline", "metric", "category", "overlap", "model_value",
    "baseline_value", "difference", "low", "high", "n_valid", "n_boot", "n_tags", "n_songs",
    "verdict"}`` with verdict "model better", "baseline better", "within noise" (the interval
    contains 0) or "undefined" (no tag with a positive and a negative song).
    """
    by_category, by_tag = category_and_tag_differences(models, overlap, metrics, n_boot, seed, categories,
                                                       tags=per_tag)
    return by_tag if per_tag else by_category


def category_and_tag_differences(models: Mapping[str, Any] | Sequence[str | Path], overlap: Any = None,
                                 metrics: Sequence[str] = METRICS, n_boot: int = 1000, seed: int = 0,
                                 categories: Optional[dict[str, list[str]]] = None,
                                 tags: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of :func:`pairwise_differences` per category and (``tags``) per tag, from one
    bootstrap of each model (``([...], [])`` without ``tags``)."""
    named = _named(models)
    if len(named) < 2:
        raise VcmrError(f"a comparison needs at least 2 models, got {len(named)}")
    loaded = {name: _source(src) for name, src in named.items()}
    ref_name, (ref, ref_cats) = next(iter(loaded.items()))
    overlap = str(overlap) if overlap is not None else next(iter(ref["scores"]))
    scores = {name: _aligned(name, ref_name, ref, s, overlap) for name, (s, _) in loaded.items()}
    labels = np.asarray(ref["labels"])
    levels = {"category": group_columns(categories if categories is not None else ref_cats, ref["tags"],
                                        labels.shape[1]),
              "tag": {str(t): [j] for j, t in enumerate(ref["tags"])} if tags else {}}
    counts, ones = resample_counts(labels.shape[0], n_boot, seed), np.ones((1, labels.shape[0]))
    rows: dict[str, list[dict[str, Any]]] = {level: [] for level in levels}
    for metric in metrics:
        boot = {n: tag_metric(labels, s, counts, metric) for n, s in scores.items()}
        observed = {n: tag_metric(labels, s, ones, metric)[0] for n, s in scores.items()}
        for base, model in itertools.combinations(scores, 2):
            for level, groups in levels.items():
                for group, cols in groups.items():
                    s = difference_summary(boot[model], boot[base], observed[model], observed[base], cols)
                    rows[level].append({
                        "model": model, "baseline": base, "metric": metric, level: group,
                        "overlap": overlap, "model_value": s["a"], "baseline_value": s["b"],
                        "difference": s["difference"], "low": s["low"], "high": s["high"],
                        "n_valid": s["n_valid"], "n_boot": n_boot, "n_tags": s["n_tags"],
                        "n_songs": int(labels.shape[0]), "verdict": verdict(s["low"], s["high"])})
    return rows["category"], rows["tag"]
