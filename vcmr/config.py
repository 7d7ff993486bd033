"""Typed stage configurations: defaults here, YAML files and ``--key value`` overrides on top.

One source of truth per stage: a dataclass whose field defaults are the paper's values.
``config/<stage>.yaml`` repeat those defaults for people who want to copy and edit a
file (a test checks that they agree). A YAML file may set only some keys; every other key
keeps the stage default. Unknown keys and wrong types are errors that name the key.

    cfg = load_config("music", "config/music.yaml", ["--batch_size", "32"])
    cfg.batch_size            # 32
    config_to_dict(cfg)       # plain dict, stored in every checkpoint
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from vcmr.config_authors import is_authors_config, translate_config
from vcmr.errors import ConfigError  # re-exported: defined below every module that raises it

__all__ = [
    "ConfigError", "EncoderConfig", "MusicConfig", "VideoConfig", "TaggingConfig",
    "EvaluateConfig", "PrepareConfig", "STAGES", "load_config", "config_to_dict",
    "config_from_dict", "parse_overrides", "encoder_config",
]


@dataclass
class FirstBlockParams:
    out_channels: int = 128
    conv_size: int = 5


@dataclass
class EncoderConfig:
    """SampleCNN architecture and its input (the only keys needed to rebuild an encoder)."""
    sample_rate: int = 16000
    audio_length: int = 98415
    n_blocks: int = 9
    n_channels: list[int] = field(
        default_factory=lambda: [128, 128, 256, 256, 256, 256, 256, 512, 512])
    first_block_params: FirstBlockParams = field(default_factory=FirstBlockParams)
    conv_kernel_size: int = 3
    pool_size: int = 3
    activation: Literal["relu", "leaky_relu", "gelu", "silu"] = "relu"
    output_size: int = 512
    # After the n_blocks blocks, the authors' SampleCNN has a last block Conv1d(kernel 1, out
    # output_size) - BatchNorm - activation whose output is the embedding (odd kernel size;
    # CLMR's is 3; 0 = no last block: the last pooled block's output is the embedding).
    last_block_kernel_size: int = 1


@dataclass
class TrainerConfig:
    """Keys shared by every training stage (names follow the reference configs)."""
    dataset_dir: str = "data"
    batch_size: int = 64
    m_epochs: int = 50
    max_steps: int = -1  # -1: no step limit, m_epochs decides
    optimizer: Literal["adam", "adamw", "lars"] = "adamw"
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    val_freq: int = 1  # validate every val_freq epochs
    log_freq: int = 10  # log every log_freq steps
    workers: int = 4
    seed: int = 42
    ckpt_path: Optional[str] = None  # resume training from this Lightning checkpoint
    log_dir: str = "runs"
    experiment_name: str = "vcmr"
    experiment_version: Optional[str] = None  # None: next free version_N
    accelerator: str = "auto"  # cpu, gpu, mps, auto
    devices: str = "auto"  # "auto", a count ("2") or a list ("0,1")
    num_nodes: int = 1
    strategy: str = "auto"  # "auto" picks DDP when devices > 1
    precision: str = "auto"  # auto: 16-mixed on CUDA GPUs, 32-true otherwise; or e.g. 32-true, bf16-mixed
    sync_batchnorm: bool = True  # BatchNorm statistics over all processes (DDP on CUDA GPUs only)
    gradient_clip_val: float = 0.0
    limit_train_batches: float = 1.0
    limit_val_batches: float = 1.0
    progress_bar: bool = True
    deterministic: bool = False


@dataclass
class AugmentConfig:
    """Probabilities of CLMR's waveform augmentations (0 disables an effect)."""
    transforms_polarity: float = 0.8
    transforms_noise: float = 0.01
    transforms_gain: float = 0.3
    transforms_filters: float = 0.8
    transforms_delay: float = 0.3
    transforms_pitch: float = 0.6
    transforms_reverb: float = 0.6


@dataclass
class MusicConfig(AugmentConfig, TrainerConfig, EncoderConfig):
    """Stage 1: SimCLR on raw audio (``config/music.yaml``)."""
    experiment_name: str = "music"
    projection_dim: int = 128  # the projector's Linear layers have no bias, as the authors'
    temperature: float = 0.1
    valid_fraction: float = 0.1
    min_audio_seconds: float = 0.0  # files shorter than this are skipped; shorter than the excerpt are zero-padded
    excerpt_seconds: float = 15.0  # audio read per item, from which both views are cropped independently (the reference's 15 s segment); 0: 2 x the model input


@dataclass
class VideoConfig(TrainerConfig, EncoderConfig):
    """Stage 2: audio <-> video contrastive pre-training (``config/video.yaml``)."""
    experiment_name: str = "video"
    batch_size: int = 128
    m_epochs: int = 50
    learning_rate: float = 5e-4
    audio_encoder_ckpt_path: Optional[str] = None
    from_scratch: bool = False  # explicit opt-in to train without a stage-1 checkpoint
    freeze_blocks: int = 4  # first N blocks of SampleCNN (the stem counts as block 0) frozen
    # adapt: the frozen blocks' BatchNorm layers run in training mode (batch statistics, running
    # statistics move), as the authors' code ran; frozen: they keep the stage-1 statistics.
    encoder_batchnorm: Literal["adapt", "frozen"] = "adapt"
    projection_dim: int = 128  # both projectors (audio and video) without bias, as the authors'
    temperature: float = 0.1
    # all: SimCLR NT-Xent on the 2N audio and video embeddings (2N-2 negatives per anchor,
    # audio-audio and video-video included), as the authors trained; cross: CLIP-style InfoNCE
    # with the N-1 other-modality negatives only.
    negatives: Literal["all", "cross"] = "all"
    lstm_layers: int = 2
    lstm_dropout: float = 0.1
    lstm_hidden: int = 0  # 0: the feature dimension, as in the paper
    video_hidden: int = 512  # Linear after the flattened LSTM output
    feature_dim: int = 0  # per-second frame feature size; 0: read from the prepared data
    video_crop_seconds: int = 0  # seconds of frame features per clip; 0: the audio crop rounded to whole seconds
    valid_fraction: float = 0.1
    segment_seconds: int = 15


@dataclass
class TaggingConfig(TrainerConfig, EncoderConfig):
    """Stage 3: tagging head on a (frozen) encoder (``config/tagging.yaml``)."""
    experiment_name: str = "tagging"
    dataset: Literal["magnatagatune", "mtg-jamendo"] = "magnatagatune"
    split: str = "pons2017"  # MagnaTagATune: pons2017 | won2020; MTG-Jamendo: split-0 .. split-4
    subset_category: str = "moodtheme"  # MTG-Jamendo category file: moodtheme, genre, instrument, top50tags
    pretrained_ckpt_path: Optional[str] = None  # "none" or null: random encoder
    freeze_encoder: bool = True
    # With a frozen encoder: adapt = its BatchNorm layers run in training mode (batch statistics,
    # running statistics follow the tagging data), as in the authors' stage 3; frozen = eval
    # mode, the pre-trained statistics kept. Encoder weights stay fixed either way.
    encoder_batchnorm: Literal["adapt", "frozen"] = "adapt"
    optimizer: Literal["adam", "adamw", "lars"] = "adamw"  # on the head (all of it if not frozen)
    learning_rate: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 128  # per process (GPU)
    m_epochs: int = 100
    head_hidden: int = 128
    head_dropout: float = 0.3
    patience: int = 10  # early stopping on validation loss
    lr_patience: int = 5  # ReduceLROnPlateau (factor 0.1) on validation loss
    cache_dir: Optional[str] = None  # decoded, resampled audio cache (see `vcmr cache-audio`)
    results_dir: str = "results"  # `vcmr probe` writes <results_dir>/<dataset>/<model_name>/probe_*
    model_name: Optional[str] = None  # None: the checkpoint's file name ("random" without one)
    probe_head: Literal["linear", "mlp"] = "linear"  # mlp: the stage-3 head on cached embeddings
    probe_epochs: int = 50  # full passes over the cached embeddings (early stopping on valid loss)


@dataclass
class EvaluateConfig(EncoderConfig):
    """Stage 4: song-level tagging evaluation (``config/evaluate.yaml``)."""
    dataset: Literal["magnatagatune", "mtg-jamendo"] = "magnatagatune"
    dataset_dir: str = "data"
    split: str = "pons2017"
    subset_category: str = "moodtheme"
    subset: Literal["train", "valid", "test"] = "test"
    overlap_ratios: list[float] = field(default_factory=lambda: [0.0, 0.5])
    aggregation: Literal["average", "max", "majority"] = "average"
    batch_size: int = 32
    workers: int = 2
    results_dir: str = "results"
    model_name: Optional[str] = None
    accelerator: str = "auto"
    cache_dir: Optional[str] = None
    tag_categories: Optional[str] = None  # YAML of tag groups; default: config/mtat_tag_categories.yaml
    seed: int = 42
    ckpt_paths: list[str] = field(default_factory=list)  # stage-3 checkpoints evaluated (--ckpt adds more)
    ckpt_names: list[str] = field(default_factory=list)  # their result names, in order (default: from the paths)


@dataclass
class PrepareConfig:
    """Video preparation (``config/prepare.yaml``): numbers from the paper."""
    window_seconds: float = 120.0
    max_scene_seconds: float = 30.0
    scene_threshold: float = 27.0
    scene_min_scene_len: int = 15  # frames
    scene_downscale_width: int = 160
    sample_rate: int = 16000
    n_segments: int = 8
    segment_seconds: float = 15.0
    frames_per_second: int = 5
    frame_encoder: str = "clip"
    frame_encoder_path: Optional[str] = None
    encoder_batch_size: int = 0  # 0: the encoder's measured best batch for the device
    device: str = "auto"
    workers: int = -1  # -1: auto (0 on CPU, where the encoder uses every core)
    too_short_rule: Literal["drop", "keep_shorter"] = "drop"
    # engine: where the work runs; the ray_* keys (engine ray only) change no output
    engine: Literal["local", "ray"] = "local"
    ray_address: Optional[str] = None  # None: start a local instance; "auto" or HOST:PORT: join
    ray_num_cpus: Optional[int] = None  # local instance only; None: all of this machine's
    ray_actors: Optional[int] = None  # encoder actors; None: one per GPU share, else per node
    ray_gpus_per_actor: Optional[float] = None  # None: 1 when the cluster has GPUs, else 0
    ray_encoder_cpus: float = 1.0  # CPUs each CPU encoder actor reserves in Ray's accounting
    ray_encoder_threads: Optional[int] = None  # torch threads of a CPU actor; None: its node's
    #   cores shared by the actors there
    ray_decode_tasks: Optional[bool] = None  # decode in tasks that feed the actors; None: with
    #   GPU actors only (CPU actors then decode their own videos)
    ray_decode_cpus: float = 1.0  # CPUs each decode task reserves
    ray_downloads: int = 4  # download tasks at once
    ray_max_in_flight: Optional[int] = None  # None: decode slots (if any) + what actors hold


STAGES: dict[str, type] = {
    "music": MusicConfig, "video": VideoConfig, "tagging": TaggingConfig,
    "evaluate": EvaluateConfig, "prepare": PrepareConfig,
}


# ---------------------------------------------------------------------------- type checking
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert ``value`` to type ``tp`` or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Union:
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                pass
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return _build(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown_key_error(cls: type, key: str, prefix: str = "") -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ConfigError(
        f"unknown config key '{prefix}{key}' for {cls.__name__}.{hint} "
        f"Valid keys: {', '.join(sorted(names))}")


def _build(cls: type, values: dict[str, Any], prefix: str = "", base: Any = None) -> Any:
    obj = base if base is not None else cls()
    hints = _hints(cls)
    for key, value in values.items():
        if key not in hints:
            raise _unknown_key_error(cls, key, prefix)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = _build(type(current), value, prefix=f"{prefix}{key}.", base=current)
        setattr(obj, key, _coerce(prefix + key, value, hints[key]))
    return obj


# ---------------------------------------------------------------------------- public functions
def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``["--key", "value", "--a.b=3"]`` into ``{"key": "value", "a": {"b": "3"}}``.

    Values stay strings (types are applied by the dataclass); a key without a value is True.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}: overrides are written --key value")
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        i += 1
    return out


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found (give an existing YAML file with --config)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of key: value")
    return data


def load_config(stage: str, path: str | Path | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> Any:
    """Stage defaults, then the YAML file at ``path``, then ``overrides``; validated."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    values = read_yaml(path) if path else {}
    if is_authors_config(values):  # the authors' files are translated key by key
        values = translate_config(stage, values, str(path))
    if overrides:
        extra = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        if is_authors_config(extra):  # e.g. --n_cuda 0 given to a seed script
            extra = translate_config(stage, extra, "command line")
        values = _merge(values, extra)
    if isinstance(values.get("optimizer"), str):  # case-insensitive: 'Adam', 'LARS' as in the
        values = {**values, "optimizer": values["optimizer"].lower()}  # authors' files
    cfg = _build(STAGES[stage], values)
    validate(cfg)
    return cfg


def validate(cfg: Any) -> None:
    """Cross-key checks that a single type cannot express."""
    if isinstance(cfg, EncoderConfig):
        if len(cfg.n_channels) != cfg.n_blocks:
            raise ConfigError(
                f"config key 'n_channels' has {len(cfg.n_channels)} entries but n_blocks is "
                f"{cfg.n_blocks}: give one channel count per block")
        k = cfg.last_block_kernel_size
        if k < 0 or (k > 0 and k % 2 == 0):
            raise ConfigError(f"config key 'last_block_kernel_size' must be 0 (no last block) or an "
                              f"odd kernel size such as 1 (the authors' value), got {k}")
    for key in ("batch_size", "sample_rate", "audio_length"):
        if hasattr(cfg, key) and getattr(cfg, key) <= 0:
            raise ConfigError(f"config key '{key}' must be positive, got {getattr(cfg, key)}")
    for f in dataclasses.fields(cfg):
        if f.name.startswith("transforms_") and not 0.0 <= getattr(cfg, f.name) <= 1.0:
            raise ConfigError(f"config key '{f.name}' is a probability: give a value in [0, 1]")
    if isinstance(cfg, PrepareConfig):
        validate_prepare(cfg)


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
    import math
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


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(stage: str, values: dict[str, Any]) -> Any:
    """Rebuild a stage config from the dict a checkpoint or model file stores. Keys the stage
    does not have (another stage's, or training options of another vcmr) are dropped; keys
    the dict lacks take the stage default. The file's format version says the keys describe
    this vcmr's architecture (``vcmr.io.checkpoint``)."""
    cls = STAGES[stage]
    names = {f.name for f in dataclasses.fields(cls)}
    return _build(cls, {k: v for k, v in values.items() if k in names})


def encoder_config(cfg: Any) -> EncoderConfig:
    """The architecture part of any stage config, or of a stored config dict."""
    src = dict(cfg) if isinstance(cfg, dict) else dataclasses.asdict(cfg)
    names = {f.name for f in dataclasses.fields(EncoderConfig)}
    return _build(EncoderConfig, {k: v for k, v in src.items() if k in names})
