"""Stage 2: video-conditioned pre-training.

    vcmr train video --dataset_dir data/av --audio_encoder_ckpt_path runs/music/version_0/checkpoints/best.ckpt

The stage-1 SampleCNN (weights of the first ``freeze_blocks`` blocks frozen; their BatchNorm
statistics adapt as in the authors' code, or stay with ``encoder_batchnorm: frozen``) and an
audio projector (512-512-128, no biases) are aligned with a video branch (2-layer LSTM over
per-second frame features, flatten, Linear-ReLU to 512, projector to 128). The loss is the authors' SimCLR
NT-Xent on the audio and video embeddings together (``negatives: all``: audio-audio and
video-video negatives included) or cross-modal InfoNCE (``negatives: cross``), with negatives
gathered from all processes. The optimiser defaults are the authors' (AdamW, lr 5e-4, weight
decay 0.01). Each validation epoch logs Recall@1/5/10 and median rank over the whole
validation set (gathered from all processes, which may hold different numbers of pairs).

Training crops are drawn from ``(seed, epoch, segment index)`` with the epoch carried to the
data-loader workers with each index (``vcmr.data.sampling``): fresh crops every epoch,
persistent workers included. A training batch is skipped on every process when one process
holds fewer than two pairs (no negatives; BatchNorm needs two clips), so none waits for
another in the loss's all-gather.

``derange_pairs: true`` is the negative control: training pairs each video's audio with another
video's features (``vcmr.data.audio_visual.derangement``), validation keeps the true pairs, so
its loss and retrieval show that nothing real was aligned.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from vcmr.config import VideoConfig, encoder_config
from vcmr.data.audio_visual import AudioVisualDataset
from vcmr.errors import VcmrError
from vcmr.io.checkpoint import load_encoder
from vcmr.io.foreign import adopt_encoder_architecture
from vcmr.losses import AudioVideoNTXent
from vcmr.metrics.retrieval import retrieval_metrics
from vcmr.models import SampleCNN, video_seconds
from vcmr.train.base import StageModule, StageRun, batch_sizes, fit_stage, loader


def initial_encoder(cfg: VideoConfig) -> SampleCNN | None:
    """The stage-1 encoder from ``audio_encoder_ckpt_path``, or None with ``from_scratch``."""
    if cfg.audio_encoder_ckpt_path:
        if not Path(cfg.audio_encoder_ckpt_path).is_file():
            raise VcmrError(f"audio_encoder_ckpt_path {cfg.audio_encoder_ckpt_path!r} not found: give "
                            f"a stage-1 checkpoint (vcmr train music writes …/checkpoints/best.ckpt)")
        encoder, _ = load_encoder(cfg.audio_encoder_ckpt_path, expected=encoder_config(cfg))
        return encoder
    if not cfg.from_scratch:
        raise VcmrError("stage 2 starts from a stage-1 encoder: give --audio_encoder_ckpt_path CKPT, "
                        "or --from_scratch true to train a new encoder (ablation)")
    return None


class VideoModule(StageModule):
    """The stage-2 network (``net``) trained with the audio-video contrastive loss; the encoder
    starts from the stage-1 checkpoint unless ``load_audio_encoder`` is False. ``stored``: the
    other hyper-parameters ``load_from_checkpoint`` passes (then the weights come from the
    checkpoint itself)."""

    stage = "video"

    def __init__(self, config: VideoConfig | dict, load_audio_encoder: bool = True, **stored):
        super().__init__(config, stored)
        encoder = initial_encoder(self.cfg) if load_audio_encoder and not stored else None
        if encoder is not None:
            self.net.encoder.load_state_dict(encoder.state_dict())
        self.loss = AudioVideoNTXent(self.cfg.temperature, self.cfg.negatives)
        self._val_audio: list[torch.Tensor] = []
        self._val_video: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx: int):
        audio, video, _ = batch
        if min(batch_sizes(self, audio.shape[0])) < 2:
            return self.skip_step()  # no negatives, BatchNorm cannot normalise one clip: all skip
        loss = self.loss(self.net.embed_audio(audio), self.net.embed_video(video))
        self.log_loss("Train", loss, audio.shape[0])
        return loss

    def validation_step(self, batch, batch_idx: int):
        audio, video, _ = batch
        za, zv = self.net.embed_audio(audio), self.net.embed_video(video)
        loss = self.loss(za, zv)
        self.log_loss("Valid", loss, audio.shape[0])
        self._val_audio.append(za.detach())
        self._val_video.append(zv.detach())
        return loss

    def on_validation_epoch_end(self) -> None:
        # metrics over the whole validation set
        za = self.gather_epoch(self._val_audio, self.cfg.projection_dim)
        zv = self.gather_epoch(self._val_video, self.cfg.projection_dim)
        if za.shape[0] == 0:
            return
        metrics = retrieval_metrics(za, zv)
        n = metrics.pop("n")
        self.log_dict({f"Valid/{k}": v for k, v in metrics.items()}, sync_dist=False, rank_zero_only=True)
        self.log("Valid/n_pairs", n, rank_zero_only=True)


def make_loaders(cfg: VideoConfig) -> tuple[DataLoader, DataLoader]:
    common = dict(sample_rate=cfg.sample_rate, audio_length=cfg.audio_length,
                  valid_fraction=cfg.valid_fraction, seed=cfg.seed)
    train = AudioVisualDataset(cfg.dataset_dir, "train", derange_pairs=cfg.derange_pairs, **common)
    valid = AudioVisualDataset(cfg.dataset_dir, "valid", **common)
    return loader(train, cfg, True), loader(valid, cfg, False)


def check_pairs(cfg: VideoConfig, feature_dim: int) -> None:
    """The config's video sizes against the prepared data (0: read from it)."""
    if cfg.feature_dim not in (0, feature_dim):
        raise VcmrError(f"feature_dim={cfg.feature_dim} but the prepared data in {cfg.dataset_dir} "
                        f"has {feature_dim}-D features; leave feature_dim at 0 to read it from the data")
    clip = video_seconds(cfg.audio_length, cfg.sample_rate)
    if cfg.video_crop_seconds not in (0, clip):
        raise VcmrError(f"video_crop_seconds={cfg.video_crop_seconds} but training pairs each "
                        f"{cfg.audio_length}-sample crop at {cfg.sample_rate} Hz with {clip} s of "
                        f"video; leave video_crop_seconds at 0")


def setup(cfg: VideoConfig) -> StageRun:
    """Stage 2's loaders and module (after seeding: ``fit_stage``), the feature size read from
    the prepared data. A resumed run (``ckpt_path``) takes its weights from that checkpoint."""
    if not cfg.ckpt_path:  # an original-VCMR or CLMR stage-1 file brings its own architecture
        cfg = adopt_encoder_architecture(cfg, cfg.audio_encoder_ckpt_path)
    train_loader, val_loader = make_loaders(cfg)
    check_pairs(cfg, train_loader.dataset.feature_dim)
    cfg.feature_dim = train_loader.dataset.feature_dim
    module = VideoModule(cfg, load_audio_encoder=not cfg.ckpt_path)
    return StageRun(module, train_loader, val_loader)


def train_video(cfg: VideoConfig, callbacks=()) -> dict[str, Any]:
    """Train stage 2 from ``cfg``; returns the paths of the log folder and checkpoints.
    ``callbacks``: extra Lightning callbacks."""
    return fit_stage(cfg, setup, callbacks).paths
