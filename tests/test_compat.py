"""Checkpoints of the original VCMR code and of CLMR load in vcmr and give their models' numbers.

Each file is saved from a module with the original structure and key names (tests/
foreign_models.py, random weights and BatchNorm statistics) in the format its training code
writes; vcmr's outputs must equal that module's within 1e-5 relative.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pytest
import torch

import vcmr
from foreign_models import (AUTHORS_HP, TINY, AuthorsContrastive, AuthorsMultimodal,
                            AuthorsSupervised, ClmrLightning, ClmrSampleCNN, ClmrSimCLR,
                            authors_encoder, lightning1_file, randomise)
from vcmr.errors import CheckpointError, VcmrError
from vcmr.io.checkpoint import load_encoder
from vcmr.cli import main
from vcmr.config import ConfigError, EncoderConfig, load_config

HP = {**AUTHORS_HP, **TINY}
CROP, FEATURES = 6, 32


def close(a, b) -> float:
    """Largest difference relative to the reference's largest magnitude."""
    def t(v):
        return v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
    a, b = t(a), t(b)
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    mus = randomise(AuthorsContrastive(authors_encoder(TINY, 0)), 1)
    vid = randomise(AuthorsMultimodal(authors_encoder(TINY, 2), CROP, FEATURES), 3)
    sup = randomise(AuthorsSupervised(authors_encoder(TINY, 4), 50), 5)
    torch.manual_seed(6)
    clmr = randomise(ClmrSimCLR(ClmrSampleCNN()), 6)
    torch.manual_seed(7)
    clmr_pl = randomise(ClmrLightning(ClmrSampleCNN()), 7)
    torch.save(clmr.state_dict(), root / "clmr_checkpoint_10000.pt")
    clmr_hp = {"sample_rate": 22050, "audio_length": 59049, "projection_dim": 64, "optimizer": "Adam",
               "batch_size": 48, "temperature": 0.5, "supervised": 0, "checkpoint_path": ""}
    return {
        "authors_mus": (lightning1_file(root / "mus.ckpt", mus, HP), mus),
        "authors_vid": (lightning1_file(root / "vid.ckpt", vid, {**HP, "video_lstm_n_layers": 2}), vid),
        # Lightning 1.x itself stores hyper-parameters as a plain dict: both forms are read
        "authors_sup": (lightning1_file(root / "sup.ckpt", sup, {**HP, "dataset": "magnatagatune"},
                                        as_namespace=False), sup),
        "clmr_pt": (root / "clmr_checkpoint_10000.pt", clmr),
        "clmr_lightning": (lightning1_file(root / "clmr.ckpt", clmr_pl, clmr_hp), clmr_pl),
    }


def waveforms(n, length, seed=0):
    return torch.randn(n, length, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_authors_stage1_embeds_as_their_module(files):
    path, ref = files["authors_mus"]
    model = vcmr.load_model(path)
    x = waveforms(3, 2187)
    emb = model.embed_segments(x)
    assert model.stage == "music" and model.sample_rate == 16000
    assert close(emb, ref.encoder(x.unsqueeze(1))) < 1e-5
    assert close(model.net.projector(emb), ref.model(x.unsqueeze(1))) < 1e-5


def test_authors_stage2_joint_embeddings_equal_their_module(files):
    path, ref = files["authors_vid"]
    model = vcmr.load_model(path)
    x, v = waveforms(3, 2187), torch.randn(4, CROP, FEATURES)
    assert model.stage == "video" and model.video_seconds == CROP  # inferred from the weights
    assert close(model.embed_segments(x, "joint"), ref.audio_model(x.unsqueeze(1))) < 1e-5
    assert close(model.embed_video_features(v), ref.joint_video(v)) < 1e-5


def test_authors_stage3_tag_probabilities_equal_their_module(files):
    path, ref = files["authors_sup"]
    model = vcmr.load_model(path)
    x = waveforms(1, 2187)[0]
    probs = model.predict_tags(x.numpy(), 16000)  # one segment: no resampling, no averaging
    assert len(probs) == 50
    assert close(list(probs.values()), torch.sigmoid(ref.model(x.view(1, 1, -1)))[0]) < 1e-5


@pytest.mark.parametrize("layout", ["clmr_pt", "clmr_lightning"])
def test_clmr_checkpoints_embed_at_22050_hz_as_clmr(files, layout, capsys):
    path, ref = files[layout]
    model = vcmr.load_model(path)
    enc = model.net.encoder.cfg
    assert (model.sample_rate, model.segment_samples) == (22050, 59049)
    assert enc == EncoderConfig(sample_rate=22050, audio_length=59049, n_blocks=9,
                                n_channels=[128, 128, 256, 256, 256, 256, 256, 256, 512],
                                first_block_params=enc.first_block_params, conv_kernel_size=3,
                                pool_size=3, output_size=512, last_block_kernel_size=3)
    assert (enc.first_block_params.out_channels, enc.first_block_params.conv_size) == (128, 3)
    x = waveforms(2, 59049, seed=1)
    assert close(model.embed_segments(x), ref.encoder(x.unsqueeze(1))) < 1e-5
    song = model.embed(x[0].numpy(), 22050).embeddings  # the public path, audio at 22.05 kHz
    assert close(song[0], ref.encoder(x[:1].unsqueeze(1))[0]) < 1e-5
    err = capsys.readouterr().err
    assert ("assuming sample_rate 22050, audio_length 59049" in err) == (layout == "clmr_pt")


@pytest.mark.parametrize("layout", ["authors_mus", "authors_vid", "authors_sup", "clmr_pt"])
def test_export_converts_each_layout(files, layout, tmp_path, capsys):
    path, _ = files[layout]
    out = tmp_path / "m.safetensors"
    assert main(["export", str(path), "--out", str(out)]) == 0, capsys.readouterr().err
    a, b = vcmr.load_model(path), vcmr.load_model(out)
    x = waveforms(2, a.segment_samples)
    assert torch.equal(a.embed_segments(x), b.embed_segments(x))
    assert (a.stage, a.sample_rate) == (b.stage, b.sample_rate)


def test_stage2_starts_from_clmrs_encoder(files, capsys):
    """--audio_encoder_ckpt_path clmr_checkpoint_10000.pt: the checkpoint's architecture and
    input (22050 Hz) are taken, and stage 2 starts from its weights."""
    from vcmr.io.foreign import adopt_encoder_architecture
    from vcmr.train.video import VideoModule
    path, ref = files["clmr_pt"]
    cfg = load_config("video", overrides=["--audio_encoder_ckpt_path", str(path), "--feature_dim", "16"])
    cfg = adopt_encoder_architecture(cfg, cfg.audio_encoder_ckpt_path)
    assert (cfg.sample_rate, cfg.audio_length, cfg.last_block_kernel_size) == (22050, 59049, 3)
    module = VideoModule(cfg).eval()
    x = waveforms(2, 59049, seed=2)
    assert close(module.net.encoder(x), ref.encoder(x.unsqueeze(1))) < 1e-5
    assert module.net.video_encoder.n_seconds == 3  # round(59049 / 22050)
    assert "encoder architecture taken from the checkpoint" in capsys.readouterr().err


def test_stage3_starts_from_the_authors_stage2_encoder(files):
    from vcmr.train.tagging import resolve_encoder
    path, ref = files["authors_vid"]
    cfg = load_config("tagging", overrides=["--pretrained_ckpt_path", str(path)])
    with pytest.warns(UserWarning, match="using the checkpoint's encoder architecture"):
        encoder, cfg = resolve_encoder(cfg)
    x = waveforms(2, 2187)
    assert cfg.audio_length == 2187 and close(encoder.eval()(x), ref.encoder(x.unsqueeze(1))) < 1e-5


def test_hyper_parameters_that_contradict_the_weights_name_the_key(files, tmp_path):
    _, ref = files["authors_mus"]
    bad = lightning1_file(tmp_path / "bad.ckpt", ref, {**HP, "n_channels": [16] * 6})
    with pytest.raises(CheckpointError, match="n_channels=.*disagrees with the weights"):
        vcmr.load_model(bad)
    _, vid = files["authors_vid"]
    bad = lightning1_file(tmp_path / "bad_vid.ckpt", vid, {**HP, "video_lstm_n_layers": 3})
    with pytest.raises(CheckpointError, match="video_lstm_n_layers=3 .* 2 LSTM layers"):
        load_encoder(bad)


def test_a_damaged_alias_is_an_error(files, tmp_path):
    _, ref = files["authors_mus"]
    sd = dict(ref.state_dict())
    sd["model.1.0.weight"] = sd["model.1.0.weight"] + 1
    torch.save({"state_dict": sd, "hyper_parameters": dict(HP), "pytorch-lightning_version": "1.7.7"},
               tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match="'model.1.0.weight' differs from 'projector.0.weight'"):
        vcmr.load_model(tmp_path / "x.ckpt")


def test_authors_stage3_video_keys_are_reported_and_do_not_matter(files, tmp_path, capsys):
    """Stage 3 takes only the audio encoder of the stage-2 checkpoint, so the authors' sizes of
    the video branch have no effect: reported as ignored, whatever their value."""
    path, _ = files["authors_vid"]
    f = tmp_path / "sup.yaml"
    for crop in (CROP, 8):
        f.write_text(f"ckpt_model_type: multimodal\npretrained_ckpt_path: '{path}'\n"
                     f"video_crop_length_sec: {crop}\nvideo_n_features: {FEATURES}\n")
        assert load_config("tagging", f).pretrained_ckpt_path == str(path)
        assert "video_crop_length_sec" in capsys.readouterr().err


def test_evaluate_with_the_authors_config_compares_their_two_checkpoints(files, tmp_path, capsys):
    from test_authors_configs import AUTHORS
    from vcmr.evaluate.tagging import load_split_from_config
    from vcmr.demo.synth.formats import write_magnatagatune
    data = tmp_path / "mtat"
    write_magnatagatune(data, 12, seed=7, duration=0.5, sample_rate=16000, workers=1)
    n_tags = len(load_split_from_config(load_config("evaluate", overrides={"dataset_dir": str(data)}), "test").tags)
    paths = []
    for seed, name in ((8, "audio.ckpt"), (9, "multimodal.ckpt")):
        ref = randomise(AuthorsSupervised(authors_encoder(TINY, seed), n_tags), seed)
        paths.append(lightning1_file(tmp_path / name, ref, {**HP, "dataset": "magnatagatune"}))
    text = AUTHORS["evaluate"]
    for old, new in (("runs/supervised_learning/magnatagatune/music_only/model_1/version_0/checkpoints/epoch=29-step=2190.ckpt", paths[0]),
                     ("runs/supervised_learning/magnatagatune/multimodal/model_1/version_0/checkpoints/epoch=33-step=2482.ckpt", paths[1]),
                     ("98415", "2187")):
        text = text.replace(old, str(new))
    (tmp_path / "config_eval.yaml").write_text(text)
    code = main(["evaluate", "--config", str(tmp_path / "config_eval.yaml"), "--dataset_dir", str(data),
                 "--accelerator", "cpu", "--workers", "0", "--results_dir", str(tmp_path / "res"),
                 "--subset", "test"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "model_1-music_only-version_0 [overlap 0.5]" in out and "model_1-multimodal-version_0" in out
    assert (tmp_path / "res" / "magnatagatune" / "comparison.md").is_file()


# ---------------------------------------------------------------- safety
class Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil(files, tmp_path):
    """An authors' stage-1 checkpoint whose hyper-parameters also carry a payload."""
    _, ref = files["authors_mus"]
    marker = tmp_path / "PWNED"
    path = lightning1_file(tmp_path / "evil.ckpt", ref, {**HP, "x": Payload(marker)})
    return path, marker


@pytest.mark.parametrize("command", [
    ["embed", "--ckpt", "{ckpt}", "{audio}", "--out", "{tmp}/e.parquet"],
    ["export", "{ckpt}", "--out", "{tmp}/m.safetensors"],
    ["train", "video", "--dataset_dir", "{tmp}", "--audio_encoder_ckpt_path", "{ckpt}", "--log_dir", "{tmp}/runs"],
    ["train", "tagging", "--dataset_dir", "{tmp}", "--pretrained_ckpt_path", "{ckpt}", "--log_dir", "{tmp}/runs"],
    ["evaluate", "--dataset_dir", "{tmp}", "--ckpt", "{ckpt}", "--results_dir", "{tmp}/res"],
    ["train", "music", "--dataset_dir", "{audio_dir}", "--ckpt_path", "{ckpt}", "--log_dir", "{tmp}/runs"],
], ids=lambda c: " ".join(x for x in c[:2] if not x.startswith("--")))
def test_a_payload_is_refused_by_every_command_and_never_runs(evil, command, tmp_path, capsys,
                                                               synth_audio_dir, monkeypatch):
    path, marker = evil
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    audio = sorted(synth_audio_dir.glob("*.wav"))[0]
    args = [a.format(ckpt=path, tmp=tmp_path, audio=audio, audio_dir=synth_audio_dir) for a in command]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "evil.ckpt" in err and ("refused" in err or "cannot be read" in err), err
    assert "Traceback" not in err and not marker.exists()


def test_load_model_refuses_a_payload_and_names_it(evil):
    path, marker = evil
    with pytest.raises(CheckpointError, match="refused: .*function io.open.*nothing in the file runs"):
        vcmr.load_model(path)
    assert not marker.exists()


def test_only_argparse_namespace_is_allowed(files, tmp_path):
    """Any other class in the hyper-parameters is refused by name, not constructed."""
    import datetime
    _, ref = files["authors_mus"]
    torch.save({"state_dict": ref.state_dict(), "hyper_parameters": {"when": datetime.date(2023, 1, 1)}},
               tmp_path / "p.ckpt")
    with pytest.raises(CheckpointError, match="datetime.date"):
        vcmr.load_model(tmp_path / "p.ckpt")


@pytest.mark.slow
def test_pretrain_video_conditions_clmrs_encoder_end_to_end(files, tmp_path, capsys):
    """``vcmr train video --audio_encoder_ckpt_path clmr_checkpoint_10000.pt``: one step of
    stage 2 on prepared data (16 kHz audio, resampled to CLMR's 22050 Hz), then the stage-2
    checkpoint loads with CLMR's architecture and the blocks kept frozen are CLMR's."""
    from prepared_layout import write_prepared
    path, ref = files["clmr_pt"]
    data = write_prepared(tmp_path / "av", n_videos=6, n_segments=2, segment_seconds=3, feature_dim=8)
    code = main(["train", "video", "--dataset_dir", str(data), "--audio_encoder_ckpt_path", str(path),
                 "--log_dir", str(tmp_path / "runs"), "--batch_size", "4", "--workers", "0",
                 "--max_steps", "1", "--m_epochs", "1", "--valid_fraction", "0.3",
                 "--accelerator", "cpu", "--devices", "1", "--progress_bar", "false"])
    assert code == 0, capsys.readouterr().err
    ckpt = next((tmp_path / "runs").rglob("last.ckpt"))
    model = vcmr.load_model(ckpt)
    assert (model.stage, model.sample_rate, model.segment_samples, model.video_seconds) == ("video", 22050, 59049, 3)
    frozen = {k: v for k, v in model.net.encoder.state_dict().items() if k.startswith("blocks.0.0.")}
    assert all(torch.equal(v, ref.encoder.state_dict()["sequential." + k[len("blocks."):]])
               for k, v in frozen.items())


def test_foreign_checkpoints_load_with_the_core_install_only(files):
    """Reading and converting them imports neither Lightning nor the video stack."""
    import subprocess
    import sys
    code = ("import sys, vcmr\n"
            "for p in sys.argv[1:]: vcmr.load_model(p)\n"
            "bad = [m for m in ('pytorch_lightning', 'lightning', 'av', 'scenedetect', 'cv2', 'transformers') "
            "if m in sys.modules]\n"
            "assert not bad, bad\n")
    paths = [str(files[k][0]) for k in ("authors_vid", "authors_sup", "clmr_pt")]
    r = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_encoder_only_clmr_file_loads_for_embedding(files, tmp_path, capsys):
    # issue 23: a clmr_checkpoint_10000.pt holding only encoder.* (all CLMR's own
    # load_encoder_checkpoint reads) was refused for lacking projector.0.weight
    _, ref = files["clmr_pt"]
    path = tmp_path / "clmr_checkpoint_10000.pt"
    torch.save({k: v for k, v in ref.state_dict().items() if k.startswith("encoder.")}, path)
    model = vcmr.load_model(path)
    assert not model.has_projector and model.net.projector is None
    assert "no projector.* weights" in capsys.readouterr().err
    x = waveforms(2, 59049, seed=1)
    assert close(model.embed_segments(x), ref.encoder(x.unsqueeze(1))) < 1e-5
    with pytest.raises(VcmrError, match="space='joint'"):
        model.embed_segments(x, space="joint")
    out = tmp_path / "m.safetensors"  # exported, it is the same encoder-only model
    assert main(["export", str(path), "--out", str(out)]) == 0, capsys.readouterr().err
    again = vcmr.load_model(out)
    assert not again.has_projector and torch.equal(again.embed_segments(x), model.embed_segments(x))
