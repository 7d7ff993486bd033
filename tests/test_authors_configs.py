"""The VCMR authors' four config files, with their keys and values (written here), are accepted
by the matching stage and by the seed scripts, each key used or mapped with a notice."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from vcmr.config import ConfigError, load_config
from vcmr.errors import VcmrError
from vcmr.train.trainer import build_trainer

ENCODER = """sample_rate: 16000
audio_length: 98415
n_blocks: 9
n_channels: [128, 128, 256, 256, 256, 256, 256, 512, 512]
output_size: 512
conv_kernel_size: 3
pool_size: 3
activation: "relu"
first_block_params:
  out_channels: 128
  conv_size: 5
projection_dim: 128
"""
TRAINING = """optimizer: "Adam"
learning_rate: 0.001
weight_decay: 1e-6
temperature: 0.1
val_freq: 1
log_freq: 10
workers: 4
seed: 42
ckpt_path: null
log_dir: "runs"
experiment_version: null
bit_precision: 16
"""
# the authors' file of each stage (klean2050/VCMR config/)
AUTHORS_FILES = {"music": "config_mus.yaml", "video": "config_vid.yaml", "tagging": "config_sup.yaml",
                 "evaluate": "config_eval.yaml"}
AUTHORS = {
    "music": "---\ndataset_dir: \"/data/avramidi/video_clip_data_NEW/audios_00_reduced\"\n" + ENCODER
           + TRAINING + """batch_size: 64
m_epochs: 15
n_cuda: "2, 3"
experiment_name: "music_pretraining"
transforms_polarity: 0.8
transforms_noise: 0.01
transforms_gain: 0.3
transforms_filters: 0.8
transforms_delay: 0.3
transforms_pitch: 0.6
transforms_reverb: 0.6""",
    "video": "---\ndataset_dir: \"/data/avramidi/video_clip_data_NEW\"\n" + ENCODER + TRAINING + """
audio_encoder_ckpt_path: "runs/music_pretraining/model_1/version_0/checkpoints/epoch=49-step=56650.ckpt"
video_lstm_n_layers: 2
batch_size: 128
m_epochs: 50
n_cuda: "2, 3"
experiment_name: "video_pretraining"
...
""",
    "tagging": "---\ndataset: \"magnatagatune\"\ndataset_dir: \"/data/avramidi/VCMR/data/magnatagatune\"\n"
           + ENCODER + TRAINING + """
ckpt_model_type: "multimodal"
pretrained_ckpt_path: "runs/video_pretraining/model_1/version_0/checkpoints/epoch=49-step=28300.ckpt"
video_crop_length_sec: 6
video_n_features: 512
batch_size: 128
m_epochs: 100
n_cuda: "1"
experiment_name: "supervised_learning/magnatagatune"
...
""",
    "evaluate": "---\ndataset: \"magnatagatune\"\ndataset_dir: \"/data/avramidi/VCMR/data/magnatagatune\"\n"
            "dataset_subset: \"valid\"\n" + ENCODER + """
ckpt_path_audio: "runs/supervised_learning/magnatagatune/music_only/model_1/version_0/checkpoints/epoch=29-step=2190.ckpt"
ckpt_path_multimodal: "runs/supervised_learning/magnatagatune/multimodal/model_1/version_0/checkpoints/epoch=33-step=2482.ckpt"
song_split_overlap_ratios: [0, 0.5]
aggregation_methods: "average"
n_cuda: "1"
seed: 42
results_dir: "results"
model_name: "model_1"
audio_model_version:  "version_0"
multimodal_model_version: "version_0"
...
""",
}


def write_authors_configs(folder: Path) -> Path:
    (folder / "config").mkdir(parents=True, exist_ok=True)
    for stage, text in AUTHORS.items():
        (folder / "config" / AUTHORS_FILES[stage]).write_text(text)
    return folder


@pytest.fixture
def authors(tmp_path) -> Path:
    return write_authors_configs(tmp_path)


def test_music_config_maps_gpus_precision_and_the_optimizer_the_code_ran(authors, capsys):
    cfg = load_config("music", authors / "config" / "config_mus.yaml")
    err = capsys.readouterr().err
    assert (cfg.devices, cfg.accelerator, cfg.precision) == ("2,3", "gpu", "16-mixed")
    # the authors' ContrastiveLearning ran AdamW(lr=3e-4) with torch's default decay
    assert (cfg.optimizer, cfg.learning_rate, cfg.weight_decay) == ("adamw", 3e-4, 0.01)
    assert (cfg.batch_size, cfg.m_epochs, cfg.experiment_name) == (64, 15, "music_pretraining")
    assert cfg.n_channels[-1] == 512 and cfg.first_block_params.conv_size == 5
    for needle in ("n_cuda '2, 3' -> devices '2,3'", "bit_precision 16 -> precision '16-mixed'",
                   "optimizer 'Adam' -> adamw"):
        assert err.count(needle) == 1, err


def test_video_config_maps_lstm_layers_and_stage2_rate(authors, capsys):
    cfg = load_config("video", authors / "config" / "config_vid.yaml")
    err = capsys.readouterr().err
    assert cfg.lstm_layers == 2 and cfg.learning_rate == 5e-4 and cfg.batch_size == 128
    assert cfg.audio_encoder_ckpt_path.endswith("epoch=49-step=56650.ckpt")
    assert "video_lstm_n_layers -> lstm_layers" in err


def test_supervised_config_reports_each_ignored_key_once(authors, capsys):
    cfg = load_config("tagging", authors / "config" / "config_sup.yaml")
    err = capsys.readouterr().err
    assert (cfg.optimizer, cfg.learning_rate, cfg.weight_decay) == ("adamw", 0.001, 1e-6)
    assert cfg.head_hidden == 128 and cfg.devices == "1" and cfg.dataset == "magnatagatune"
    for key in ("ckpt_model_type", "video_crop_length_sec", "video_n_features", "temperature"):
        assert err.count(f"{key} ignored:") == 1, err


def test_eval_config_gives_the_two_checkpoints_to_compare(authors, capsys):
    cfg = load_config("evaluate", authors / "config" / "config_eval.yaml")
    assert cfg.subset == "valid" and cfg.overlap_ratios == [0.0, 0.5] and cfg.aggregation == "average"
    assert [Path(p).parts[3] for p in cfg.ckpt_paths] == ["music_only", "multimodal"]
    assert cfg.ckpt_names == ["model_1-music_only-version_0", "model_1-multimodal-version_0"]


def test_unknown_key_in_an_authors_file_stays_an_error(authors):
    path = authors / "config" / "config_mus.yaml"
    path.write_text(path.read_text() + "\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'learning_rat'.*learning_rate"):
        load_config("music", path)


def test_optimizer_names_are_case_insensitive():
    assert load_config("music", overrides=["--optimizer", "LARS"]).optimizer == "lars"
    assert load_config("tagging", overrides=["--optimizer", "Adam"]).optimizer == "adam"


@pytest.mark.parametrize("script,args,needle", [
    ("mus_pretrain", [], "dataset_dir '/data/avramidi/video_clip_data_NEW/audios_00_reduced'"),
    ("vid_pretrain", [], "dataset_dir '/data/avramidi/video_clip_data_NEW' does not exist"),
    ("supervised", ["--dataset", "magnatagatune"], "'runs/video_pretraining/model_1/version_0/checkpoints/epoch=49-step=28300.ckpt' not found"),
    ("evaluation", ["--dataset", "magnatagatune"], "'runs/supervised_learning/magnatagatune/music_only/model_1/version_0/checkpoints/epoch=29-step=2190.ckpt' not found"),
])
def test_seed_scripts_read_config_stage_yaml_and_fail_only_on_missing_paths(
        authors, script, args, needle, monkeypatch, capsys):
    """Run as ``python vcmr/scripts/<script>.py`` from a folder holding the authors' config/."""
    monkeypatch.chdir(authors)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / "vcmr" / "scripts" / f"{script}.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert stop.value.code == 1, err
    assert needle in err, err
    assert "vcmr: config/config_" in err  # the file was read and translated


def test_authors_keys_on_the_command_line_are_translated_too(capsys):
    cfg = load_config("tagging", overrides=["--n_cuda", "0", "--bit_precision", "32"])
    assert (cfg.devices, cfg.precision) == ("0", "32-true")
    assert "command line: n_cuda '0' -> devices '0'" in capsys.readouterr().err
    # a capitalised optimizer alone is not an authors' file: 'Adam' is Adam at the given rate
    cfg = load_config("music", overrides=["--optimizer", "Adam", "--learning_rate", "0.001"])
    assert (cfg.optimizer, cfg.learning_rate) == ("adam", 0.001)


def test_music_config_without_its_gpus_names_the_override(authors, tmp_path, monkeypatch):
    # issue 23: n_cuda "2, 3" on a machine without GPUs 2 and 3 gave Lightning's traceback
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    path = authors / "config" / "config_mus.yaml"
    cfg = load_config("music", path, overrides=["--log_dir", str(tmp_path / "logs")])
    with pytest.raises(VcmrError) as err:
        build_trainer(cfg, monitor="valid_loss")
    for needle in ("'2,3'", "GPU(s) 2, 3", "has 0 CUDA GPU(s)", "--accelerator cpu --devices 1",
                   "--devices auto"):
        assert needle in str(err.value), err.value
    assert not (tmp_path / "logs").exists()  # refused before any work
    cfg = load_config("music", path, overrides=["--log_dir", str(tmp_path / "logs"),
                                                "--accelerator", "cpu", "--devices", "1",
                                                "--precision", "32-true"])
    assert build_trainer(cfg, monitor="valid_loss").num_devices == 1
