"""Each checkpoint is evaluated with its own encoder, however many are evaluated in one call.

The authors' evaluation script built one SampleCNN and passed it to both
``load_from_checkpoint`` calls, so the second checkpoint's encoder weights replaced the
first's before either was evaluated. These tests pin that vcmr does not share encoders.
"""
import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_OVERRIDES

from vcmr.cli import main
from vcmr.evaluate.differences import load_song_scores
from vcmr.io.checkpoint import load_encoder
from vcmr.metrics.tagging import tagging_metrics
from vcmr.config import load_config
from vcmr.evaluate.tagging import evaluate_checkpoints, load_tagging_model
from vcmr.demo.synth.formats import write_magnatagatune
from vcmr.train.tagging import train_tagging


@pytest.fixture(scope="module")
def two_stage3_checkpoints(tmp_path_factory):
    """Two short stage-3 runs on synthetic MagnaTagATune from differently initialised encoders."""
    root = tmp_path_factory.mktemp("two_ckpts")
    data = root / "mtat"
    write_magnatagatune(data, 12, seed=7, duration=0.5, sample_rate=16000, workers=1)
    ckpts = []
    for seed in (1, 2):
        cfg = load_config("tagging", overrides=TINY_OVERRIDES + [
            "--dataset_dir", str(data), "--log_dir", str(root / "runs"), "--experiment_name", f"s{seed}",
            "--seed", str(seed), "--m_epochs", "1", "--batch_size", "8", "--workers", "0",
            "--progress_bar", "false", "--accelerator", "cpu", "--devices", "1",
            "--pretrained_ckpt_path", "none"])
        ckpts.append(train_tagging(cfg)["last"])
    return data, ckpts


def eval_cfg(data, results, **more):
    return load_config("evaluate", overrides={"dataset_dir": str(data), "results_dir": str(results),
                                          "workers": 0, "accelerator": "cpu", "batch_size": 4, **more})


def metric_rows(result):
    """Every number of one model's result: overall, per category and per tag, for each overlap."""
    rows = []
    for ov, m in result["overlaps"].items():
        rows += [(ov, "all", m["roc_auc"], m["pr_auc"])]
        rows += [(ov, g, c["roc_auc"], c["pr_auc"]) for g, c in m["per_category"].items()]
        rows += [(ov, r["tag"], r["roc_auc"], r["pr_auc"]) for r in m["per_tag"]]
    return rows


def test_two_checkpoints_together_equal_each_alone(two_stage3_checkpoints, tmp_path):
    data, (a, b) = two_stage3_checkpoints
    enc_a, enc_b = load_encoder(a)[0], load_encoder(b)[0]
    assert not torch.equal(enc_a.blocks[0][0].weight, enc_b.blocks[0][0].weight)  # different encoders
    together = evaluate_checkpoints(eval_cfg(data, tmp_path / "both"), [a, b], ["a", "b"])
    alone_a = evaluate_checkpoints(eval_cfg(data, tmp_path / "a"), [a], ["a"])["a"]
    alone_b = evaluate_checkpoints(eval_cfg(data, tmp_path / "b"), [b], ["b"])["b"]
    assert metric_rows(together["a"]) == metric_rows(alone_a)
    assert metric_rows(together["b"]) == metric_rows(alone_b)
    # and the two models really score differently, so sharing an encoder would have shown
    assert metric_rows(together["a"]) != metric_rows(together["b"])


def test_loaded_checkpoints_share_no_tensor(two_stage3_checkpoints):
    _, (a, b) = two_stage3_checkpoints
    ta, tb = load_tagging_model(a), load_tagging_model(b)
    pa = {t.data_ptr() for t in ta.state_dict().values()}
    assert pa.isdisjoint(t.data_ptr() for t in tb.state_dict().values())


def test_evaluate_writes_song_scores_and_compare_reads_them(two_stage3_checkpoints, tmp_path, capsys):
    data, (a, b) = two_stage3_checkpoints
    res = evaluate_checkpoints(eval_cfg(data, tmp_path / "both", bootstrap_resamples=200), [a, b], ["a", "b"])
    files = res["a"]["files"]
    scores = load_song_scores(files["song_scores"])
    assert Path(files["song_scores"]).parent == Path(files["global_metrics"]).parent
    assert len(scores["song_ids"]) == res["a"]["n_songs"] and list(scores["scores"]) == ["0.0", "0.5"]
    for ov, m in res["a"]["overlaps"].items():  # the file holds what the metrics were computed from
        again = tagging_metrics(scores["labels"], scores["scores"][ov], scores["tags"])
        assert again["roc_auc"] == pytest.approx(m["roc_auc"]) and again["pr_auc"] == pytest.approx(m["pr_auc"])
    json.dumps(res)  # the returned results stay plain JSON (the scores are on disk)
    md = Path(files["comparison_md"]).read_text()
    assert "## Differences between models (paired bootstrap over songs)" in md and "\n- b − a: ROC-AUC " in md
    assert f"Only {res['a']['n_songs']} songs: few distinct resamples" in md
    # the same comparison from the folders, as for models evaluated in separate runs
    folders = [str(Path(res[n]["files"]["global_metrics"]).parent) for n in ("a", "b")]
    assert main(["compare", *folders, "--out", str(tmp_path / "cmp"), "--bootstrap_resamples", "200"]) == 0
    assert capsys.readouterr().out.startswith("b − a: ROC-AUC ")
    assert (tmp_path / "cmp" / "differences.csv").read_text() == Path(files["differences_csv"]).read_text()
    # and one row per tag, pair and metric, the same from both commands
    tag_rows = list(csv.DictReader(open(files["tag_differences_csv"])))
    assert len(tag_rows) == 2 * len(scores["tags"]) and {r["tag"] for r in tag_rows} == set(scores["tags"])
    assert (tmp_path / "cmp" / "tag_differences.csv").read_text() == Path(files["tag_differences_csv"]).read_text()


def test_compare_refuses_results_on_other_songs(two_stage3_checkpoints, tmp_path, capsys):
    data, (a, b) = two_stage3_checkpoints
    evaluate_checkpoints(eval_cfg(data, tmp_path / "test"), [a], ["a"])
    evaluate_checkpoints(eval_cfg(data, tmp_path / "valid", subset="valid"), [b], ["b"])
    folders = [str(tmp_path / "test" / "magnatagatune" / "a"), str(tmp_path / "valid" / "magnatagatune" / "b")]
    assert main(["compare", *folders]) == 1
    assert "scored on different songs" in capsys.readouterr().err
    assert main(["compare", folders[0], str(tmp_path)]) == 1
    assert "holds no global_metrics.json" in capsys.readouterr().err
