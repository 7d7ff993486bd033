"""`vcmr probe`: embeddings cached once, head fitted, song-level metrics written."""
import json

import numpy as np
import pytest
from conftest import TINY_OVERRIDES

from vcmr.config import load_config
from vcmr.evaluate.probe import probe
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
