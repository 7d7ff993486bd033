"""The demo's statistics: per encoder mean ± spread over seeds, and for each pair of encoders the
difference with a paired bootstrap 95 % interval over test songs, averaged over seeds.

Every seed's probes score the same test songs, so one set of song resamples serves every
encoder and every seed: in each resample the difference of the two encoders' macro metric is
averaged over the seeds, and the interval is taken over the resamples
(:mod:`vcmr.metrics.bootstrap`). It covers the noise of the test-song sample; the spread over
seeds (training noise) is reported next to it. Retrieval recalls get the same treatment over
the held-out videos (:func:`retrieval_summary`): both stage-2 models rank the same videos, so
the real − control difference is paired.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vcmr.demo.scales import DATASETS, ENCODERS
from vcmr.errors import VcmrError
from vcmr.evaluate.differences import load_song_scores, verdict
from vcmr.metrics.bootstrap import (METRICS, difference_summary, group_columns, macro_mean, resample_counts,
                                   tag_metric)
from vcmr.metrics.retrieval import recall_bootstrap

# (model, baseline): the differences the report states, the claim's first.
PAIRS = (("video_conditioned", "audio_only"), ("video_conditioned", "mismatched_control"),
         ("mismatched_control", "audio_only"), ("audio_only", "random"),
         ("video_conditioned", "random"), ("mismatched_control", "random"))
# The two stage-2 models whose retrieval the report compares (real first).
RETRIEVAL_PAIR = ("video_conditioned", "mismatched_control")


def _scores(per_seed: dict, ds: str) -> tuple[dict[str, list[np.ndarray]], dict[str, Any]]:
    """``{encoder: [scores per seed]}`` on one dataset, and the first file's labels and tags."""
    out, ref = {}, None
    for enc in ENCODERS:
        out[enc] = []
        for s, facts in per_seed.items():
            d = load_song_scores(facts["probes"][ds][enc]["files"]["song_scores"])
            ref = ref or d
            if list(d["song_ids"]) != list(ref["song_ids"]) or list(d["tags"]) != list(ref["tags"]):
                raise VcmrError(f"{ds}: the probe of {enc!r} (seed {s}) scored other songs or tags than "
                                f"the first probe; the demo's seeds must share one test set")
            out[enc].append(np.asarray(d["scores"]["0.0"], dtype=np.float64))
    return out, ref


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _spread(values: list[float]) -> dict[str, Any]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {"mean": None, "sd": None, "values": values}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": values}


def dataset_summary(per_seed: dict, ds: str, n_boot: int = 1000, boot_seed: int = 0) -> dict[str, Any]:
    """Means over seeds per encoder and category, and the :data:`PAIRS` differences."""
    scores, ref = _scores(per_seed, ds)
    labels = np.asarray(ref["labels"])
    first = next(iter(per_seed.values()))["probes"][ds][ENCODERS[0]]
    groups = group_columns(first.get("categories") or {}, ref["tags"], labels.shape[1])
    counts, ones = resample_counts(labels.shape[0], n_boot, boot_seed), np.ones((1, labels.shape[0]))
    means: dict[str, Any] = {enc: {} for enc in ENCODERS}
    rows = []
    for metric in METRICS:
        boot = {e: np.mean([tag_metric(labels, x, counts, metric) for x in xs], axis=0) for e, xs in scores.items()}
        seed_obs = {e: [tag_metric(labels, x, ones, metric)[0] for x in xs] for e, xs in scores.items()}
        observed = {e: np.mean(v, axis=0) for e, v in seed_obs.items()}
        for enc in ENCODERS:
            for group, cols in groups.items():
                vals = [_value(macro_mean(o[None, cols])[0]) for o in seed_obs[enc]]
                means[enc].setdefault(group, {})[metric] = _spread(vals)
        for model, base in PAIRS:
            for group, cols in groups.items():
                s = difference_summary(boot[model], boot[base], observed[model], observed[base], cols)
                rows.append({"dataset": ds, "model": model, "baseline": base, "metric": metric,
                             "category": group, "difference": s["difference"], "low": s["low"],
                             "high": s["high"], "n_valid": s["n_valid"], "n_boot": n_boot,
                             "n_songs": int(labels.shape[0]), "n_seeds": len(per_seed),
                             "verdict": verdict(s["low"], s["high"])})
    return {"means": means, "differences": rows, "n_songs": int(labels.shape[0]),
            "groups": {g: len(c) for g, c in groups.items()}}


def seed_summary(per_seed: dict, n_boot: int = 1000, boot_seed: int = 0) -> dict[str, Any]:
    """Both datasets' summaries and the retrieval recalls (mean ± spread over seeds)."""
    out: dict[str, Any] = {"datasets": {}, "differences": [], "retrieval": {}}
    for ds in DATASETS:
        summary = dataset_summary(per_seed, ds, n_boot, boot_seed)
        out["differences"] += summary.pop("differences")
        out["datasets"][ds] = summary
    out["example"] = next(iter(per_seed.values())).get("example")
    out["retrieval_differences"] = retrieval_summary(per_seed, n_boot, boot_seed)
    for name in RETRIEVAL_PAIR:
        out["retrieval"][name] = {}
        for level in ("videos", "segments"):
            first = next(iter(per_seed.values()))["retrieval"][name][level]
            out["retrieval"][name][level] = {
                k: _spread([f["retrieval"][name][level][k] for f in per_seed.values()]) for k in first}
    return out


def _interval(x: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(x, [2.5, 97.5])
    return float(low), float(high)


def retrieval_summary(per_seed: dict, n_boot: int = 1000, boot_seed: int = 0,
                      ks=(1, 5, 10)) -> list[dict[str, Any]]:
    """Video-level Recall@K of the real stage 2 and the control, each with a bootstrap 95 %
    interval over the held-out videos, and their paired difference (means over seeds)."""
    ranks, ids = {}, None
    for name in RETRIEVAL_PAIR:
        ranks[name] = {}
        for s, facts in per_seed.items():
            ret = facts["retrieval"][name]
            ids = ids or ret["video_ids"]
            if ret["video_ids"] != ids:
                raise VcmrError(f"retrieval of {name!r} (seed {s}) ranked other held-out videos than the "
                                f"first run; the demo's seeds and models must share one held-out split")
            for direction, r in ret["video_ranks"].items():
                ranks[name].setdefault(direction, []).append(r)
    n = len(ids)
    counts, rows = resample_counts(n, n_boot, boot_seed), []
    for direction in ("a2v", "v2a"):
        for k in ks:
            real, ctrl = (np.asarray(ranks[m][direction]) for m in RETRIEVAL_PAIR)
            b_real, b_ctrl = recall_bootstrap(real, k, counts), recall_bootstrap(ctrl, k, counts)
            obs_real, obs_ctrl = float((real <= k).mean()), float((ctrl <= k).mean())
            low, high = _interval(b_real - b_ctrl)
            rows.append({"direction": direction, "k": k, "n_videos": n, "n_seeds": len(per_seed),
                         "chance": min(1.0, k / n),
                         "real": obs_real, "real_interval": _interval(b_real),
                         "control": obs_ctrl, "control_interval": _interval(b_ctrl),
                         "difference": obs_real - obs_ctrl, "low": low, "high": high,
                         "verdict": verdict(low, high)})
    return rows
