"""Pool workers die with their parent (issue 23 row 13): `vcmr cache-audio --workers 2` killed
with SIGKILL used to leave both workers running as orphans."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vcmr.demo.synth.formats import write_magnatagatune

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DEADLINE_S = 120  # generous: only how long we wait, never what we assert


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see processes")
def test_cache_audio_workers_die_when_the_command_is_killed(tmp_path):
    data = tmp_path / "mtat"
    write_magnatagatune(data, 24, seed=1, duration=0.3, sample_rate=16000, workers=1)
    markers = tmp_path / "busy"
    markers.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    proc = subprocess.Popen([sys.executable, str(TESTS / "cache_kill_helpers.py"), str(markers), "--",
                             "cache-audio", "--dataset", "magnatagatune", "--dataset_dir", str(data),
                             "--cache_dir", str(tmp_path / "cache"), "--workers", "2",
                             "--progress_bar", "false"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(os.listdir(markers)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [int(p) for p in os.listdir(markers)]
        assert len(workers) == 2, f"the two workers never started:\n{proc.communicate(timeout=5)[0] if proc.poll() is not None else ''}"
        assert all(_alive(w) for w in workers)
        os.kill(proc.pid, signal.SIGKILL)  # the command only, as the OOM killer would
        proc.wait()
        while any(_alive(w) for w in workers) and time.monotonic() < deadline + DEADLINE_S:
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)], "workers outlived the killed command"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the session
        except ProcessLookupError:
            pass
