"""Shared Lightning set-up for every training stage: logger, checkpoints, devices, precision.

As in the authors' runs, training on CUDA GPUs uses mixed precision (``precision: auto`` ->
16-mixed) and synchronised BatchNorm under DDP (``sync_batchnorm: true``); on CPU both resolve
to plain fp32 and per-process BatchNorm.

Logs go to ``log_dir/experiment_name/version_N`` (TensorBoard); checkpoints to its
``checkpoints/`` folder: ``last.ckpt`` and ``best.ckpt`` (by the stage's monitored metric).

Several processes (``--devices 2 --strategy ddp``, ``--num_nodes N``, ``torchrun`` or SLURM
``srun``) write one set of logs and checkpoints (rank 0). Decisions that change which
collective operations a step runs (skipping a batch, gathering validation outputs) are taken
from every process's batch size (``vcmr.train.base.batch_sizes``), so no process waits for another that
skipped. A run stopped by SIGTERM (a scheduler's pre-emption, ``kill``) saves ``last.ckpt``
first (:class:`SaveOnSigterm`); on SLURM, Lightning's SLURMEnvironment also saves
``hpc_ckpt_N.ckpt`` in ``log_dir/experiment_name`` on SIGUSR1, requeues the job, and the
requeued job resumes from it by itself. Every checkpoint file is written crash-safe
(:class:`vcmr.train.checkpoint_io.AtomicCheckpointIO`): a kill during a save leaves the previous
one intact.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from vcmr.errors import VcmrError
from vcmr.io.checkpoint import check_resume_checkpoint
from vcmr.locks import lock_run_version
from vcmr.train.checkpoint_io import AtomicCheckpointIO

log = logging.getLogger(__name__)

# Noise that every CPU run prints and that says nothing actionable to our users.
for _pattern in (".*does not have many workers.*", ".*GPU available but not used.*",
                 ".*smaller than the logging interval.*", ".*The number of training batches.*",
                 ".*Checkpoint directory .* exists and is not empty.*", ".*LeafSpec.*is deprecated.*",
                 ".*litlogger.*"):
    warnings.filterwarnings("ignore", message=_pattern)


class _DropTips(logging.Filter):
    """Lightning's "💡 Tip" advertisements (litlogger, litmodels), printed at every fit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).lstrip().startswith("💡")


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropTips())


def verbose() -> bool:
    """Lightning's own console details (model summary, GPU/TPU lines, info messages) are shown
    only with ``VCMR_VERBOSE=1`` (``vcmr demo --verbose``); commands print their own progress.
    An environment variable, so that DDP worker processes inherit it."""
    return os.environ.get("VCMR_VERBOSE", "").strip().lower() in ("1", "true", "yes", "on")


def set_verbose(on: bool) -> None:
    os.environ["VCMR_VERBOSE"] = "1" if on else "0"


def _lightning_console() -> None:
    level = logging.INFO if verbose() else logging.WARNING
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(level)


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


def check_gpus(accelerator: str, devices: Any) -> None:
    """Refuse, before Lightning does with a traceback, GPUs this machine does not have (the
    authors' ``n_cuda: "2, 3"`` becomes ``devices 2,3`` on ``gpu``)."""
    if str(accelerator).lower() not in ("gpu", "cuda") or devices in ("auto", -1):
        return
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = devices if isinstance(devices, list) else list(range(int(devices)))
    missing = [d for d in wanted if d >= have or d < 0]
    if not missing:
        return
    asked = ",".join(str(d) for d in devices) if isinstance(devices, list) else f"{devices} GPU(s)"
    raise VcmrError(
        f"accelerator {accelerator!r} with devices {asked!r} asks for GPU(s) "
        f"{', '.join(str(d) for d in missing)}, but this machine has {have} CUDA GPU(s). "
        f"Override on the command line: --accelerator cpu --devices 1 (CPU), or --devices auto "
        f"(every GPU here), or --devices with indices below {have}")


def on_cuda(accelerator: str) -> bool:
    """Whether Lightning will train on CUDA GPUs for this ``accelerator`` setting."""
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
    _lightning_console()
    devices = parse_devices(cfg.devices)
    check_gpus(cfg.accelerator, devices)
    # The version folder is chosen and locked here (not by the logger): two runs started
    # together get different folders, and a fixed experiment_version in use is refused.
    version, locks = lock_run_version(Path(cfg.log_dir) / cfg.experiment_name, cfg.experiment_version)
    logger = TensorBoardLogger(save_dir=cfg.log_dir, name=cfg.experiment_name,
                               version=version, default_hp_metric=False)
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
    if enable_checkpointing:
        cbs.append(SaveOnSigterm(Path(logger.log_dir) / "checkpoints" / "last.ckpt"))
    trainer = pl.Trainer(
        default_root_dir=Path(cfg.log_dir) / cfg.experiment_name,  # SLURM hpc_ckpt_N.ckpt: stable across requeues
        accelerator=cfg.accelerator, devices=devices, num_nodes=cfg.num_nodes,
        strategy=cfg.strategy, precision=resolve_precision(cfg.precision, on_cuda(cfg.accelerator)),
        sync_batchnorm=resolve_sync_batchnorm(cfg.sync_batchnorm, on_cuda(cfg.accelerator)),
        max_epochs=cfg.m_epochs,
        max_steps=cfg.max_steps, check_val_every_n_epoch=cfg.val_freq,
        log_every_n_steps=cfg.log_freq, logger=logger, callbacks=cbs,
        gradient_clip_val=cfg.gradient_clip_val or None,
        limit_train_batches=cfg.limit_train_batches, limit_val_batches=cfg.limit_val_batches,
        enable_progress_bar=cfg.progress_bar, deterministic=cfg.deterministic,
        enable_checkpointing=enable_checkpointing, num_sanity_val_steps=0,
        enable_model_summary=verbose(), plugins=[AtomicCheckpointIO()])
    trainer.vcmr_locks = locks  # held while the trainer lives; run_fit frees them at the end
    return trainer


class FiniteGuard(Callback):
    """Stop training at the first non-finite loss (before its backward pass, so the weights
    are still finite and no NaN checkpoint is written) or non-finite gradient (before the
    optimiser step). Under fp16 mixed precision the gradient check is left to the loss scaler,
    which skips such steps by design."""

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if not torch.isfinite(loss.detach()).all():
            raise VcmrError(
                f"the training loss became {loss.detach().float().mean().item()} at step "
                f"{trainer.global_step} (epoch {trainer.current_epoch}); training stopped before "
                f"this update, so no checkpoint holds non-finite weights. Lower learning_rate, set "
                f"gradient_clip_val, or check the data for NaN/inf values")

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if "16" in str(trainer.precision) and "bf16" not in str(trainer.precision):
            return
        grads = [p.grad.detach().float().norm() for p in pl_module.parameters() if p.grad is not None]
        if grads and not torch.isfinite(torch.stack(grads).sum()):
            raise VcmrError(
                f"non-finite gradients at step {trainer.global_step} (epoch "
                f"{trainer.current_epoch}); training stopped before this update. Lower "
                f"learning_rate or set gradient_clip_val")


def _check_finite_weights(module: pl.LightningModule, paths: dict[str, str]) -> None:
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
    if ckpt_path:
        check_resume_checkpoint(ckpt_path, module.hparams.get("stage"))
    if not any(isinstance(cb, FiniteGuard) for cb in trainer.callbacks):
        trainer.callbacks.append(FiniteGuard())
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:
        last = checkpoint_paths(trainer).get("last")
        raise VcmrError(f"training stopped by SIGTERM at step {trainer.global_step} (epoch "
                        f"{trainer.current_epoch}); the state reached is saved in {last}: continue "
                        f"with --ckpt_path {last}") from None
    finally:
        for lock in getattr(trainer, "vcmr_locks", []):
            lock.release()
    paths = checkpoint_paths(trainer)
    _check_finite_weights(module, paths)
    return paths


def checkpoint_paths(trainer: pl.Trainer) -> dict[str, str]:
    out = {"log_dir": trainer.logger.log_dir if trainer.logger else "", "global_rank": trainer.global_rank}
    for cb in trainer.checkpoint_callbacks:
        if cb.monitor is not None:
            out["best"] = cb.best_model_path
        else:
            out["last"] = str(Path(cb.dirpath) / "last.ckpt")
    return out


def seed_everything(seed: int) -> None:
    pl.seed_everything(seed, workers=True, verbose=False)


class SaveOnSigterm(Callback):
    """On SIGTERM, save ``last.ckpt`` at the end of the current training batch and stop.

    Lightning 2.x saves nothing on SIGTERM outside SLURM, and under DDP its handler calls a
    broadcast from inside the signal handler, which deadlocks when the other process is
    already waiting in a step's all-gather. This handler only sets a flag; at each batch end
    every process adds up the flags (one small all-reduce), so all processes save together
    and stop with ``SIGTERMException`` (``run_fit`` reports it). ``--ckpt_path .../last.ckpt``
    resumes from the step reached, mid-epoch included. The file is written through the
    trainer's crash-safe writer (``trainer.save_checkpoint`` -> ``AtomicCheckpointIO``).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.requested = False

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is threading.main_thread():  # after Lightning's own
            signal.signal(signal.SIGTERM, self._notice)

    def _notice(self, signum, frame) -> None:
        self.requested = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        flag = torch.tensor([float(self.requested)], device=trainer.strategy.root_device)
        if trainer.world_size > 1:
            flag = trainer.strategy.reduce(flag, reduce_op="sum")
        if float(flag.item()) > 0:
            trainer.save_checkpoint(self.path)
            raise SIGTERMException()


def mixed_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, rank, step ...): different tuples give unrelated
    seeds, unlike ``seed + rank`` where rank 1 at step 0 equals rank 0 at step 1."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def summary(paths: dict, best_label: str = "best checkpoint") -> str:
    """What the training commands print; empty on processes other than rank 0 (each process
    of a DDP run returns from training, only one should report)."""
    if paths.get("global_rank", 0) != 0:
        return ""
    best = paths.get("best") or ("none yet: no validation has run (training stopped before the "
                                 "first validation, e.g. by --max_steps); use the last checkpoint")
    return f"logs: {paths['log_dir']}\n{best_label}: {best}\nlast checkpoint: {paths.get('last')}"
