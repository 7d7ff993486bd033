"""Stage 1 end to end on a tiny SampleCNN and synthetic music."""
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_OVERRIDES

from vcmr.io.checkpoint import load_encoder
from vcmr.config import load_config
from vcmr.train.music import MusicModule, make_loaders, train_music


@pytest.fixture(scope="module")
def audio_dir(synth_audio_dir):
    return synth_audio_dir


def tiny_cfg(audio_dir, tmp_path, *extra):
    return load_config("music", overrides=TINY_OVERRIDES + [
        "--dataset_dir", str(audio_dir), "--log_dir", str(tmp_path / "runs"), "--batch_size", "8",
        "--workers", "0", "--progress_bar", "false", "--learning_rate", "3e-3", *extra])


def test_loss_decreases_on_fixed_batch(audio_dir, tmp_path):
    torch.manual_seed(0)
    cfg = tiny_cfg(audio_dir, tmp_path)
    module = MusicModule(cfg)
    batch, _ = next(iter(make_loaders(cfg)[0]))
    opt = module.configure_optimizers()
    gen = torch.Generator().manual_seed(0)
    a, b = module._views(batch, gen)  # fixed views: the optimisation itself must make progress
    losses = []
    for _ in range(15):
        loss = module._step(a, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


@pytest.mark.slow
def test_train_log_checkpoint_and_resume(audio_dir, tmp_path):
    cfg = tiny_cfg(audio_dir, tmp_path, "--m_epochs", "2", "--log_freq", "1")
    paths = train_music(cfg)
    log_dir = Path(paths["log_dir"])
    assert log_dir == tmp_path / "runs" / "music" / "version_0"
    assert Path(paths["best"]).is_file() and Path(paths["last"]).is_file()
    assert list(log_dir.glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(log_dir))
    ea.Reload()
    assert {"Train/loss", "Valid/loss"} <= set(ea.Tags()["scalars"])
    assert all(np.isfinite(e.value) for e in ea.Scalars("Train/loss"))
    # the resolved config is in the checkpoint and rebuilds the encoder
    encoder, ckpt = load_encoder(paths["last"])
    assert ckpt["stage"] == "music" and ckpt["config"]["batch_size"] == 8
    assert encoder(torch.randn(2, 2187)).shape == (2, 64)
    # resume: one more epoch continues from the saved step
    more = tiny_cfg(audio_dir, tmp_path, "--m_epochs", "3", "--ckpt_path", paths["last"],
                    "--experiment_version", "resumed")
    resumed = train_music(more)
    state = torch.load(resumed["last"], weights_only=True, map_location="cpu")
    first = torch.load(paths["last"], weights_only=True, map_location="cpu")
    assert state["epoch"] == 2 and state["global_step"] > first["global_step"]


@pytest.mark.slow
def test_seed_compatible_script_runs(audio_dir, tmp_path):
    script = ROOT / "vcmr" / "scripts" / "mus_pretrain.py"
    cmd = [sys.executable, str(script), "--dataset_dir", str(audio_dir), "--config",
           str(ROOT / "config" / "tiny.yaml"), "--log_dir", str(tmp_path / "r"), "--max_steps", "2",
           "--m_epochs", "1", "--progress_bar", "false", "--batch_size", "4"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "last checkpoint" in out.stdout


def test_cli_reports_bad_config_without_traceback(tmp_path):
    from vcmr.cli import main
    assert main(["train", "music", "--dataset_dir", str(tmp_path), "--batch_sise", "3"]) == 1
    assert main(["train", "music", "--dataset_dir", str(tmp_path / "missing")]) == 1


def test_last_checkpoint_follows_training_not_the_best(audio_dir, tmp_path):
    """last.ckpt holds the final epoch even when the monitored loss stopped improving."""
    cfg = tiny_cfg(audio_dir, tmp_path, "--m_epochs", "3", "--learning_rate", "0.5")  # lr too high: no progress
    paths = train_music(cfg)
    last = torch.load(paths["last"], weights_only=True, map_location="cpu")
    best = torch.load(paths["best"], weights_only=True, map_location="cpu")
    assert last["epoch"] == 2 and last["global_step"] >= best["global_step"]


def test_training_on_silent_files_warns_once(tmp_path):
    # issue 23 row 15: 16 silent files trained at a constant loss ln 7 without a word
    import soundfile as sf
    silent = tmp_path / "silent"
    silent.mkdir()
    for i in range(16):
        sf.write(str(silent / f"clip{i:02d}.wav"), np.zeros(16000, dtype=np.float32), 16000)
    cfg = tiny_cfg(silent, tmp_path, "--max_steps", "3", "--m_epochs", "1")
    with pytest.warns(UserWarning) as record:
        train_music(cfg)
    said = [str(w.message) for w in record if "is silent" in str(w.message)]
    assert len(said) == 1 and "dataset_dir" in said[0], [str(w.message) for w in record]


def test_training_on_music_does_not_warn_of_silence(audio_dir, tmp_path):
    module = MusicModule(tiny_cfg(audio_dir, tmp_path))
    batch, _ = next(iter(make_loaders(module.cfg)[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module._warn_if_silent(batch)
    assert not module.warned_silent
