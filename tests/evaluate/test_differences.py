"""Pairwise differences between evaluated models: song scores on disk, every pair with its
paired interval, the comparison's sentences, and songs that do not match."""
import numpy as np
import pytest

from vcmr.errors import VcmrError
from vcmr.evaluate.compare import comparison_markdown, differences_markdown, pair_sentence
from vcmr.evaluate.differences import load_song_scores, pairwise_differences, save_song_scores
from vcmr.metrics.tagging import tagging_metrics

TAGS = ["rock", "pop", "sad", "happy", "guitar"]
CATS = {"genre": ["rock", "pop"], "mood": ["sad", "happy"]}


def scored(seed=0, n=150):
    """Song-score dicts of three models: 'good' sees the labels, 'noisy' and 'noisier' do not."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(TAGS))) < 0.3).astype(np.float32)
    ids = [f"song{i:03d}" for i in range(n)]
    base = rng.standard_normal(labels.shape)

    def model(signal):
        s = signal * labels + base + 0.3 * rng.standard_normal(labels.shape)
        return {"song_ids": ids, "tags": TAGS, "labels": labels, "categories": CATS,
                "scores": {"0.0": s, "0.5": s + 0.01}}
    return {"noisy": model(0.2), "noisier": model(0.2), "good": model(2.0)}


def test_song_scores_round_trip_without_pickle(tmp_path):
    m = scored()["good"]
    save_song_scores(tmp_path / "song_scores.npz", m)
    back = load_song_scores(tmp_path)  # a results folder or the file itself
    assert back["song_ids"] == m["song_ids"] and back["tags"] == TAGS
    assert np.array_equal(back["labels"], m["labels"]) and list(back["scores"]) == ["0.0", "0.5"]
    assert np.array_equal(back["scores"]["0.5"], m["scores"]["0.5"])
    with np.load(tmp_path / "song_scores.npz", allow_pickle=False) as f:
        assert set(f.files) == {"song_ids", "tags", "labels", "overlaps", "scores"}
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(VcmrError, match="cannot be read as song scores.*re-run `vcmr evaluate`"):
        load_song_scores(tmp_path / "bad.npz")
    with pytest.raises(VcmrError, match="not found"):
        load_song_scores(tmp_path / "nope")


def test_every_pair_gets_a_difference_with_an_interval():
    models = scored()
    rows = pairwise_differences(models, n_boot=300, seed=0)
    pairs = list(dict.fromkeys((r["model"], r["baseline"]) for r in rows))
    assert pairs == [("noisier", "noisy"), ("good", "noisy"), ("good", "noisier")]
    assert len(rows) == 3 * 2 * 3  # pairs x metrics x (all, genre, mood)
    by = {(r["model"], r["baseline"], r["metric"], r["category"]): r for r in rows}
    for metric in ("roc_auc", "pr_auc"):
        clear = by[("good", "noisy", metric, "all")]
        assert clear["verdict"] == "model better" and clear["low"] > 0
        expected = tagging_metrics(models["good"]["labels"], models["good"]["scores"]["0.0"], TAGS)[metric]
        assert clear["model_value"] == pytest.approx(expected) and clear["overlap"] == "0.0"
        assert by[("noisier", "noisy", metric, "all")]["verdict"] == "within noise"
    assert by[("good", "noisier", "roc_auc", "mood")]["n_tags"] == 2
    assert pairwise_differences(models, overlap=0.5, n_boot=50)[0]["overlap"] == "0.5"


def test_songs_in_another_order_are_paired_by_id_and_other_songs_refused():
    models = scored()
    good = models["good"]
    order = np.random.default_rng(1).permutation(len(good["song_ids"]))
    shuffled = {**good, "song_ids": [good["song_ids"][i] for i in order], "labels": good["labels"][order],
                "scores": {ov: s[order] for ov, s in good["scores"].items()}}
    plain = pairwise_differences({"noisy": models["noisy"], "good": good}, n_boot=100)
    assert pairwise_differences({"noisy": models["noisy"], "good": shuffled}, n_boot=100) == plain
    fewer = {**good, "song_ids": good["song_ids"][:-1], "labels": good["labels"][:-1],
             "scores": {ov: s[:-1] for ov, s in good["scores"].items()}}
    with pytest.raises(VcmrError, match=r"different songs \(149 vs 150; e.g. song149.*same songs"):
        pairwise_differences({"noisy": models["noisy"], "good": fewer})
    with pytest.raises(VcmrError, match="different tags"):
        pairwise_differences({"noisy": models["noisy"], "good": {**good, "tags": TAGS[::-1]}})
    with pytest.raises(VcmrError, match="no scores at overlap 0.25"):
        pairwise_differences({"noisy": models["noisy"], "good": good}, overlap=0.25)
    with pytest.raises(VcmrError, match="at least 2 models"):
        pairwise_differences({"good": good})


def test_the_comparison_says_in_words_which_differences_are_larger_than_their_interval():
    rows = pairwise_differences(scored(), n_boot=300, seed=0)
    good = pair_sentence([r for r in rows if (r["model"], r["baseline"]) == ("good", "noisy")])
    assert good.startswith("good − noisy: ROC-AUC +") and "the interval excludes 0, good is better" in good
    assert "By category, intervals that exclude 0: genre ROC-AUC +" in good
    noise = pair_sentence([r for r in rows if (r["model"], r["baseline"]) == ("noisier", "noisy")])
    assert "ROC-AUC" in noise and "within noise (the interval contains 0)" in noise
    assert "excludes 0" not in noise and "By category, every difference is within noise" in noise
    table = differences_markdown(rows)
    assert "| model − baseline | metric | all | genre | mood |" in table
    assert "| good − noisy | ROC-AUC | +" in table and "]* |" in table
    assert table.count("\n- ") == 3 and "understate the noise" not in table  # 150 songs


def test_comparison_markdown_appends_the_differences():
    models = scored()
    results = {}
    for name, m in models.items():
        metrics = tagging_metrics(m["labels"], m["scores"]["0.0"], TAGS, CATS)
        results[name] = {"dataset": "magnatagatune", "subset": "test", "n_songs": 150,
                         "aggregation": "average", "overlaps": {"0.0": metrics}}
    text = comparison_markdown(results, pairwise_differences(models, n_boot=100))
    assert text.index("| model | ROC-AUC") < text.index("## Differences between models")
    assert "## Differences" not in comparison_markdown(results)


def test_compare_command_refuses_what_is_not_an_evaluate_result(tmp_path, capsys):
    from vcmr.cli import main
    for name, text in (("a", "{not json"), ("b", "[1, 2]")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "global_metrics.json").write_text(text)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "is not valid JSON" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "b"), str(tmp_path / "a")]) == 1
    assert "is not a `vcmr evaluate` result" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "b"), "--bootstrap_resamples", "0"]) == 1
    assert "bootstrap_resamples must be between 1 and 65536" in capsys.readouterr().err


def test_per_tag_rows_find_the_one_tag_a_model_improves():
    """A model that sees only the 'rock' labels beats its baseline on rock beyond the interval;
    on the other tags the difference stays within noise."""
    models = scored(seed=3)
    base = models["noisy"]
    rock = dict(base, scores={k: v + 3.0 * base["labels"] * (np.arange(len(TAGS)) == 0) for k, v in base["scores"].items()})
    rows = pairwise_differences({"base": base, "rock": rock}, n_boot=300, seed=0, per_tag=True, metrics=["roc_auc"])
    assert [r["tag"] for r in rows] == TAGS and all("category" not in r for r in rows)
    by_tag = {r["tag"]: r for r in rows}
    assert by_tag["rock"]["verdict"] == "model better" and by_tag["rock"]["low"] > 0
    assert all(by_tag[t]["difference"] == 0 and by_tag[t]["verdict"] == "within noise" for t in TAGS[1:])

