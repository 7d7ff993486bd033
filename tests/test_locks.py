"""Issue 23 row 4: one run per output folder. A second run into a folder that a running process
holds stops before any work (exit 1, naming the holder); a lock file left by a killed run
never blocks; two trainings started together get different version folders."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_OVERRIDES

from vcmr.cli import main
from vcmr.config import load_config
from vcmr.errors import VcmrError
from vcmr.locks import LOCK_NAME, lock_run_version, try_lock
from vcmr.train.trainer import build_trainer

ROOT = Path(__file__).resolve().parents[1]

# A real second process: takes the lock the way a running command does, says so, then waits.
HOLDER = """
import sys, time
from vcmr import locks
sys.argv = ["vcmr", "holder-run"]
kind, target = sys.stdin.readline().strip(), sys.stdin.readline().strip()
if kind == "folder":
    held = locks.lock_folder(target, "test")
elif kind == "file":
    held = locks.lock_output_file(target, "test")
else:
    version, held = locks.lock_run_version(target, None if kind == "run" else kind)
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder():
    procs = []

    def start(kind: str, target) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for key in ("RANK", "LOCAL_RANK", "NODE_RANK"):
            env.pop(key, None)
        proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env)
        procs.append(proc)
        proc.stdin.write(f"{kind}\n{target}\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_second_prepare_into_held_out_exits_1_naming_the_holder(tmp_path, holder, capsys):
    videos, out = tmp_path / "videos", tmp_path / "av"
    videos.mkdir()
    proc = holder("folder", out)
    assert main(["prepare", str(videos), "--out", str(out), "--no_progress"]) == 1
    err = capsys.readouterr().err
    assert f"pid {proc.pid}" in err and "holder-run" in err and "since" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # no work done
    assert main(["prepare", "merge", str(videos), "--out", str(out)]) == 1


@pytest.mark.parametrize("argv", [
    ["embed", "{dir}", "--ckpt", "{dir}/m.safetensors", "--out", "{out}", "--format", "npz"],
    ["export", "{dir}/m.ckpt", "--out", "{out}"],
])
def test_embed_and_export_refuse_a_held_output_file(tmp_path, holder, capsys, argv):
    out = tmp_path / "result.npz"
    proc = holder("file", out)
    argv = [a.format(dir=tmp_path, out=out) for a in argv]
    assert main(argv) == 1
    assert f"pid {proc.pid}" in capsys.readouterr().err
    assert not out.exists()


def test_cache_audio_refuses_a_held_cache_dir(tmp_path, holder, capsys):
    cache = tmp_path / "cache"
    proc = holder("folder", cache)
    assert main(["cache-audio", "--dataset", "magnatagatune", "--dataset_dir", str(tmp_path),
                 "--cache_dir", str(cache)]) == 1
    assert f"pid {proc.pid}" in capsys.readouterr().err


def test_lock_left_by_a_killed_process_does_not_block(tmp_path, holder):
    proc = holder("folder", tmp_path)
    assert try_lock(tmp_path)[0] is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "holder-run" in (tmp_path / LOCK_NAME).read_text()  # the file is still there
    lock, who = try_lock(tmp_path)
    assert lock is not None and who == ""
    assert f"pid {os.getpid()}" in (tmp_path / LOCK_NAME).read_text()
    lock.release()


def _cfg(tmp_path, *extra):
    return load_config("music", overrides=TINY_OVERRIDES + ["--log_dir", str(tmp_path), "--accelerator",
                                                            "cpu", "--experiment_name", "exp", *extra])


def test_two_trainings_at_once_get_different_version_folders(tmp_path, holder):
    holder("run", tmp_path / "exp")  # another training, running in version_0
    assert (tmp_path / "exp" / "version_0").is_dir()
    trainer = build_trainer(_cfg(tmp_path), monitor="Valid/loss")
    assert Path(trainer.logger.log_dir).name == "version_1"
    assert Path(trainer.checkpoint_callbacks[0].dirpath).parent.name == "version_1"


def test_training_into_a_held_fixed_version_is_refused(tmp_path, holder):
    proc = holder("mine", tmp_path / "exp")
    with pytest.raises(VcmrError, match=f"pid {proc.pid}.*holder-run"):
        build_trainer(_cfg(tmp_path, "--experiment_version", "mine"), monitor="Valid/loss")
    build_trainer(_cfg(tmp_path, "--experiment_version", "other"), monitor="Valid/loss")


def test_runs_in_one_process_one_after_another_reuse_nothing(tmp_path):
    """A finished run frees its folder; a new run still takes the next version."""
    version, locks = lock_run_version(tmp_path, None)
    assert version == "version_0"
    locks[0].release()
    assert lock_run_version(tmp_path, None)[0] == "version_1"
    assert lock_run_version(tmp_path, "version_0")[0] == "version_0"  # free again: resume allowed
