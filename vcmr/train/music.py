"""Stage 1: CLMR-style contrastive pre-training of a SampleCNN on raw audio.

    vcmr train music --dataset_dir path/to/audio --batch_size 64 --devices 2

Two views of each excerpt are made on the training device by the batched augmentation chain
(``vcmr.audio.augment``); the NT-Xent loss sees the negatives of the global batch under DDP.

Randomness, and why each piece is seeded as it is:

* excerpts: from ``(seed, epoch, file index)``, the epoch carried to the data-loader workers
  with each index (``vcmr.data.sampling``), so every epoch reads fresh excerpts, persistent
  workers included;
* training augmentations: a generator seeded with ``(seed, global rank, global step)``, so
  the processes of a DDP run draw different effects for the same batch position, and a
  resumed run draws what an uninterrupted one would;
* validation augmentations: a generator per file seeded with ``(seed, file index)``, so
  Valid/loss is comparable across epochs and does not depend on the batch size, the batch
  a file lands in, or the number of processes.

The chain always runs in float32 with autocast off (``MusicModule._views``): under
``16-mixed``/``bf16-mixed`` only the encoder and projector run in reduced precision, while
the FFT reverb, the FIR filters and the pitch shifter's interpolation keep float32 accuracy.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any
import warnings

import torch
from torch.utils.data import DataLoader

from vcmr.audio.augment import AugmentChain
from vcmr.config import MusicConfig
from vcmr.data.audio_folder import AudioFolder, collate_indexed
from vcmr.errors import VcmrError
from vcmr.losses import NTXent
from vcmr.train.base import StageModule, StageRun, batch_sizes, fit_stage, loader
from vcmr.train.trainer import mixed_seed

# Each item is an excerpt of excerpt_seconds (default 15 s, the reference's segment) from which
# the chain crops the two views independently (never from the zero padding of shorter files);
# with excerpt_seconds 0 the excerpt is EXCERPT_FACTOR x the model input.
EXCERPT_FACTOR = 2


@contextmanager
def _single_thread_on_cpu(x: torch.Tensor):
    """The chain's small FFTs and filters run faster on one thread than on several
    (benchmarks/README.md); the model's convolutions keep all threads."""
    if x.device.type != "cpu":
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


SILENCE = 1e-8  # a training batch whose largest |sample| is below this is silent


class MusicModule(StageModule):
    """The stage-1 network (``net``: encoder + projector) trained with NT-Xent between two
    augmented views. ``stored``: the other hyper-parameters ``load_from_checkpoint`` passes."""

    stage = "music"

    def __init__(self, config: MusicConfig | dict, **stored):
        super().__init__(config, stored)
        self.augment = AugmentChain.from_config(self.cfg)
        self.loss = NTXent(self.cfg.temperature)
        self.n_trained_batches = self.n_skipped_batches = 0  # see train_music
        self.warned_silent = False

    def _views(self, batch: torch.Tensor, generator: torch.Generator | None):
        """Two augmented views of ``batch``, computed in float32 outside autocast."""
        with torch.no_grad(), _single_thread_on_cpu(batch), \
                torch.autocast(device_type=batch.device.type, enabled=False):
            batch = batch.float()
            return self.augment(batch, generator=generator), self.augment(batch, generator=generator)

    def _item_views(self, batch: torch.Tensor, indices: torch.Tensor):
        """Validation views: each file's own generator, seeded by ``(seed, file index)``."""
        views = [self._views(batch[i:i + 1], self._generator(batch, self.cfg.seed, 1, int(k)))
                 for i, k in enumerate(indices.tolist())]
        return torch.cat([a for a, _ in views]), torch.cat([b for _, b in views])

    @staticmethod
    def _generator(batch: torch.Tensor, *parts: int) -> torch.Generator:
        return torch.Generator(device=batch.device).manual_seed(mixed_seed(*parts))

    def train_generator(self, batch: torch.Tensor) -> torch.Generator:
        """The augmentation generator of this training step: ``(seed, global rank, step)``."""
        return self._generator(batch, self.cfg.seed, 0, self.global_rank, self.global_step)

    def _step(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.loss(self.net.projector(self.net(a)), self.net.projector(self.net(b)))

    def training_step(self, batch, batch_idx: int):
        batch, _ = _unpack(batch)
        if min(batch_sizes(self, batch.shape[0])) < 2:
            # A process with < 2 readable files cannot train (no negatives; BatchNorm needs two
            # clips): every process skips, or the others would wait for it in the all-gather.
            self.n_skipped_batches += 1
            return self.skip_step()
        self.n_trained_batches += 1
        self._warn_if_silent(batch)
        a, b = self._views(batch, self.train_generator(batch))
        loss = self._step(a, b)
        self.log_loss("Train", loss, batch.shape[0])
        return loss

    def _warn_if_silent(self, batch: torch.Tensor) -> None:
        """Warn once per run when every clip of a training batch is silent: NT-Xent then sees
        identical views and the loss stays at ln(2N - 1) without learning anything."""
        if self.warned_silent or batch.detach().abs().amax() >= SILENCE:
            return
        self.warned_silent = True
        warnings.warn(f"every clip of a training batch ({batch.shape[0]} clips, step "
                      f"{self.global_step}) is silent (max |x| < {SILENCE:g}): the model cannot "
                      f"learn from silence and the loss stays constant; check dataset_dir for "
                      f"silent or empty audio files", stacklevel=2)

    def validation_step(self, batch, batch_idx: int):
        batch, indices = _unpack(batch)
        sizes = batch_sizes(self, batch.shape[0])
        if min(sizes) < 1 or sum(sizes) < 2:  # the same decision on every process
            return None
        if indices is None:
            indices = torch.arange(batch_idx * batch.shape[0], (batch_idx + 1) * batch.shape[0])
        a, b = self._item_views(batch, indices)
        loss = self._step(a, b)
        self.log_loss("Valid", loss, batch.shape[0])
        self._scored_val = True
        return loss

    def on_validation_epoch_start(self) -> None:
        self._scored_val = False

    def on_validation_epoch_end(self) -> None:
        if not self._scored_val:  # every validation batch had < 2 readable files
            self.log("Valid/loss", float("inf"), sync_dist=True)


def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, file indices)`` from the loaders of ``make_loaders``; a bare tensor has no indices."""
    if isinstance(batch, (tuple, list)):
        return batch[0], batch[1]
    return batch, None


def check_enough_items(cfg: MusicConfig, n_train: int, n_valid: int) -> None:
    """NT-Xent needs at least two excerpts per batch (each one's negatives are the others):
    refuse up front instead of 'training' with every step skipped."""
    if cfg.batch_size < 2:
        raise VcmrError(f"batch_size={cfg.batch_size}: contrastive training needs at least 2 "
                        f"items per batch; use --batch_size 2 or more")
    if n_train < 2:
        raise VcmrError(
            f"dataset_dir {cfg.dataset_dir!r}: only {n_train} usable training file(s) ({n_valid} more "
            f"held out for validation; files shorter than min_audio_seconds={cfg.min_audio_seconds} "
            f"are left out). Stage 1 needs at least 2 training files, each batch at least 2: add "
            f"audio files, or lower valid_fraction / min_audio_seconds")


def make_loaders(cfg: MusicConfig) -> tuple[DataLoader, DataLoader]:
    excerpt = (max(cfg.audio_length, int(cfg.excerpt_seconds * cfg.sample_rate)) if cfg.excerpt_seconds > 0
               else cfg.audio_length * EXCERPT_FACTOR)
    min_samples = int(cfg.min_audio_seconds * cfg.sample_rate)
    common = dict(sample_rate=cfg.sample_rate, excerpt_length=excerpt,
                  valid_fraction=cfg.valid_fraction, min_samples=min_samples, seed=cfg.seed)
    train = AudioFolder(cfg.dataset_dir, "train", **common)
    valid = AudioFolder(cfg.dataset_dir, "valid", **common)
    check_enough_items(cfg, len(train), len(valid))
    return (loader(train, cfg, True, collate_indexed, with_index=True),
            loader(valid, cfg, False, collate_indexed, with_index=True))


def setup(cfg: MusicConfig) -> StageRun:
    """Stage 1's loaders and module (after seeding: ``fit_stage``)."""
    train_loader, val_loader = make_loaders(cfg)
    return StageRun(MusicModule(cfg), train_loader, val_loader)


def train_music(cfg: MusicConfig, callbacks=()) -> dict[str, Any]:
    """Train stage 1 from ``cfg``; returns the paths of the log folder and checkpoints.
    ``callbacks``: extra Lightning callbacks (tests record batches with them)."""
    run = fit_stage(cfg, setup, callbacks)
    module, paths = run.module, run.paths
    if module.n_skipped_batches and not module.n_trained_batches:
        raise VcmrError(
            f"no training step ran: all {module.n_skipped_batches} batch(es) had fewer than 2 "
            f"readable audio files (see the warnings above naming them); the checkpoint "
            f"{paths.get('last')} is untrained. Fix or remove the unreadable files and train again")
    return paths
