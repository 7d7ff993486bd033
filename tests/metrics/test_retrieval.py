"""Recall@K and median rank on hand-made embeddings, with their chance levels."""
import pytest
import torch

from vcmr.metrics.retrieval import ranks_of_matches, retrieval_metrics


def test_ranks_hand_made():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = torch.tensor([[2.0, 0.0], [1.0, 0.1], [1.0, 1.0]])  # query 1's match is second-best for it
    assert ranks_of_matches(q, c).tolist() == [1, 2, 1]
    # only strictly more similar candidates push the match down: an exact tie does not
    assert ranks_of_matches(torch.eye(2), torch.ones(2, 2)).tolist() == [1, 1]


def test_perfect_and_reversed_matching():
    n = 12
    a = torch.randn(n, 8, generator=torch.Generator().manual_seed(0))
    m = retrieval_metrics(a, 3.0 * a)  # cosine similarity ignores the scale
    assert m["n"] == n and m["a2v_R@1"] == m["v2a_R@1"] == 1.0
    assert m["a2v_median_rank"] == m["v2a_median_rank"] == 1.0
    assert m["chance_R@1"] == pytest.approx(1 / n) and m["chance_R@10"] == pytest.approx(10 / n)
    assert m["chance_median_rank"] == (n + 1) / 2
    far = retrieval_metrics(a, -a)  # every match is the least similar candidate
    assert far["a2v_R@1"] == far["a2v_R@10"] == 0.0 and far["a2v_median_rank"] == n
    assert retrieval_metrics(a[:3], a[:3])["chance_R@5"] == 1.0  # never above 1


def test_recall_bootstrap_weights_queries_by_their_draw_counts():
    import numpy as np
    from vcmr.metrics.bootstrap import resample_counts
    from vcmr.metrics.retrieval import recall_bootstrap
    ranks = np.array([1, 3, 1, 8])
    counts = np.array([[1, 1, 1, 1], [4, 0, 0, 0], [0, 2, 0, 2]])
    assert recall_bootstrap(ranks, 1, counts).tolist() == [0.5, 1.0, 0.0]
    assert recall_bootstrap(ranks, 5, counts).tolist() == [0.75, 1.0, 0.5]
    # two runs on the same queries are averaged per resample
    two = recall_bootstrap(np.array([[1, 1, 1, 1], [9, 9, 9, 9]]), 1, counts)
    assert two.tolist() == [0.5, 0.5, 0.5]
    # the bootstrap mean sits on the observed recall
    many = resample_counts(4, 4000, seed=0)
    assert recall_bootstrap(ranks, 1, many).mean() == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="3 ranked queries"):
        recall_bootstrap(ranks[:3], 1, counts)
