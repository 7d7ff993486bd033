"""Cross-key checks of a stage config that a single field type cannot express."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from vcmr.config.schema import EncoderConfig, PrepareConfig
from vcmr.errors import ConfigError

__all__ = ["validate", "validate_prepare", "MAX_SIZE"]

MAX_SIZE = 65536  # cap on every layer size and count (blocks, channels, hidden units)
_CAPPED = ("projection_dim", "lstm_layers", "video_hidden", "head_hidden", "bootstrap_resamples")


def validate(cfg: Any) -> None:
    """Cross-key checks that a single type cannot express."""
    if isinstance(cfg, EncoderConfig):
        _check_encoder_sizes(cfg)
        if len(cfg.n_channels) != cfg.n_blocks:
            raise ConfigError(
                f"config key 'n_channels' has {len(cfg.n_channels)} entries but n_blocks is "
                f"{cfg.n_blocks}: give one channel count per block")
        k = cfg.last_block_kernel_size
        if k < 0 or (k > 0 and k % 2 == 0):
            raise ConfigError(f"config key 'last_block_kernel_size' must be 0 (no last block) or an "
                              f"odd kernel size such as 1 (the authors' value), got {k}")
    for key in ("batch_size", "sample_rate", "audio_length", "projection_dim", "lstm_layers",
                "video_hidden", "head_hidden", "bootstrap_resamples"):
        if hasattr(cfg, key) and getattr(cfg, key) <= 0:
            raise ConfigError(f"config key '{key}' must be positive, got {getattr(cfg, key)}")
        if key in _CAPPED and hasattr(cfg, key) and getattr(cfg, key) > MAX_SIZE:
            raise ConfigError(f"config key '{key}' is {getattr(cfg, key)}, over vcmr's cap of "
                              f"{MAX_SIZE}: give a smaller value")
    for f in dataclasses.fields(cfg):
        if f.name.startswith("transforms_") and not 0.0 <= getattr(cfg, f.name) <= 1.0:
            raise ConfigError(f"config key '{f.name}' is a probability: give a value in [0, 1]")
    if isinstance(cfg, PrepareConfig):
        validate_prepare(cfg)


def _check_encoder_sizes(cfg: EncoderConfig) -> None:
    """Every channel count and kernel size is a positive integer (a negative one gave a torch
    traceback when the network was built)."""
    sizes = [("n_blocks", cfg.n_blocks), ("output_size", cfg.output_size),
             ("conv_kernel_size", cfg.conv_kernel_size), ("pool_size", cfg.pool_size),
             ("first_block_params.out_channels", cfg.first_block_params.out_channels),
             ("first_block_params.conv_size", cfg.first_block_params.conv_size)]
    sizes += [(f"n_channels[{i}]", c) for i, c in enumerate(cfg.n_channels)]
    for key, value in sizes:
        if value < 1:
            raise ConfigError(f"config key '{key}' must be a positive integer, got {value}")
        if value > MAX_SIZE:
            raise ConfigError(f"config key '{key}' is {value}, over vcmr's cap of {MAX_SIZE} "
                              f"(the paper's model uses at most 512): the file is damaged or hostile")


# PrepareConfig key -> (lowest allowed, lowest is allowed, what the key means)
_PREPARE_RANGES: dict[str, tuple[float, bool, str]] = {
    "window_seconds": (0, False, "seconds taken from the middle of each video"),
    "max_scene_seconds": (0, False, "longest scene allowed, in seconds"),
    "scene_threshold": (0, False, "ContentDetector threshold (the paper: 27)"),
    "scene_min_scene_len": (0, True, "shortest scene, in frames"),
    "scene_downscale_width": (2, True, "width of the frames scene detection sees, in pixels"),
    "n_segments": (1, True, "audio segments per video"),
    "segment_seconds": (0, False, "length of one audio segment, in seconds"),
    "frames_per_second": (1, True, "frames sampled per second of video"),
    "encoder_batch_size": (0, True, "frames per encoder batch, 0 = measure the best"),
    "workers": (-1, True, "decoding processes, -1 = auto"),
    "ray_num_cpus": (1, True, "CPUs of the local Ray instance"),
    "ray_actors": (1, True, "frame-encoder actors"),
    "ray_gpus_per_actor": (0, True, "GPUs per encoder actor"),
    "ray_encoder_cpus": (0, True, "CPUs each CPU encoder actor reserves"),
    "ray_encoder_threads": (1, True, "torch threads of each CPU encoder actor"),
    "ray_decode_cpus": (0, False, "CPUs each decode task reserves"),
    "ray_downloads": (1, True, "download tasks at once"),
    "ray_max_in_flight": (1, True, "videos submitted and not yet recorded"),
}


def validate_prepare(cfg: "PrepareConfig") -> None:
    """Every number of a PrepareConfig is finite and in its range (nan, inf or a negative
    threshold would otherwise be accepted and give empty or wrong outputs)."""
    for key, (low, inclusive, meaning) in _PREPARE_RANGES.items():
        value = getattr(cfg, key)
        if value is None:  # an optional key left to its automatic choice
            continue
        ok = math.isfinite(value) and (value >= low if inclusive else value > low)
        if not ok:
            bound = f">= {low}" if inclusive else f"> {low}"
            raise ConfigError(f"config key '{key}' ({meaning}) must be a finite number {bound}, "
                              f"got {value}")
    if cfg.scene_threshold > 255:
        raise ConfigError(f"config key 'scene_threshold' must be at most 255 (ContentDetector "
                          f"scores lie in 0-255), got {cfg.scene_threshold}")
    if float(cfg.window_seconds) != int(cfg.window_seconds):
        raise ConfigError(f"config key 'window_seconds' must be a whole number of seconds (one "
                          f"feature row per second), got {cfg.window_seconds}")
    if cfg.engine != "ray":
        defaults = PrepareConfig()
        given = [f.name for f in dataclasses.fields(cfg) if f.name.startswith("ray_")
                 and getattr(cfg, f.name) != getattr(defaults, f.name)]
        if given:
            raise ConfigError(f"config keys {', '.join(given)} work only with engine ray: add "
                              f"--engine ray (or engine: ray in the YAML file)")
