"""Segmenting, aggregation and metrics of stage 4 on hand-made and random data."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vcmr.evaluate.tagging import (MTAT_CATEGORIES, aggregate, categories_for, segment_song,
                                   segment_starts, tagging_metrics)
from vcmr.errors import VcmrError


def test_segment_starts_hand_made():
    assert segment_starts(10, 4, 0.0) == [0, 4]  # tail of 2 samples dropped
    assert segment_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert segment_starts(12, 4, 0.75) == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert segment_starts(3, 4, 0.0) == [0]  # shorter than one window: one padded window
    assert segment_starts(4, 4, 0.5) == [0]
    # odd window (as the paper's 98415): the 0.5 grid still contains the whole 0.0 grid
    n, L = 465600, 98415
    assert set(segment_starts(n, L, 0.0)) <= set(segment_starts(n, L, 0.5))
    assert segment_starts(n, L, 0.0) == [0, 98415, 196830, 295245] and len(segment_starts(n, L, 0.5)) == 8
    with pytest.raises(VcmrError, match="overlap"):
        segment_starts(10, 4, 1.0)


def test_segment_song_shares_segments_between_grids():
    x = np.arange(10, dtype=np.float32)
    segs, grid = segment_song(x, 4, [0.0, 0.5])
    assert segs.shape == (4, 4)  # starts 0, 2, 4, 6: the 0.0 grid (0, 4) is inside the 0.5 grid
    np.testing.assert_array_equal(segs[grid[0.0]], [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(segs[grid[0.5]][:, 0], [0, 2, 4, 6])
    short, g = segment_song(np.ones(3, dtype=np.float32), 4, [0.0])
    np.testing.assert_array_equal(short, [[1, 1, 1, 0]])


def test_aggregation_hand_made():
    p = np.array([[0.9, 0.2, 0.6], [0.7, 0.4, 0.4], [0.2, 0.0, 0.8]])
    np.testing.assert_allclose(aggregate(p, "average"), [0.6, 0.2, 0.6])
    np.testing.assert_allclose(aggregate(p, "max"), [0.9, 0.4, 0.8])
    np.testing.assert_allclose(aggregate(p, "majority"), [2 / 3, 0.0, 2 / 3])
    with pytest.raises(VcmrError, match="aggregation"):
        aggregate(p, "median")


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


def test_categories(tmp_path, shared_data):
    from vcmr.data.magnatagatune import MTAT_TOP50
    import yaml
    from pathlib import Path
    cats = categories_for(MTAT_TOP50, "magnatagatune")
    grouped = [t for ts in cats.values() for t in ts]
    assert len(grouped) == len(set(grouped)) == 47  # each grouped tag once
    assert set(MTAT_TOP50) - set(grouped) == {"woman", "male vocal", "no voice"}  # as the authors
    assert {g: len(ts) for g, ts in cats.items()} == {"genre": 12, "mood": 7, "instrument": 11,
                                                       "vocals": 12, "other": 5}
    repo_file = Path(__file__).resolve().parents[2] / "config" / "mtat_tag_categories.yaml"
    assert yaml.safe_load(repo_file.read_text()) == MTAT_CATEGORIES
    reference = yaml.safe_load((shared_data / "vcmr" / "mtat_tag_categories.yaml").read_text())
    assert reference == MTAT_CATEGORIES  # the authors' file, group for group and tag for tag
    jam = categories_for(["genre---rock", "mood/theme---calm", "genre---pop"], "mtg-jamendo")
    assert jam == {"genre": ["genre---rock", "genre---pop"], "mood/theme": ["mood/theme---calm"]}
    f = tmp_path / "c.yaml"
    f.write_text("g: [a, zz]\n")
    assert categories_for(["a", "b"], "x", str(f)) == {"g": ["a"]}
