"""Crash-safe checkpoints (issue 23 row 6): a write killed or failing half-way leaves the
previous good file intact, also when the log folder is on another filesystem than $TMPDIR."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TESTS, TINY_OVERRIDES

from vcmr.cli import main
from vcmr.train.checkpoint_io import AtomicCheckpointIO, remove_stale_temporaries, save_atomic

TIMEOUT_S = 300


def test_failing_write_leaves_old_file_byte_identical(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.arange(1000.0)}, path)
    before = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"step": 2, "w": torch.zeros(1000)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temporary left
    monkeypatch.undo()
    io.save_checkpoint({"step": 3}, path)
    assert io.load_checkpoint(path) == {"step": 3}
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_stale_temporary_of_a_dead_process_is_removed(tmp_path):
    final = tmp_path / "last.ckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".last.ckpt.{socket.gethostname()}.{dead}.abcd.tmp"
    live = tmp_path / f".last.ckpt.{socket.gethostname()}.1.abcd.tmp"  # pid 1 is alive
    stale.write_bytes(b"x")
    live.write_bytes(b"y")
    save_atomic({"a": 1}, final)
    assert not stale.exists() and live.exists()
    assert remove_stale_temporaries(final) == []


def _other_fs_tmpdir(log_root: Path):
    """A folder for $TMPDIR on another filesystem than ``log_root`` (the issue's case), or None."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != log_root.stat().st_dev:
        return tempfile.TemporaryDirectory(dir=shm)
    return None


def test_sigkill_during_last_ckpt_write_keeps_previous(synth_audio_dir, tmp_path):
    """A real stage-1 run killed inside the second write of last.ckpt: the first one is intact,
    loadable, and `--ckpt_path` resumes from it; the killed write's temporary is removed."""
    runs, marker = tmp_path / "runs", tmp_path / "stopped"
    runs.mkdir()
    args = ["train", "music", *TINY_OVERRIDES, "--dataset_dir", str(synth_audio_dir),
            "--log_dir", str(runs), "--experiment_version", "v0", "--batch_size", "8",
            "--workers", "0", "--progress_bar", "false", "--m_epochs", "3", "--accelerator", "cpu"]
    other = _other_fs_tmpdir(runs)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    if other is not None:
        env["TMPDIR"] = other.name
    proc = subprocess.Popen([sys.executable, str(TESTS / "ckpt_kill_helpers.py"), str(marker), "--", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
    finally:
        if other is not None:
            other.cleanup()
    assert marker.exists(), f"the run never reached its second save of last.ckpt:\n{output[-3000:]}"
    last = runs / "music" / "v0" / "checkpoints" / "last.ckpt"
    good = marker.with_name(marker.name + ".before").read_bytes()
    assert last.read_bytes() == good  # the previous good checkpoint, byte for byte
    assert torch.load(last, weights_only=True)["global_step"] > 0
    assert list(last.parent.glob(".last.ckpt.*.tmp"))  # what the killed write left

    assert main(args + ["--ckpt_path", str(last)]) == 0
    assert not list(last.parent.glob(".*.tmp"))  # the leftover is cleaned by the next save
    assert torch.load(last, weights_only=True)["epoch"] >= 2
