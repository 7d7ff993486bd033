"""Each checkpoint is evaluated with its own encoder, however many are evaluated in one call.

The authors' evaluation script built one SampleCNN and passed it to both
``load_from_checkpoint`` calls, so the second checkpoint's encoder weights replaced the
first's before either was evaluated. These tests pin that vcmr does not share encoders.
"""
import pytest
import torch
from conftest import TINY_OVERRIDES

from vcmr.io.checkpoint import load_encoder
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


def eval_cfg(data, results):
    return load_config("evaluate", overrides={"dataset_dir": str(data), "results_dir": str(results),
                                          "workers": 0, "accelerator": "cpu", "batch_size": 4})


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
