from pathlib import Path

import pytest
import yaml

from vcmr.config import (STAGES, ConfigError, MusicConfig, config_from_dict, config_to_dict,
                         encoder_config, load_config, parse_overrides)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stage", ["music", "video", "tagging", "evaluate", "prepare"])
def test_yaml_files_equal_stage_defaults(stage):
    path = ROOT / "config" / f"{stage}.yaml"
    stored = yaml.safe_load(path.read_text())
    assert stored == config_to_dict(STAGES[stage]())
    assert list(stored) == list(config_to_dict(STAGES[stage]()))  # same order: easy to compare
    assert load_config(stage, path) == STAGES[stage]()


def test_every_stage_has_a_yaml_file_and_tiny_fits_every_training_stage():
    files = {p.stem for p in (ROOT / "config").glob("*.yaml")}
    assert files == set(STAGES) | {"tiny", "mtat_tag_categories"}
    for stage in ("music", "video", "tagging"):
        load_config(stage, ROOT / "config" / "tiny.yaml")


def test_reference_defaults():
    """The authors' code (klean2050/VCMR trainers and scripts at d5d01f4), not their YAML."""
    cfg = load_config("music")
    assert (cfg.sample_rate, cfg.audio_length, cfg.n_blocks) == (16000, 98415, 9)
    assert cfg.n_channels == [128, 128, 256, 256, 256, 256, 256, 512, 512]
    assert (cfg.first_block_params.out_channels, cfg.first_block_params.conv_size) == (128, 5)
    assert cfg.last_block_kernel_size == 1
    assert (cfg.optimizer, cfg.learning_rate, cfg.weight_decay) == ("adamw", 3e-4, 0.01)
    assert (cfg.batch_size, cfg.m_epochs, cfg.temperature) == (64, 50, 0.1)
    assert (cfg.precision, cfg.sync_batchnorm) == ("auto", True)
    assert (cfg.transforms_polarity, cfg.transforms_noise, cfg.transforms_gain, cfg.transforms_filters,
            cfg.transforms_delay, cfg.transforms_pitch, cfg.transforms_reverb) == (0.8, 0.01, 0.3, 0.8, 0.3, 0.6, 0.6)
    vid = load_config("video")
    assert (vid.batch_size, vid.temperature, vid.lstm_layers, vid.freeze_blocks) == (128, 0.1, 2, 4)
    assert (vid.optimizer, vid.learning_rate, vid.weight_decay, vid.m_epochs) == ("adamw", 5e-4, 0.01, 50)
    assert (vid.negatives, vid.last_block_kernel_size) == ("all", 1)
    assert vid.encoder_batchnorm == "adapt"


def test_partial_file_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("batch_size: 8\nfirst_block_params: {conv_size: 3}\n")
    cfg = load_config("music", f, ["--learning_rate", "3e-4", "--n_channels", "1,2,3,4,5,6,7,8,9",
                                 "--first_block_params.out_channels=16", "--progress_bar", "false"])
    assert cfg.batch_size == 8 and cfg.learning_rate == pytest.approx(3e-4)
    assert cfg.first_block_params.conv_size == 3 and cfg.first_block_params.out_channels == 16
    assert cfg.n_channels == list(range(1, 10)) and cfg.progress_bar is False
    assert cfg.temperature == 0.1  # untouched keys keep the stage defaults


def test_unknown_key_names_key_and_suggestion():
    with pytest.raises(ConfigError, match="batch_sise.*Did you mean batch_size"):
        load_config("music", overrides=["--batch_sise", "3"])


@pytest.mark.parametrize("key,value,match", [
    ("batch_size", "many", "batch_size.*int"),
    ("optimizer", "sgd", "optimizer.*'adam', 'adamw', 'lars'"),
    ("transforms_pitch", "1.5", "transforms_pitch.*probability"),
    ("n_channels", "1,2", "n_channels.*n_blocks"),
    ("last_block_kernel_size", "2", "last_block_kernel_size.*odd"),
    ("last_block_kernel_size", "-1", "last_block_kernel_size.*odd"),
    ("n_channels", "-128,128,256,256,256,256,256,512,512", r"'n_channels\[0\]' must be a positive integer, got -128"),
    ("output_size", "0", "'output_size' must be a positive integer, got 0"),
    ("first_block_params.out_channels", "-1", "'first_block_params.out_channels' must be a positive"),
])
def test_bad_values_are_clear_errors(key, value, match):
    with pytest.raises(ConfigError, match=match):
        load_config("music", overrides=[f"--{key}", value])


def test_missing_or_invalid_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config("music", tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config("music", bad)


def test_roundtrip_dict():
    cfg = load_config("music", overrides=["--batch_size", "4"])
    again = config_from_dict("music", config_to_dict(cfg))
    assert again == cfg and isinstance(again, MusicConfig)


def test_stored_dicts_rebuild_the_stage_config():
    """A checkpoint's config dict: another stage's keys are dropped, missing keys take the
    stage default, and the architecture part is read from any stage's dict."""
    cross = load_config("video", overrides=["--negatives", "cross"])
    stored = config_to_dict(cross)
    assert config_from_dict("video", {**stored, "head_hidden": 3}) == cross
    assert config_from_dict("music", {}) == load_config("music")
    assert encoder_config(stored) == encoder_config(load_config("music"))
    with pytest.raises(ConfigError, match="negatives"):
        config_from_dict("video", {**stored, "negatives": "some"})


def test_parse_overrides_flags():
    assert parse_overrides(["--a", "1", "--flag", "--b.c=2"]) == {"a": "1", "flag": "true", "b": {"c": "2"}}
    with pytest.raises(ConfigError):
        parse_overrides(["positional"])
