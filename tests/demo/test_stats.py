"""The demo's retrieval statistics: Recall@K of the real stage 2 and the control on the same
held-out videos, each with a bootstrap interval, and their paired difference in words."""
import numpy as np
import pytest

from vcmr.demo.report_results import retrieval_text
from vcmr.demo.stats import retrieval_summary
from vcmr.errors import VcmrError

IDS = [f"v{i}" for i in range(60)]


def _seed(real_ranks, ctrl_ranks, ids=IDS):
    def one(r):
        r = list(map(int, r))
        return {"video_ids": ids, "video_ranks": {"a2v": r, "v2a": r},
                "videos": {"a2v_R@1": float(np.mean(np.asarray(r) <= 1)), "a2v_median_rank": float(np.median(r)),
                           "chance_R@1": 1 / len(ids), "chance_median_rank": (len(ids) + 1) / 2}}
    return {"retrieval": {"video_conditioned": one(real_ranks), "mismatched_control": one(ctrl_ranks)}}


def test_a_real_gain_is_larger_than_its_interval_and_a_tie_is_within_noise():
    rng = np.random.default_rng(0)
    good = np.where(np.arange(60) < 30, 1, rng.integers(2, 61, 60))   # half the videos found first
    chance = rng.integers(1, 61, 60)
    rows = retrieval_summary({0: _seed(good, chance)}, n_boot=500)
    r1 = next(r for r in rows if r["direction"] == "a2v" and r["k"] == 1)
    assert r1["real"] == 0.5 and r1["chance"] == pytest.approx(1 / 60) and r1["n_videos"] == 60
    assert r1["real_interval"][0] < 0.5 < r1["real_interval"][1]
    assert r1["low"] > 0 and r1["verdict"] == "model better"
    tie = next(r for r in retrieval_summary({0: _seed(chance, chance)}, n_boot=200) if r["k"] == 5)
    assert tie["difference"] == 0 and tie["verdict"] == "within noise"
    # seeds are averaged on shared resamples
    two = retrieval_summary({0: _seed(good, chance), 1: _seed(chance, chance)}, n_boot=200)
    assert next(r for r in two if r["direction"] == "a2v" and r["k"] == 1)["real"] == pytest.approx(
        (0.5 + np.mean(chance <= 1)) / 2)


def test_other_held_out_videos_are_refused():
    ranks = np.ones(60)
    with pytest.raises(VcmrError, match="other held-out videos"):
        retrieval_summary({0: _seed(ranks, ranks), 1: _seed(ranks, ranks, ids=IDS[::-1])})


def test_the_text_gives_r1_with_intervals_and_the_verdict():
    rng = np.random.default_rng(1)
    good = np.where(np.arange(60) < 30, 1, rng.integers(2, 61, 60))
    chance = rng.integers(2, 61, 60)
    seed = _seed(good, chance)
    summary = {"retrieval": {n: {"videos": {k: {"mean": v} for k, v in seed["retrieval"][n]["videos"].items()}}
                             for n in seed["retrieval"]},
               "retrieval_differences": retrieval_summary({0: seed}, n_boot=200)}
    text = retrieval_text(summary)
    assert "audio → video R@1 0.500 [" in text and "30.0× chance 0.017" in text
    assert "for the control" in text and "larger than its interval" in text and "60 videos" in text
