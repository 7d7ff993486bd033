"""The stage configurations as dataclasses: every field default is the paper's (the authors'
code's) value. ``config/<stage>.yaml`` repeat them (a test checks that they agree)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

__all__ = ["FirstBlockParams", "EncoderConfig", "TrainerConfig", "AugmentConfig", "MusicConfig",
           "VideoConfig", "TaggingConfig", "EvaluateConfig", "PrepareConfig", "STAGES"]


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
    # negative control: the training split pairs every video's audio with the frame features of
    # another video (a derangement fixed by seed); the validation split keeps the true pairs
    derange_pairs: bool = False


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
    tag_categories: Optional[str] = None  # `vcmr probe`: YAML of tag groups (as in evaluate)
    probe_keep: Literal["best", "last"] = "best"  # probe head: best validation PR-AUC, or the last epoch


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
    bootstrap_resamples: int = 1000  # paired bootstrap over songs for the differences between models


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
