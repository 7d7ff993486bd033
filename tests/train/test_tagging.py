"""Stage 3 (fine-tuning) and the end-to-end fine-tune -> evaluate -> probe path on synthetic data."""
import json

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES

from vcmr.io.checkpoint import checkpoint_data, checkpoint_hparams, load_encoder
from vcmr.config import config_to_dict, load_config
from vcmr.data.cache import cache_audio, cache_path
from vcmr.data.tagging import load_split
from vcmr.evaluate.tagging import evaluate_checkpoints, evaluate_tagger, load_tagging_model
from vcmr.models import SampleCNN
from vcmr.models.stages import build
from vcmr.demo.synth.formats import write_magnatagatune
from vcmr.train.tagging import TaggingModule, train_tagging, resolve_encoder


def sup_cfg(tmp_path, data, **extra):
    values = {"dataset_dir": str(data), "log_dir": str(tmp_path / "runs"), "workers": "0",
              "batch_size": "8", "progress_bar": "false", "accelerator": "cpu", "devices": "1",
              "pretrained_ckpt_path": "none", **{k: str(v) for k, v in extra.items()}}
    return load_config("tagging", overrides=TINY_OVERRIDES + [x for k, v in values.items() for x in (f"--{k}", v)])


@pytest.fixture(scope="module")
def small_mtat(tmp_path_factory):
    out = tmp_path_factory.mktemp("mtat_small")
    write_magnatagatune(out, 12, seed=5, duration=0.4, sample_rate=16000, workers=1)
    return out


def fake_stage1_checkpoint(path, cfg):
    """A checkpoint laid out as Lightning writes stage 1 (hyper_parameters + the network's
    weights under net.); returns its encoder."""
    net = build("music", cfg)
    torch.nn.init.normal_(net.encoder.blocks[0][0].weight)
    torch.save({"hyper_parameters": checkpoint_hparams("music", config_to_dict(cfg)),
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return net.encoder


def batchnorm_buffers(encoder):
    return {k: v for k, v in encoder.state_dict().items() if "running_" in k or "num_batches" in k}


def test_checkpoint_format_and_frozen_encoder(tmp_path, small_mtat):
    stage1 = fake_stage1_checkpoint(tmp_path / "s1.ckpt", load_config("music", overrides=TINY_OVERRIDES))
    cfg = sup_cfg(tmp_path, small_mtat, m_epochs=1, pretrained_ckpt_path=tmp_path / "s1.ckpt",
                  encoder_batchnorm="frozen")
    paths = train_tagging(cfg)
    ck = torch.load(paths["last"], map_location="cpu", weights_only=True)
    hp = ck["hyper_parameters"]
    assert hp["stage"] == "tagging" and len(hp["tags"]) == 50 and hp["config"]["audio_length"] == 2187
    assert hp["config"]["pretrained_ckpt_path"] == str(tmp_path / "s1.ckpt")
    data = checkpoint_data(paths["last"])  # the model card's training-data summary
    assert (data["dataset"], data["split"], data["examples"]) == ("magnatagatune", "pons2017", "songs")
    assert data["dataset_dir"] == small_mtat.name and data["train_examples"] > 0 and data["valid_examples"] > 0
    keys = ck["state_dict"].keys()
    assert any(k.startswith("net.head.") for k in keys)
    assert [k for k in keys if not k.startswith(("net.encoder.", "net.head."))] == []
    # frozen: the encoder, BatchNorm statistics included, is exactly the stage-1 encoder
    encoder, _ = load_encoder(paths["last"])
    for (name, a), b in zip(encoder.state_dict().items(), stage1.state_dict().values()):
        assert torch.equal(a, b), name
    module = TaggingModule(cfg, hp["tags"], SampleCNN(cfg)).train()
    assert not module.net.encoder.training and module.net.head.training
    model = load_tagging_model(paths["last"])
    assert model.tags == hp["tags"] and model.net(torch.zeros(2, 2187)).shape == (2, 50)


def test_adapt_batchnorm_follows_tagging_data_with_fixed_weights(tmp_path, small_mtat):
    """The reference default: frozen encoder weights, BatchNorm running statistics adapted."""
    stage1 = fake_stage1_checkpoint(tmp_path / "s1.ckpt", load_config("music", overrides=TINY_OVERRIDES))
    cfg = sup_cfg(tmp_path, small_mtat, m_epochs=2, pretrained_ckpt_path=tmp_path / "s1.ckpt")
    assert cfg.encoder_batchnorm == "adapt" and cfg.freeze_encoder
    paths = train_tagging(cfg)
    encoder, _ = load_encoder(paths["last"])
    before, after = dict(stage1.named_parameters()), dict(encoder.named_parameters())
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    old, new = batchnorm_buffers(stage1), batchnorm_buffers(encoder)
    moved = [k for k in old if "running_" in k and not torch.allclose(old[k], new[k])]
    assert len(moved) == len([k for k in old if "running_" in k])  # every mean and variance moved
    n = paths["n_train"]  # batches of 8, the last partial one dropped when there are several
    per_epoch = n // 8 if n > 8 else 1
    steps = {int(v) - int(old[k]) for k, v in new.items() if "num_batches" in k}
    assert steps == {2 * per_epoch}  # every training step of both epochs, no validation step
    module = TaggingModule(cfg, ["a"], SampleCNN(cfg)).train()
    assert module.net.encoder.training and all(not p.requires_grad for p in module.net.encoder.parameters())


def test_pretrained_architecture_wins_with_warning(tmp_path):
    stage1_cfg = load_config("music", overrides=TINY_OVERRIDES)
    enc = fake_stage1_checkpoint(tmp_path / "s1.ckpt", stage1_cfg)
    cfg = load_config("tagging", overrides=["--pretrained_ckpt_path", str(tmp_path / "s1.ckpt")])  # paper sizes
    with pytest.warns(UserWarning, match="checkpoint's encoder architecture.*n_blocks=6"):
        encoder, cfg2 = resolve_encoder(cfg)
    assert (cfg2.n_blocks, cfg2.audio_length, cfg2.output_size) == (6, 2187, 64)
    for a, b in zip(encoder.state_dict().values(), enc.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(Exception, match="not found"):
        resolve_encoder(load_config("tagging", overrides=["--pretrained_ckpt_path", str(tmp_path / "no.ckpt")]))


def test_stage1_checkpoint_cannot_be_evaluated_directly(tmp_path):
    fake_stage1_checkpoint(tmp_path / "s1.ckpt", load_config("music", overrides=TINY_OVERRIDES))
    with pytest.raises(Exception, match="without a tagging head.*vcmr train tagging"):
        load_tagging_model(tmp_path / "s1.ckpt")


def test_audio_cache_matches_decoding(tmp_path, small_mtat):
    split = load_split("magnatagatune", small_mtat, "valid")
    out = cache_audio(split.items, tmp_path / "cache", 8000, workers=1, progress=False)
    assert out["decoded"] == len(split.items) and out["failed"] == 0
    again = cache_audio(split.items, tmp_path / "cache", 8000, workers=1, progress=False)
    assert again["cached"] == len(split.items)
    from vcmr.audio.io import read_audio
    item = split.items[0]
    cached = np.load(cache_path(tmp_path / "cache", 8000, item.relpath))
    np.testing.assert_allclose(cached.astype(np.float32), read_audio(item.path, 8000)[0], atol=1e-3)


@pytest.mark.slow
def test_end_to_end_trained_head_beats_random(tmp_path):
    data = tmp_path / "mtat"
    write_magnatagatune(data, 64, seed=0, duration=1.5, sample_rate=16000)
    cfg = sup_cfg(tmp_path, data, m_epochs=10, batch_size=16, learning_rate=3e-3, patience=100,
                  freeze_encoder="false", cache_dir=tmp_path / "cache")
    cache_audio(load_split("magnatagatune", data, "train").items, cfg.cache_dir, 16000, workers=2, progress=False)
    paths = train_tagging(cfg)
    ecfg = load_config("evaluate", overrides=["--dataset_dir", str(data), "--results_dir", str(tmp_path / "res"),
                                          "--workers", "0", "--accelerator", "cpu"])
    results = evaluate_checkpoints(ecfg, [paths["last"], paths["best"]], ["trained", "best"])
    trained = results["trained"]["overlaps"]["0.0"]
    torch.manual_seed(1)  # the lower baseline: the same model before training
    split = load_split("magnatagatune", data, "test")
    untrained = TaggingModule(cfg, split.tags)
    base = evaluate_tagger(untrained.net, split.tags, split, ecfg, 16000, 2187)
    got = (trained["roc_auc"], base["overlaps"]["0.0"]["roc_auc"])
    assert got[0] > got[1] + 0.05 and got[0] > 0.6, f"trained vs untrained ROC-AUC: {got}"
    saved = json.loads((tmp_path / "res" / "magnatagatune" / "trained" / "global_metrics.json").read_text())
    assert saved["overlaps"]["0.0"]["roc_auc"] == pytest.approx(trained["roc_auc"])
    assert set(saved["overlaps"]["0.0"]["per_category"]) == {"genre", "mood", "instrument", "vocals", "other"}
    assert (tmp_path / "res" / "magnatagatune" / "comparison.md").read_text().count("| trained |") == 2
    assert (tmp_path / "res" / "magnatagatune" / "comparison.png").stat().st_size > 1000
