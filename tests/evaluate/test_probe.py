"""`vcmr probe`: embeddings cached once, head fitted, song-level metrics written."""
import json

import numpy as np
import pytest
from conftest import TINY_OVERRIDES

from vcmr.config import load_config
from vcmr.evaluate.probe import fit_head, probe, song_probs
from vcmr.metrics.tagging import tagging_metrics
from vcmr.demo.synth.formats import write_magnatagatune


def test_probe_writes_metrics_and_reuses_cached_embeddings(tmp_path):
    data = tmp_path / "mtat"
    write_magnatagatune(data, 12, seed=2, duration=0.5, sample_rate=16000, workers=1)
    over = TINY_OVERRIDES + ["--dataset_dir", str(data), "--results_dir", str(tmp_path / "res"),
                             "--workers", "0", "--accelerator", "cpu", "--probe_epochs", "3",
                             "--pretrained_ckpt_path", "none", "--model_name", "rand"]
    out = probe(load_config("tagging", overrides=over))
    assert out["epochs"] <= 3 and out["test"]["n_songs"] == out["n_songs"] > 0
    saved = json.loads((tmp_path / "res" / "magnatagatune" / "rand" / "probe_linear" / "global_metrics.json").read_text())
    assert saved["overlaps"]["0.0"]["pr_auc"] == pytest.approx(out["test"]["pr_auc"])
    assert saved["encoder_batchnorm"] == "frozen"  # cached embeddings: the stored statistics
    caches = sorted((tmp_path / "res" / "magnatagatune" / "rand" / "probe_cache").glob("*.npz"))
    assert len(caches) == 3
    emb = np.load(caches[0])["emb"]
    assert emb.shape[1] == 64 and emb.shape[0] >= 1
    again = probe(load_config("tagging", overrides=over + ["--probe_head", "mlp"]))
    assert again["timing"]["extract_s"] < out["timing"]["extract_s"]  # read from the cache
    assert sorted((tmp_path / "res" / "magnatagatune" / "rand" / "probe_cache").glob("*.npz")) == caches


def _split(rng, n, flip=False):
    """Embeddings whose first dimension carries the tag; ``flip``: the labels say the opposite."""
    emb = rng.standard_normal((n, 8)).astype(np.float32)
    labels = (emb[:, :1] > 0).astype(np.float32)
    return {"emb": emb, "labels": 1 - labels if flip else labels, "song": np.arange(n)}


def test_probe_keep_last_takes_the_final_head_and_best_selects_on_validation():
    """A validation split whose labels contradict the training labels: 'best' keeps the head of
    its best validation PR-AUC (early, before the tag is learnt), 'last' the head after the
    last epoch, which follows the training labels."""
    rng = np.random.default_rng(0)
    train, valid, test = _split(rng, 200), _split(rng, 50, flip=True), _split(rng, 200)
    over = TINY_OVERRIDES + ["--probe_epochs", "20", "--patience", "20", "--learning_rate", "0.05"]
    heads = {}
    for keep in ("best", "last"):
        head, info = fit_head(train, valid, ["tag"], load_config("tagging", overrides=over + ["--probe_keep", keep]))
        heads[keep] = tagging_metrics(test["labels"], song_probs(head, test), ["tag"])["roc_auc"]
        if keep == "best":
            prs = [h["valid_pr_auc"] for h in info["history"]]
            assert info["best_valid_pr_auc"] == max(prs) and info["epochs"] == 20
        else:
            assert info["best_valid_pr_auc"] is None and all(h["valid_pr_auc"] is None for h in info["history"])
    assert heads["last"] > 0.9 > heads["best"], heads

