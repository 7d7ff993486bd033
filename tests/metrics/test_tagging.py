"""Tagging metrics (ROC-AUC / PR-AUC per tag, over all tags and per category) against
scikit-learn on random data, and tags without positives or negatives."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vcmr.metrics.tagging import tagging_metrics


def test_metrics_equal_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 12)) < 0.3).astype(np.float32)
    s = rng.random((200, 12)) + 0.5 * y
    m = tagging_metrics(y, s, [f"t{i}" for i in range(12)])
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s, average="macro"))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, s, average="macro"))
    assert m["per_tag"][3]["roc_auc"] == pytest.approx(roc_auc_score(y[:, 3], s[:, 3]))
    assert m["n_tags_averaged"] == 12 and m["tags_without_positives"] == []


def test_tags_without_positives_are_reported_not_nan():
    rng = np.random.default_rng(1)
    y = (rng.random((50, 4)) < 0.5).astype(np.float32)
    y[:, 1] = 0  # no positive
    y[:, 2] = 1  # no negative
    s = rng.random((50, 4))
    m = tagging_metrics(y, s, ["a", "b", "c", "d"], {"g1": ["a", "b"], "g2": ["c"]})
    assert m["tags_without_positives"] == ["b"] and m["tags_without_negatives"] == ["c"]
    assert m["n_tags_averaged"] == 2
    expected = np.mean([roc_auc_score(y[:, j], s[:, j]) for j in (0, 3)])
    assert m["roc_auc"] == pytest.approx(expected) and not np.isnan(m["roc_auc"])
    assert m["per_category"]["g1"]["roc_auc"] == pytest.approx(roc_auc_score(y[:, 0], s[:, 0]))
    assert m["per_category"]["g2"] == {"roc_auc": None, "pr_auc": None, "n_tags_averaged": 0}
