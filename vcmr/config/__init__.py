"""Typed stage configurations: defaults here, YAML files and ``--key value`` overrides on top.

One source of truth per stage: a dataclass whose field defaults are the paper's values.
``config/<stage>.yaml`` repeat those defaults for people who want to copy and edit a
file (a test checks that they agree). A YAML file may set only some keys; every other key
keeps the stage default. Unknown keys and wrong types are errors that name the key.

    cfg = load_config("music", "config/music.yaml", ["--batch_size", "32"])
    cfg.batch_size            # 32
    config_to_dict(cfg)       # plain dict, stored in every checkpoint
"""
from vcmr.config.checks import validate, validate_prepare
from vcmr.config.loading import (config_from_dict, config_to_dict, encoder_config, load_config,
                                 parse_overrides, read_yaml)
from vcmr.config.schema import (STAGES, AugmentConfig, EncoderConfig, EvaluateConfig,
                                FirstBlockParams, MusicConfig, PrepareConfig, TaggingConfig,
                                TrainerConfig, VideoConfig)
from vcmr.errors import ConfigError

__all__ = [
    "ConfigError", "FirstBlockParams", "EncoderConfig", "TrainerConfig", "AugmentConfig",
    "MusicConfig", "VideoConfig", "TaggingConfig", "EvaluateConfig", "PrepareConfig", "STAGES",
    "load_config", "read_yaml", "parse_overrides", "config_to_dict", "config_from_dict",
    "encoder_config", "validate", "validate_prepare",
]
