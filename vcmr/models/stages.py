"""The three stage networks, each defined once, and the one factory that builds them.

| stage | network | parts (state-dict prefixes) |
|---|---|---|
| ``music`` (music pre-training) | ``MusicNet`` | ``encoder`` (SampleCNN), ``projector`` |
| ``video`` (audio-video pre-training) | ``AudioVideoNet`` | ``encoder``, ``projector`` (audio), ``video_encoder`` (VideoEncoder), ``video_projector`` |
| ``tagging`` (tagging) | ``TaggingNet`` | ``encoder``, ``head`` |

``build(stage, cfg, tags)`` makes one from its stage config (the dataclass, or the dict a
checkpoint or model file stores) and, for tagging, the tag names: every size comes from the
config, none from weight shapes. The state dict of a stage network is what an exported model
file holds, and what a training checkpoint holds under ``net.``; ``load_weights`` loads one
with an error that names the part and the weight that do not fit.

Which encoder blocks train, and whether their BatchNorm statistics follow the data
(``encoder_batchnorm``), is decided here, by the network, from its config
(``SampleCNN.freeze_blocks``); the training modules only call ``train()``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from vcmr.config import (ConfigError, MusicConfig, TaggingConfig, VideoConfig, config_from_dict,
                         encoder_config)
from vcmr.errors import CheckpointError
from vcmr.models.heads import projector, tagging_head
from vcmr.models.sample_cnn import SampleCNN
from vcmr.models.video import VideoEncoder, video_seconds

__all__ = ["MusicNet", "AudioVideoNet", "TaggingNet", "NETWORKS", "build", "stage_config",
           "load_weights", "check_weights", "build_loaded", "MAX_PARAMETERS"]


class MusicNet(nn.Module):
    """Stage 1: SampleCNN encoder + SimCLR projector. ``forward`` gives the encoder features."""

    def __init__(self, cfg: MusicConfig):
        super().__init__()
        self.encoder = SampleCNN(encoder_config(cfg))
        self.projector = projector(cfg.output_size, cfg.output_size, cfg.projection_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class AudioVideoNet(nn.Module):
    """Stage 2: the audio branch (encoder, projector) and the video branch (LSTM over per-second
    frame features, projector), both ending in the joint space of ``projection_dim``.

    The first ``freeze_blocks`` encoder blocks have no gradients; with ``encoder_batchnorm:
    adapt`` their BatchNorm statistics still follow the data in training mode.
    """

    def __init__(self, cfg: VideoConfig):
        super().__init__()
        if cfg.feature_dim <= 0:
            raise ConfigError("feature_dim is not set: it is read from the prepared data by "
                              "train_video(); set --feature_dim when building the network directly")
        self.encoder = SampleCNN(encoder_config(cfg))
        self.encoder.freeze_blocks(cfg.freeze_blocks, cfg.encoder_batchnorm)
        self.projector = projector(cfg.output_size, cfg.output_size, cfg.projection_dim)
        self.video_encoder = VideoEncoder(cfg.feature_dim, clip_seconds(cfg), cfg.lstm_layers,
                                          cfg.lstm_dropout, cfg.video_hidden, hidden=cfg.lstm_hidden or None)
        self.video_projector = projector(cfg.video_hidden, cfg.video_hidden, cfg.projection_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, audio_length) waveforms -> (batch, projection_dim) joint-space embeddings."""
        return self.projector(self.encoder(x))

    def embed_video(self, v: torch.Tensor) -> torch.Tensor:
        """(batch, seconds, feature_dim) frame features -> (batch, projection_dim)."""
        return self.video_projector(self.video_encoder(v))


def clip_seconds(cfg: VideoConfig) -> int:
    """Seconds of frame features per clip: ``video_crop_seconds``, or 0 = the audio crop
    rounded to whole seconds (what training pairs with each crop)."""
    return cfg.video_crop_seconds or video_seconds(cfg.audio_length, cfg.sample_rate)


class TaggingNet(nn.Module):
    """Stage 3: encoder + tagging head; ``forward`` gives logits (batch, n_tags).

    With ``freeze_encoder`` the encoder has no gradients and runs without autograd; its
    BatchNorm layers follow the module's mode (``encoder_batchnorm: adapt``) or stay in eval
    mode (``frozen``).
    """

    def __init__(self, cfg: TaggingConfig, n_tags: int):
        super().__init__()
        self.encoder = SampleCNN(encoder_config(cfg))
        self.head = tagging_head(cfg.output_size, n_tags, cfg.head_hidden, cfg.head_dropout)
        self.encoder_trains = not cfg.freeze_encoder
        if cfg.freeze_encoder:
            self.encoder.freeze_blocks(len(self.encoder.blocks), cfg.encoder_batchnorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.encoder_trains):
            h = self.encoder(x)
        return self.head(h)


NETWORKS: dict[str, type] = {"music": MusicNet, "video": AudioVideoNet, "tagging": TaggingNet}
CONFIGS: dict[str, type] = {"music": MusicConfig, "video": VideoConfig, "tagging": TaggingConfig}


def stage_config(stage: str, cfg: Any) -> Any:
    """The stage config dataclass of ``cfg`` (returned as is) or of a stored config dict."""
    if stage not in NETWORKS:
        raise ConfigError(f"unknown stage {stage!r}: a network is built for music, video or tagging")
    return cfg if isinstance(cfg, CONFIGS[stage]) else config_from_dict(stage, cfg)


def build(stage: str, cfg: Any, tags: list[str] | None = None) -> nn.Module:
    """The network of ``stage`` ("music", "video" or "tagging") from its config (dataclass or stored
    dict); ``tags``, the tag names, are needed for "tagging" (the head predicts one logit each)."""
    cfg = stage_config(stage, cfg)
    if stage == "tagging":
        if not tags:
            raise ConfigError("a tagging network needs its tag names (one head output per tag)")
        return TaggingNet(cfg, len(tags))
    return NETWORKS[stage](cfg)


PART_NAMES = {"encoder": "encoder", "projector": "projector", "video_encoder": "video encoder",
              "video_projector": "video projector", "head": "tagging head"}


MAX_PARAMETERS = 2_000_000_000  # a network whose config implies more is refused before building


def build_loaded(make: Callable[[], nn.Module], state_dict: dict[str, torch.Tensor], source: str,
                 prefix: str = "") -> nn.Module:
    """``make()`` with the weights of ``state_dict`` loaded, checked before any memory is spent:
    the network is first built on the meta device (shapes only), its parameter count capped at
    MAX_PARAMETERS and every shape compared with the stored tensors; only then is it built."""
    try:
        with torch.device("meta"):
            shapes = make()
    except ConfigError as e:  # a size out of range (negative, over the cap)
        raise CheckpointError(f"{source}: its stored architecture config is invalid: {e}") from None
    count = sum(p.numel() for p in shapes.parameters())
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{source}: its stored config describes a network of {count:.3g} "
                              f"parameters, over vcmr's cap of {MAX_PARAMETERS:.0e} (the paper's "
                              f"model has about 2.5e6); the file is damaged or hostile")
    check_weights(shapes, state_dict, source, prefix)
    module = make()
    load_weights(module, state_dict, source, prefix)
    return module


def load_weights(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str,
                 prefix: str = "") -> None:
    """Load a stage network's weights (or, with ``prefix="encoder."``, an encoder's from a
    stage network's state dict), after ``check_weights``; nothing is loaded on an error."""
    given = check_weights(module, state_dict, source, prefix)
    module.load_state_dict({k[len(prefix):]: v for k, v in given.items()})


def check_weights(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str,
                  prefix: str = "") -> dict[str, torch.Tensor]:
    """The weights of ``state_dict`` under ``prefix`` if they fit ``module`` (which may live on
    the meta device). A missing part, a missing or extra weight, or a shape the config does
    not give is a CheckpointError naming it."""
    expected = {prefix + k: v for k, v in module.state_dict().items()}
    given = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
    parts = list(dict.fromkeys(k.split(".")[0] for k in expected))
    for part in parts:
        want = [k for k in expected if k.split(".")[0] == part]
        have = [k for k in given if k.split(".")[0] == part]
        if not have:
            raise CheckpointError(f"{source} lacks the weight {want[0]!r} its stage needs; the file "
                                  f"is incomplete or was not written by vcmr")
        problem = _mismatch(want, have, given, expected)
        if problem:
            raise CheckpointError(
                f"the {PART_NAMES.get(part, part)} in {source} does not match the configured "
                f"architecture: {problem}. The architecture keys stored with the weights (n_blocks, "
                f"n_channels, first_block_params, output_size, last_block_kernel_size, ...) must "
                f"describe them; use the file as written or another one")
    extra = [k for k in given if k.split(".")[0] not in parts]
    if extra:
        raise CheckpointError(f"{source} holds weights that are not part of its stage's network "
                              f"({extra[0]!r}); the file is damaged or names the wrong stage")
    check_finite_weights(given, source)
    return given


def check_finite_weights(state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Refuse NaN/infinite weights and negative BatchNorm running variances (either makes
    every embedding NaN); the error names ``source`` and the first bad tensor."""
    for key, value in state_dict.items():
        if not torch.is_tensor(value) or not value.is_floating_point():
            continue
        if not torch.isfinite(value).all():
            problem = "holds NaN or infinite values"
        elif key.endswith("running_var") and (value < 0).any():
            problem = "is a BatchNorm running variance with negative entries"
        else:
            continue
        raise CheckpointError(f"{source}: the weight {key!r} {problem}, so every embedding would be "
                              f"NaN; the training diverged or the file is damaged. Use an earlier "
                              f"checkpoint or export the model again")


def _mismatch(want: list[str], have: list[str], given: dict, expected: dict) -> str | None:
    missing = [k for k in want if k not in given]
    if missing:
        return f"weight {missing[0]!r} is missing"
    unknown = [k for k in have if k not in expected]
    if unknown:
        return f"weight {unknown[0]!r} is not in it"
    for k in want:
        if tuple(given[k].shape) != tuple(expected[k].shape):
            return (f"{k} has shape {tuple(given[k].shape)} in the file, "
                    f"{tuple(expected[k].shape)} in the architecture")
    return None
