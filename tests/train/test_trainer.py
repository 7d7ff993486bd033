"""Shared trainer set-up: the authors' precision and BatchNorm settings on GPUs, fp32 on CPU."""
import pytest
import torch
from conftest import TINY_OVERRIDES

from vcmr.config import load_config
from vcmr.train.checkpoint_io import AtomicCheckpointIO
from vcmr.train.trainer import build_trainer, on_cuda, resolve_precision, resolve_sync_batchnorm


def test_auto_precision_is_mixed_on_cuda_only():
    assert resolve_precision("auto", cuda=True) == "16-mixed"
    assert resolve_precision("auto", cuda=False) == "32-true"
    for explicit in ("32-true", "bf16-mixed", "16-mixed"):
        assert resolve_precision(explicit, cuda=True) == resolve_precision(explicit, cuda=False) == explicit


def test_sync_batchnorm_only_on_cuda():
    assert resolve_sync_batchnorm(True, cuda=True) is True
    assert resolve_sync_batchnorm(True, cuda=False) is False
    assert resolve_sync_batchnorm(False, cuda=True) is False
    assert on_cuda("cpu") is False
    assert on_cuda("auto") is torch.cuda.is_available()


@pytest.mark.parametrize("stage", ["music", "video", "tagging"])
def test_default_trainer_on_cpu_is_fp32(stage, tmp_path):
    cfg = load_config(stage, overrides=TINY_OVERRIDES + ["--log_dir", str(tmp_path), "--accelerator", "cpu"])
    assert (cfg.precision, cfg.sync_batchnorm) == ("auto", True)
    trainer = build_trainer(cfg, monitor="Valid/loss")
    assert trainer.precision == "32-true"
    cfg.precision = "bf16-mixed"  # explicit values pass through
    assert build_trainer(cfg, monitor="Valid/loss").precision == "bf16-mixed"


def test_every_checkpoint_goes_through_the_crash_safe_writer(tmp_path):
    """ModelCheckpoint, SaveOnSigterm and SLURM's hpc_ckpt all save with trainer.save_checkpoint,
    i.e. the strategy's CheckpointIO: it must be the atomic one (issue 23 row 6)."""
    cfg = load_config("music", overrides=TINY_OVERRIDES + ["--log_dir", str(tmp_path), "--accelerator", "cpu"])
    trainer = build_trainer(cfg, monitor="Valid/loss")
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    path = tmp_path / "checkpoints" / "last.ckpt"
    trainer.strategy.checkpoint_io.save_checkpoint({"x": torch.ones(2)}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
