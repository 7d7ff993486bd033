"""Stage 3: a tagging head trained on a (frozen) pre-trained SampleCNN.

    vcmr train tagging --dataset magnatagatune --dataset_dir data/mtat \
        --pretrained_ckpt_path runs/video/version_0/checkpoints/best.ckpt

The defaults are what the authors' stage 3 ran (their ``SupervisedLearning`` trainer and
``scripts/supervised.py``): the encoder's weights are frozen (``--freeze_encoder false``
fine-tunes all layers) but its BatchNorm layers stay in training mode, so they normalise with
batch statistics and their running statistics adapt to the tagging data
(``encoder_batchnorm: adapt``; ``frozen`` keeps the pre-trained statistics, as ``vcmr probe``
does). In their code this comes from Lightning 1.x calling ``train()`` on the whole module at
the start of fitting and after each validation, undoing the ``encoder.eval()`` of the
constructor; here every stage's module is put in training mode when fitting starts
(``vcmr.train.base.StageModule``) and the network, ``vcmr.models.stages.TaggingNet``, decides
what that means for the encoder. The head is Dropout(0.3) - Linear(512, 128) - ReLU -
Linear(128, n_tags), the loss BCE with logits, the optimiser AdamW (lr 1e-3, weight decay
1e-6) on the head, ReduceLROnPlateau (factor 0.1, ``lr_patience`` 5) and early stopping
(``patience`` 10) on the validation loss, at most 100 epochs of batches of 128, and
``best.ckpt`` is the epoch with the best validation PR-AUC. Training uses a random
``audio_length`` crop of each song (fresh every epoch); validation the middle crop, so its
numbers are comparable across epochs (the authors crop validation songs at random too).

The pre-trained checkpoint can be of stage 1, 2 or 3; its encoder architecture is used (the
config's architecture keys are overwritten, with a warning when they differ).
``--pretrained_ckpt_path none`` trains the head on a randomly initialised encoder (the lower
baseline of the paper's tables).

Checkpoint contents: ``hyper_parameters = {"stage": "tagging", "config": {...}, "tags": [...]}``;
the state dict holds the ``TaggingNet`` under ``net.``: ``net.encoder.*`` (SampleCNN) and
``net.head.*`` (tagging head).

Python (the demo calls this directly)::

    from vcmr.config import load_config
    from vcmr.train.tagging import train_tagging
    cfg = load_config("tagging", "config/tagging.yaml", {"dataset_dir": "data/mtat",
                                                       "pretrained_ckpt_path": "stage1.ckpt"})
    paths = train_tagging(cfg)   # {"log_dir", "best", "last", "tags"}
"""
from __future__ import annotations

import warnings
from typing import Any, Optional

import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping
from torch import nn
from torch.utils.data import DataLoader

from vcmr.config import TaggingConfig
from vcmr.data.tagging import CropDataset, collate_crops, load_split_from_config
from vcmr.io.checkpoint import resolve_encoder
from vcmr.metrics.tagging import tagging_metrics
from vcmr.models import SampleCNN
from vcmr.train.base import StageModule, StageRun, batch_sizes, fit_stage, loader

LR_FACTOR = 0.1


class TaggingModule(StageModule):
    """The stage-3 network (``net``: encoder + tagging head) trained with BCE on multi-hot tags.

    ``encoder``: weights to start from (``resolve_encoder``); ``stored``: the other
    hyper-parameters ``load_from_checkpoint`` passes. Which encoder parts train and whether its
    BatchNorm statistics adapt is the network's (``TaggingNet``). ``best.ckpt`` is the epoch
    with the best validation PR-AUC.
    """

    stage = "tagging"
    monitor, monitor_mode = "Valid/pr_auc", "max"

    def __init__(self, config: TaggingConfig | dict, tags: list[str],
                 encoder: Optional[SampleCNN] = None, **stored):
        super().__init__(config, stored, list(tags))
        self.tags = list(tags)
        if encoder is not None:
            self.net.encoder.load_state_dict(encoder.state_dict())
        self.loss = nn.BCEWithLogitsLoss()
        self._val_probs: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx: int):
        x, y = batch
        # Every process takes the same branch (or DDP's gradient averaging waits for the one
        # that skipped): skip when any process has no readable clip, or only one while
        # BatchNorm is in training mode (the last block's output is 1 sample long).
        smallest = min(batch_sizes(self, len(x) if x.numel() else 0))
        if smallest == 0:
            return self.skip_step()  # every file of a batch was unreadable (already warned)
        if smallest == 1 and self.net.encoder.training:
            warnings.warn("skipped a training batch of one clip: BatchNorm in training mode needs "
                          "at least two (use a batch_size that does not leave one song over)", stacklevel=2)
            return self.skip_step()
        loss = self.loss(self(x), y)
        self.log_loss("Train", loss, len(x))
        return loss

    def validation_step(self, batch, batch_idx: int):
        x, y = batch
        if x.numel() == 0:  # no collective operation here: a process may skip alone
            return None
        logits = self(x)
        loss = self.loss(logits, y)
        self.log_loss("Valid", loss, len(x))
        self._val_probs.append(torch.sigmoid(logits).detach())
        self._val_labels.append(y.detach())
        return loss

    def on_validation_epoch_end(self) -> None:
        # metrics over the whole validation set
        probs = self.gather_epoch(self._val_probs, len(self.tags))
        labels = self.gather_epoch(self._val_labels, len(self.tags))
        if probs.shape[0] == 0:
            return
        m = tagging_metrics(labels.cpu().numpy(), probs.float().cpu().numpy(), self.tags)
        # No tag with both classes (tiny data): 0 so the best-checkpoint logic still works.
        self.log("Valid/pr_auc", float(m["pr_auc"] or 0.0), prog_bar=True)
        self.log("Valid/roc_auc", float(m["roc_auc"] or 0.0))

    def configure_optimizers(self):
        opt = super().configure_optimizers()
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=LR_FACTOR,
                                                           patience=self.cfg.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "Valid/loss",
                                                   "interval": "epoch", "strict": False}}

    def stage_callbacks(self) -> list[Callback]:
        return [EarlyStopping(monitor="Valid/loss", mode="min", patience=self.cfg.patience,
                              check_on_train_epoch_end=False)]


def make_loaders(cfg: TaggingConfig, train_split, valid_split) -> tuple[DataLoader, DataLoader]:
    common = dict(sample_rate=cfg.sample_rate, audio_length=cfg.audio_length, cache_dir=cfg.cache_dir,
                  seed=cfg.seed)
    train = CropDataset(train_split, train=True, **common)
    valid = CropDataset(valid_split, train=False, **common)
    return loader(train, cfg, True, collate_crops), loader(valid, cfg, False, collate_crops)


def setup(cfg: TaggingConfig) -> StageRun:
    """Stage 3's module and loaders (after seeding: ``fit_stage``), on the encoder of
    ``pretrained_ckpt_path`` with its architecture."""
    encoder, cfg = resolve_encoder(cfg)
    train_split = load_split_from_config(cfg, "train")
    valid_split = load_split_from_config(cfg, "valid")
    module = TaggingModule(cfg, train_split.tags, encoder)
    return StageRun(module, *make_loaders(cfg, train_split, valid_split))


def train_tagging(cfg: TaggingConfig, callbacks=()) -> dict[str, Any]:
    """Train stage 3 from ``cfg``.

    Returns ``{"log_dir", "best", "last", "tags", "n_train", "n_valid"}`` (checkpoint paths of
    ``log_dir/checkpoints/best.ckpt`` and ``last.ckpt``; ``best`` = best validation PR-AUC).
    """
    run = fit_stage(cfg, setup, callbacks)
    return {**run.paths, "tags": run.module.tags, "n_train": len(run.train_loader.dataset),
            "n_valid": len(run.val_loader.dataset)}
