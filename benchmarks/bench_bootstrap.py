"""Paired bootstrap over songs (``vcmr.metrics.bootstrap``) against a scikit-learn loop.

    python benchmarks/bench_bootstrap.py --songs 1000 --tags 50 --resamples 1000 --repeats 3

Two models' scores on ``--songs`` songs x ``--tags`` tags (labels positive with probability
0.1, scores = 0.3 x label + uniform noise). Times ``paired_bootstrap`` with ``--resamples``
resamples for ROC-AUC and PR-AUC (median of ``--repeats`` after a warm-up) and, side by side in
the same run, the straightforward way: for each of ``--sk_resamples`` resamples, build the
resampled song list and call scikit-learn's ``roc_auc_score`` / ``average_precision_score`` per
tag and model. Both are reported per resample; the script checks that the two agree.
"""
from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from vcmr.metrics.bootstrap import paired_bootstrap, resample_counts, tag_metric

from bench_synth import timed  # the median-of-repeats timer of the other benchmarks

SKLEARN = {"roc_auc": roc_auc_score, "pr_auc": average_precision_score}


def sklearn_loop(labels, scores, counts, metric):
    out = np.full((len(counts), labels.shape[1]), np.nan)
    for b, c in enumerate(counts):
        rows = np.repeat(np.arange(len(c)), c)
        for j in range(labels.shape[1]):
            y = labels[rows, j]
            if 0 < y.sum() < len(y):
                out[b, j] = SKLEARN[metric](y, scores[rows, j])
    return out




def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=1000)
    ap.add_argument("--tags", type=int, default=50)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--sk_resamples", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    labels = (rng.random((a.songs, a.tags)) < 0.1).astype(np.float32)
    sa, sb = (0.3 * labels + rng.random(labels.shape) for _ in range(2))
    counts = resample_counts(a.songs, a.sk_resamples, seed=1)
    print(f"{a.songs} songs x {a.tags} tags, two models")
    print("| metric | paired_bootstrap, s for all resamples | ms per resample | scikit-learn loop, ms per resample | ratio |")
    print("|---|---:|---:|---:|---:|")
    for metric in ("roc_auc", "pr_auc"):
        ours = timed(lambda: paired_bootstrap(labels, sa, sb, metric, a.resamples, 0), a.repeats)
        sk = timed(lambda: [sklearn_loop(labels, s, counts, metric) for s in (sa, sb)], 1)
        assert np.allclose(tag_metric(labels, sa, counts, metric), sklearn_loop(labels, sa, counts, metric),
                           equal_nan=True)
        per, sk_per = 1000 * ours / a.resamples, 1000 * sk / a.sk_resamples
        print(f"| {metric} | {ours:.2f} ({a.resamples} resamples) | {per:.2f} | {sk_per:.0f} "
              f"({a.sk_resamples} resamples) | {sk_per / per:.0f}x |")


if __name__ == "__main__":
    main()
