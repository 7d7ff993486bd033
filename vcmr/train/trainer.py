"""Shared Lightning set-up for every training stage: logger, checkpoints, devices, precision.

As in the authors' runs, training on CUDA GPUs uses mixed precision (``precision: auto`` ->
16-mixed) and synchronised BatchNorm under DDP (``sync_batchnorm: true``); on CPU both resolve
to plain fp32 and per-process BatchNorm.

Logs go to ``log_dir/experiment_name/version_N`` (TensorBoard); checkpoints to its
``checkpoints/`` folder: ``last.ckpt`` and ``best.ckpt`` (by the stage's monitored metric).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Iterable

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from vcmr.errors import VcmrError

log = logging.getLogger(__name__)

# Noise that every CPU run prints and that says nothing actionable to our users.
for _pattern in (".*does not have many workers.*", ".*GPU available but not used.*",
                 ".*smaller than the logging interval.*", ".*The number of training batches.*",
                 ".*Checkpoint directory .* exists and is not empty.*", ".*LeafSpec.*is deprecated.*",
                 ".*litlogger.*"):
    warnings.filterwarnings("ignore", message=_pattern)


def parse_devices(devices: str) -> Any:
    """"auto" | "2" | "0,1" -> what Lightning expects."""
    devices = str(devices).strip()
    if devices == "auto":
        return "auto"
    if devices.isdigit():
        return int(devices)
    try:
        return [int(d) for d in devices.split(",") if d.strip()]
    except ValueError:
        raise VcmrError(f"config key 'devices': expected auto, a count or a list like 0,1; got {devices!r}") from None


def on_cuda(accelerator: str) -> bool:
    """Whether Lightning will train on CUDA GPUs for this ``accelerator`` setting."""
    import torch
    return str(accelerator).lower() in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def resolve_precision(precision: str, cuda: bool) -> str:
    """``auto``: 16-mixed on CUDA GPUs (the authors trained with fp16), 32-true elsewhere (CPU
    mixed precision is slow and bf16-only); any other value is passed to Lightning as given."""
    if str(precision).strip().lower() != "auto":
        return precision
    return "16-mixed" if cuda else "32-true"


def resolve_sync_batchnorm(sync: bool, cuda: bool) -> bool:
    """Synchronised BatchNorm (the authors' setting) only on CUDA GPUs: torch's SyncBatchNorm
    rejects CPU tensors under DDP, and without DDP Lightning does not apply it anyway."""
    return bool(sync) and cuda


def build_trainer(cfg: Any, monitor: str, mode: str = "min",
                  callbacks: Iterable[Callback] = (), enable_checkpointing: bool = True) -> pl.Trainer:
    """A Trainer configured from the stage config (every key here is used)."""
    logger = TensorBoardLogger(save_dir=cfg.log_dir, name=cfg.experiment_name,
                               version=cfg.experiment_version, default_hp_metric=False)
    cbs = list(callbacks)
    if enable_checkpointing:
        ckpt_dir = Path(logger.log_dir) / "checkpoints"
        # Two callbacks: Lightning's save_last only copies when a top-k file is written, so
        # "last" would lag behind whenever the monitored metric stops improving.
        cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode=mode,
                                   save_top_k=1, auto_insert_metric_name=False,
                                   enable_version_counter=False))
        cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                                   auto_insert_metric_name=False, enable_version_counter=False))
    cbs.append(LearningRateMonitor(logging_interval="step"))
    return pl.Trainer(
        accelerator=cfg.accelerator, devices=parse_devices(cfg.devices), num_nodes=cfg.num_nodes,
        strategy=cfg.strategy, precision=resolve_precision(cfg.precision, on_cuda(cfg.accelerator)),
        sync_batchnorm=resolve_sync_batchnorm(cfg.sync_batchnorm, on_cuda(cfg.accelerator)),
        max_epochs=cfg.m_epochs,
        max_steps=cfg.max_steps, check_val_every_n_epoch=cfg.val_freq,
        log_every_n_steps=cfg.log_freq, logger=logger, callbacks=cbs,
        gradient_clip_val=cfg.gradient_clip_val or None,
        limit_train_batches=cfg.limit_train_batches, limit_val_batches=cfg.limit_val_batches,
        enable_progress_bar=cfg.progress_bar, deterministic=cfg.deterministic,
        enable_checkpointing=enable_checkpointing, num_sanity_val_steps=0)


class FiniteGuard(Callback):
    """Stop training at the first non-finite loss (before its backward pass, so the weights
    are still finite and no NaN checkpoint is written) or non-finite gradient (before the
    optimiser step). Under fp16 mixed precision the gradient check is left to the loss scaler,
    which skips such steps by design."""

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        import torch
        if not torch.isfinite(loss.detach()).all():
            raise VcmrError(
                f"the training loss became {loss.detach().float().mean().item()} at step "
                f"{trainer.global_step} (epoch {trainer.current_epoch}); training stopped before "
                f"this update, so no checkpoint holds non-finite weights. Lower learning_rate, set "
                f"gradient_clip_val, or check the data for NaN/inf values")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        import torch
        if "16" in str(trainer.precision) and "bf16" not in str(trainer.precision):
            return
        grads = [p.grad.detach().float().norm() for p in pl_module.parameters() if p.grad is not None]
        if grads and not torch.isfinite(torch.stack(grads).sum()):
            raise VcmrError(
                f"non-finite gradients at step {trainer.global_step} (epoch "
                f"{trainer.current_epoch}); training stopped before this update. Lower "
                f"learning_rate or set gradient_clip_val")


def _check_finite_weights(module: pl.LightningModule, paths: dict[str, str]) -> None:
    import torch
    bad = [n for n, p in module.state_dict().items()
           if torch.is_floating_point(p) and not torch.isfinite(p).all()]
    if bad:
        raise VcmrError(f"training ended with non-finite values in {len(bad)} weight tensor(s) "
                        f"(e.g. {bad[0]}); do not use {paths.get('last')}. Lower learning_rate or "
                        f"set gradient_clip_val and train again")


def run_fit(trainer: pl.Trainer, module: pl.LightningModule, train_loader, val_loader,
            ckpt_path: str | None) -> dict[str, str]:
    """Fit (resuming from ``ckpt_path`` if given) and return the checkpoint paths written.

    A resume file is checked with vcmr's weights-only reader first, and Lightning loads it
    with ``weights_only=True`` too: a file that carries code never runs it, whatever
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says. A run whose weights end non-finite fails.
    """
    from vcmr.checkpoint import check_resume_checkpoint
    if ckpt_path:
        check_resume_checkpoint(ckpt_path, module.hparams.get("stage"))
    if not any(isinstance(cb, FiniteGuard) for cb in trainer.callbacks):
        trainer.callbacks.append(FiniteGuard())
    trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
    paths = checkpoint_paths(trainer)
    _check_finite_weights(module, paths)
    return paths


def checkpoint_paths(trainer: pl.Trainer) -> dict[str, str]:
    out = {"log_dir": trainer.logger.log_dir if trainer.logger else ""}
    for cb in trainer.checkpoint_callbacks:
        if cb.monitor is not None:
            out["best"] = cb.best_model_path
        else:
            out["last"] = str(Path(cb.dirpath) / "last.ckpt")
    return out


def seed_everything(seed: int) -> None:
    pl.seed_everything(seed, workers=True, verbose=False)
