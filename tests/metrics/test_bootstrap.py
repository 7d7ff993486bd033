"""Paired bootstrap over songs: the metrics of a resample equal scikit-learn's on the resampled
song list, a clear gain is found, noise is called noise, and pairing narrows the interval."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vcmr.metrics.bootstrap import (difference_summary, paired_bootstrap, resample_counts,
                                    tag_metric)
from vcmr.metrics.tagging import tagging_metrics


def synthetic(n_songs=300, n_tags=8, seed=0, rate=0.2):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n_songs, n_tags)) < rate).astype(np.float32)
    return rng, labels


def test_resample_counts_draw_every_song_list_with_replacement():
    counts = resample_counts(50, 200, seed=3)
    assert counts.shape == (200, 50) and (counts.sum(axis=1) == 50).all()
    assert np.array_equal(counts, resample_counts(50, 200, seed=3))
    assert not np.array_equal(counts, resample_counts(50, 200, seed=4))
    assert abs(counts.mean() - 1) < 0.05 and (counts == 0).mean() == pytest.approx(np.exp(-1), abs=0.03)
    with pytest.raises(ValueError, match="at least one song"):
        resample_counts(0, 10)


@pytest.mark.parametrize("metric,reference", [("roc_auc", roc_auc_score), ("pr_auc", average_precision_score)])
def test_each_resample_equals_sklearn_on_the_resampled_songs(metric, reference):
    rng, labels = synthetic(80, 6, seed=1, rate=0.25)
    labels[:, 5] = 0  # no positive at all
    scores = np.round(rng.random(labels.shape) + 0.5 * labels, 1)  # many ties
    counts = resample_counts(80, 12, seed=2)
    values = tag_metric(labels, scores, counts, metric)
    for b in range(12):
        rows = np.repeat(np.arange(80), counts[b])
        for j in range(6):
            y = labels[rows, j]
            expected = reference(y, scores[rows, j]) if 0 < y.sum() < len(y) else np.nan
            assert values[b, j] == pytest.approx(expected, nan_ok=True, abs=1e-12)
    observed = tag_metric(labels, scores, np.ones((1, 80)), metric)[0]
    assert np.nanmean(observed) == pytest.approx(tagging_metrics(labels, scores, list("abcdef"))[metric])


def test_a_clearly_better_model_has_an_interval_above_zero():
    rng, labels = synthetic()
    noise = rng.standard_normal(labels.shape)
    better = 1.5 * labels + noise
    worse = 0.3 * labels + noise + rng.standard_normal(labels.shape)
    for metric in ("roc_auc", "pr_auc"):
        r = paired_bootstrap(labels, better, worse, metric, n_boot=300, seed=0)["all"]
        assert r["difference"] > 0 and 0 < r["low"] <= r["difference"] <= r["high"]
        assert r["n_valid"] == 300 and r["n_tags"] == 8
        swapped = paired_bootstrap(labels, worse, better, metric, n_boot=300, seed=0)["all"]
        assert swapped["difference"] == pytest.approx(-r["difference"]) and swapped["high"] < 0


def test_identical_models_plus_noise_are_within_noise():
    rng, labels = synthetic(200)
    base = labels + rng.standard_normal(labels.shape)
    a = base + 0.3 * rng.standard_normal(labels.shape)
    b = base + 0.3 * rng.standard_normal(labels.shape)
    r = paired_bootstrap(labels, a, b, "roc_auc", n_boot=500, seed=1)["all"]
    assert r["low"] < 0 < r["high"] and abs(r["difference"]) < r["high"] - r["low"]


def test_pairing_gives_a_narrower_interval_than_unpaired_resamples():
    rng, labels = synthetic(200)
    shared = labels + rng.standard_normal(labels.shape)  # what both models get right and wrong
    a = shared + 0.2 * rng.standard_normal(labels.shape) + 0.1 * labels
    b = shared + 0.2 * rng.standard_normal(labels.shape)
    paired = paired_bootstrap(labels, a, b, "roc_auc", n_boot=400, seed=0)["all"]
    ones = np.ones((1, len(labels)))
    obs_a, obs_b = (tag_metric(labels, s, ones, "roc_auc")[0] for s in (a, b))
    unpaired = difference_summary(tag_metric(labels, a, resample_counts(200, 400, 0), "roc_auc"),
                                  tag_metric(labels, b, resample_counts(200, 400, 1), "roc_auc"),
                                  obs_a, obs_b, range(8))
    assert unpaired["difference"] == pytest.approx(paired["difference"])
    assert paired["high"] - paired["low"] < 0.5 * (unpaired["high"] - unpaired["low"])
    assert paired["low"] > 0 and unpaired["low"] < 0  # only the paired test sees the gain


def test_tags_without_positives_and_categories():
    rng, labels = synthetic(60, 4, rate=0.3)
    labels[:, 1] = 0
    labels[:3, 2], labels[3:, 2] = 1, 0  # 3 positives: absent from some resamples
    a, b = labels + rng.random(labels.shape), rng.random(labels.shape)
    r = paired_bootstrap(labels, a, b, "roc_auc", n_boot=200, seed=0, tags=["w", "x", "y", "z"],
                         tag_groups={"none": ["x"], "rare": ["y"], "both": ["x", "z", "not a tag"]})
    assert r["all"]["n_tags"] == 3 and r["all"]["n_valid"] == 200
    expected = tagging_metrics(labels, a, ["w", "x", "y", "z"])["roc_auc"]
    assert r["all"]["a"] == pytest.approx(expected)
    assert r["per_category"]["none"]["difference"] is None and r["per_category"]["none"]["n_valid"] == 0
    assert r["per_category"]["none"]["low"] is None
    assert 150 < r["per_category"]["rare"]["n_valid"] < 200  # (57/60)^60, about 5 % of resamples, lack all 3
    assert r["per_category"]["both"]["n_tags"] == 1
    by_index = paired_bootstrap(labels, a, b, "roc_auc", n_boot=200, seed=0, tag_groups={"both": [1, 3]})
    assert by_index["per_category"]["both"] == r["per_category"]["both"]


def test_shapes_must_agree():
    _, labels = synthetic(10, 3)
    with pytest.raises(ValueError, match="scores_b has shape"):
        paired_bootstrap(labels, labels, labels[:, :2])
    with pytest.raises(ValueError, match="unknown metric"):
        paired_bootstrap(labels, labels, labels, "accuracy")
