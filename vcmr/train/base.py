"""The skeleton every training stage shares: its LightningModule base, its loaders, its fit.

A stage (``music.py``, ``video.py``, ``tagging.py``) is a :class:`StageModule` subclass with its
steps and validation metrics, a ``make_loaders`` that picks its datasets, and a ``train_<stage>``
that calls :func:`fit_stage` with a set-up function::

    def train_music(cfg, callbacks=()):
        return fit_stage(cfg, setup, callbacks).paths   # setup(cfg) -> StageRun(module, loaders)

What is the same for every stage lives here, once:

* :class:`StageModule`: the stage network (``net``, built by ``vcmr.models.stages.build``), the
  hyper-parameters saved in each checkpoint (``format_version``, ``stage``, ``config``, and
  ``tags`` for tagging), the reload path of ``load_from_checkpoint`` (which passes those back),
  the optimiser from the config, the training mode at the start of fitting, and the DDP-safe
  skipping of unusable batches (:class:`SkippableSteps`).
* :func:`loader`: the DataLoader arguments (workers, the epoch carried to them with each index
  so that persistent workers draw fresh crops, pinned memory on CUDA, the last partial training
  batch dropped when there is more than one batch).
* :func:`fit_stage`: seed, the stage's set-up, a Trainer that keeps ``best.ckpt`` by the
  module's ``monitor``, fit (resuming from ``ckpt_path``), and the one warning for a training
  loss that stays constant for a whole epoch (:class:`ConstantLossWarning`).

Which encoder parts train and whether their BatchNorm statistics follow the data is not decided
here but by the stage network (``SampleCNN.freeze_blocks``); the base only puts the module in
training mode when fitting starts.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from vcmr.config import config_to_dict
from vcmr.data.sampling import ResumeSamplerEpoch, epoch_loader_kwargs
from vcmr.io.checkpoint import DATA_KEY, checkpoint_hparams, module_config
from vcmr.models.stages import build
from vcmr.train.optim import build_optimizer
from vcmr.train.trainer import build_trainer, run_fit, seed_everything


def batch_sizes(module: pl.LightningModule, n: int) -> list[int]:
    """This step's batch size on every process (``[n]`` on one process).

    Every process must take the same branch (train or skip) or the collective operations of
    the loss and of DDP's gradient averaging wait forever for the one that skipped."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size <= 1:
        return [int(n)]
    sizes = module.all_gather(torch.tensor([int(n)], device=module.device))
    return [int(v) for v in sizes.flatten().tolist()]


def gather_rows(module: pl.LightningModule, x: torch.Tensor) -> torch.Tensor:
    """``x`` (rows, ...) of every process concatenated in rank order; processes may hold
    different numbers of rows, none included (dropped unreadable files). One process: ``x``."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size <= 1:
        return x
    sizes = batch_sizes(module, x.shape[0])
    padded = torch.zeros((max(sizes), *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    everything = module.all_gather(padded)  # (world, max, ...)
    return torch.cat([everything[r, :k] for r, k in enumerate(sizes)])


class SkippableSteps:
    """Mixin for the stages' LightningModules: a training batch that cannot be used (fewer
    than two readable clips on some process) is skipped by every process without a hang.

    Lightning refuses ``training_step`` returning ``None`` under DDP, and every process must
    join the gradient all-reduce of the backward pass. So :meth:`skip_step` returns a zero loss
    that reaches every trainable parameter (zero gradients, the all-reduce runs), and
    :meth:`optimizer_step` leaves the weights and the optimiser's moments untouched for that
    batch (a plain zero-gradient AdamW step would still move them).
    """

    _skipped_step = False

    def skip_step(self):
        self._skipped_step = True
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in params]).sum() * 0.0

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        self._skipped_step = False
        loss = optimizer_closure()  # training_step and backward (with DDP's all-reduce)
        if self._skipped_step:
            return
        optimizer.step(closure=lambda: loss)


class StageModule(SkippableSteps, pl.LightningModule):
    """The LightningModule of one stage: ``net`` (the stage network) and its training set-up.

    ``config``: the stage config or its stored dict; ``stored``: the other hyper-parameters
    ``load_from_checkpoint`` passes back (their format version and stage are checked);
    ``tags``: the tag names of a tagging network (saved with it). A subclass sets ``stage``
    and, when ``best.ckpt`` is chosen by another metric than the lowest validation loss,
    ``monitor`` and ``monitor_mode``.
    """

    stage: str = ""
    monitor, monitor_mode = "Valid/loss", "min"
    data_summary: dict[str, Any] | None = None  # set by fit_stage, saved in each checkpoint

    def __init__(self, config: Any, stored: dict[str, Any], tags: list[str] | None = None):
        super().__init__()
        self.cfg = module_config(self.stage, config, stored)
        self.save_hyperparameters(checkpoint_hparams(self.stage, config_to_dict(self.cfg), tags))
        self.net = build(self.stage, self.cfg, tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_train_start(self) -> None:
        # Lightning 2 does not call train() when fitting starts (after validation it restores
        # each submodule's recorded mode): training mode here, the network deciding what it
        # means for its frozen parts and their BatchNorm statistics.
        self.train()

    def configure_optimizers(self):
        return build_optimizer(self.parameters(), self.cfg.optimizer, self.cfg.learning_rate,
                               self.cfg.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.data_summary:
            checkpoint[DATA_KEY] = dict(self.data_summary)

    def stage_callbacks(self) -> list[Callback]:
        """Callbacks the stage itself needs (tagging: early stopping)."""
        return []

    def log_loss(self, split: str, loss: torch.Tensor, batch_size: int) -> None:
        """``Train/loss`` or ``Valid/loss``, averaged over the processes."""
        self.log(f"{split}/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch_size)

    def gather_epoch(self, rows: list[torch.Tensor], width: int) -> torch.Tensor:
        """The rows collected over a validation epoch on every process, concatenated in rank
        order; ``rows`` is emptied. Every process joins the gather, whatever it holds."""
        x = torch.cat(rows) if rows else torch.zeros(0, width, device=self.device)
        rows.clear()
        return gather_rows(self, x)


def loader(dataset: Dataset, cfg: Any, train: bool, collate_fn: Callable | None = None,
           with_index: bool = False) -> DataLoader:
    """The DataLoader of a stage's training (``train``: shuffled by ``(seed, epoch)``) or
    validation set. The epoch travels to the workers with each index (``vcmr.data.sampling``),
    so workers persist; ``with_index``: items come as ``(item, index)``."""
    return DataLoader(**epoch_loader_kwargs(dataset, train, cfg.seed, with_index=with_index),
                      batch_size=cfg.batch_size, drop_last=train and len(dataset) > cfg.batch_size,
                      collate_fn=collate_fn, num_workers=cfg.workers,
                      persistent_workers=cfg.workers > 0, pin_memory=torch.cuda.is_available())


EXAMPLES = {"music": "audio files", "video": "audio segments of prepared videos", "tagging": "songs"}


def data_summary(stage: str, cfg: Any, train: Dataset, valid: Dataset) -> dict[str, Any]:
    """What each checkpoint records about the training data (``vcmr.io.checkpoint.checkpoint_data``,
    the model card): the data folder's name (not its path, which may be private), the number
    of training and validation examples and what one is, and for stage 2 the number of videos."""
    out: dict[str, Any] = {"examples": EXAMPLES[stage], "train_examples": len(train),
                           "valid_examples": len(valid)}
    if getattr(cfg, "dataset_dir", None):
        out["dataset_dir"] = Path(str(cfg.dataset_dir)).name
    if stage == "tagging":
        out.update(dataset=cfg.dataset, split=cfg.split)
    if stage == "video":
        out.update(train_videos=len(train.ids), valid_videos=len(valid.ids))
    return out
class ConstantLossWarning(Callback):
    """Warns once per run when the training loss took one value at every step of an epoch (at
    least two steps; skipped batches left out): nothing is being learned. The likely cause is
    degenerate data: silent clips, or clips that are all the same, make the contrastive stages'
    views identical (NT-Xent then sits at ln(2N - 1), ln 7 for a batch of 4) and give any stage
    the same gradient every step. Relative tolerance ``rtol``: float rounding only."""

    def __init__(self, rtol: float = 1e-6):
        self.rtol, self.warned, self.losses = rtol, False, []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not getattr(pl_module, "_skipped_step", False):
            self.losses.append(float(loss.detach()))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.warned or len(self.losses) < 2:
            return
        lo, hi = min(self.losses), max(self.losses)
        if hi - lo > self.rtol * max(1.0, abs(hi)):
            return
        self.warned = True
        if trainer.is_global_zero:
            cfg = pl_module.cfg
            where = getattr(cfg, "dataset_dir", None) or getattr(cfg, "data_dir", None) or "the training data"
            warnings.warn(
                f"the training loss was {hi:.6g} at every one of the {len(self.losses)} steps of "
                f"epoch {trainer.current_epoch}: the model is learning nothing. Likely cause: "
                f"silent or identical inputs (check {where} for silent, empty or duplicated "
                f"files); else a learning rate of 0", stacklevel=2)


@dataclass
class StageRun:
    """What a stage trains (its module and its two loaders) and, after fitting, ``paths``:
    the log folder and the checkpoints written (``run_fit``)."""

    module: StageModule
    train_loader: DataLoader
    val_loader: DataLoader
    paths: dict[str, Any] = field(default_factory=dict)


def fit_stage(cfg: Any, setup: Callable[[Any], StageRun], callbacks: Iterable[Callback] = ()) -> StageRun:
    """Train one stage: seed every generator from ``cfg.seed`` (before anything draws: initial
    weights, sampler order), ``setup(cfg)`` (the stage's checks, loaders and module), a Trainer
    keeping ``best.ckpt`` by the module's ``monitor``, fit (resuming from ``ckpt_path``).

    The Trainer is configured from ``run.module.cfg``: the config as the set-up resolved it
    (e.g. with the architecture of a pre-trained encoder). ``callbacks``: extra Lightning
    callbacks (tests record batches with them)."""
    seed_everything(cfg.seed)
    run = setup(cfg)
    module = run.module
    module.data_summary = data_summary(module.stage, module.cfg, run.train_loader.dataset,
                                       run.val_loader.dataset)
    cbs = [*module.stage_callbacks(), ResumeSamplerEpoch(run.train_loader.sampler, run.val_loader.sampler),
           ConstantLossWarning(), *callbacks]
    trainer = build_trainer(module.cfg, monitor=module.monitor, mode=module.monitor_mode, callbacks=cbs)
    run.paths = run_fit(trainer, module, run.train_loader, run.val_loader, module.cfg.ckpt_path)
    return run
