"""Helpers shared by the prepare tests (local and Ray engine), and the faults they inject
into the Ray engine's worker processes (vcmr itself has no test hook).

Ray runs tasks and actors in other processes, where a monkeypatch of the test process does
not reach. So a test replaces what the engine hands to ``ray.remote`` when a run starts
(``ray_workers.decode_task``, ``ray_workers.EncoderActor``) by wrappers that run a fault
around one video's work; Ray pickles them by value (the workers cannot import ``tests/``)
and the originals come back when the monkeypatch is undone::

    patch_decoding(monkeypatch, WorkerDies("v1"), in_actors=False)  # kills a decode task
    patch_decoding(monkeypatch, DiskFull("v2", out), in_actors=True)  # v2's WAVs: disk full
    patch_encoding(monkeypatch, WorkerDies("v1"))  # the actor dies finishing v1
"""
import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from vcmr.prepare import ray_workers
from vcmr.prepare.manifest import read_manifest

CLI = "import sys; from vcmr.cli import main; sys.exit(main(sys.argv[1:]))"


def copy_good_videos(corpus, dst: Path, n: int) -> Path:
    """``n`` copies of the corpus' good.mp4 (v0..) and its long-scene video: kept and dropped rows."""
    dst.mkdir()
    for i in range(n):
        shutil.copyfile(corpus["dir"] / "good.mp4", dst / f"v{i}.mp4")
    shutil.copyfile(corpus["dir"] / f"{corpus['roles']['long']}.mp4", dst / "long.mp4")
    return dst


def kill_after_first_row(args: list[str], out: Path, timeout: float) -> int:
    """Run ``vcmr <args>`` in a subprocess, SIGKILL it once ``out``'s manifest has a row (or
    after ``timeout`` s); returns the number of finished videos it left."""
    proc = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    manifest, deadline = out / "manifest.jsonl", time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if manifest.is_file() and manifest.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(read_manifest(out))


# ------------------------------------------------------------------------------ Ray faults
class WorkerDies:
    """The worker process exits at once (as after a decoder segfault or the OOM killer) when
    it starts on video ``vid``."""

    def __init__(self, vid: str):
        self.vid = vid

    def __call__(self, vid: str):
        return self if vid == self.vid else contextlib.nullcontext()

    def __enter__(self):
        os._exit(3)

    def __exit__(self, *exc):
        return False


class DiskFull:
    """While the worker is on video ``vid``, writes to its files under ``data_dir`` fail with
    ENOSPC at ``os.write``, the call every prepare output goes through. Restored afterwards,
    since the worker process runs other tasks."""

    def __init__(self, vid: str, data_dir):
        self.vid, self.data_dir, self.real_write = vid, str(data_dir), None

    def __call__(self, vid: str):
        return self if vid == self.vid else contextlib.nullcontext()

    def __enter__(self):
        self.real_write = real_write = os.write

        def write(fd, data):
            name = os.readlink(f"/proc/self/fd/{fd}")
            if name.startswith(self.data_dir) and os.path.basename(name).startswith(self.vid):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)
        os.write = write

    def __exit__(self, *exc):
        os.write = self.real_write
        return False


def _by_value() -> None:
    """Ray pickles this module's code into the workers (ray is optional: imported here)."""
    import ray.cloudpickle
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def patch_decoding(monkeypatch, fault, in_actors: bool) -> None:
    """``fault(video_id)`` (a context manager) around each video's decoding: in the encoder
    actors (``in_actors``: CPU actors decode their own videos, the default on a CPU cluster)
    or in decode tasks (``ray_decode_tasks``). One place only: a class Ray pickles by value
    takes the module's functions as they are then, so patching both would nest the fault."""
    _by_value()
    if not in_actors:
        decode = ray_workers.decode_task

        def decode_task(item, *args):
            with fault(item.id):
                return decode(item, *args)
        return monkeypatch.setattr(ray_workers, "decode_task", decode_task)

    class DecodeFaultActor(ray_workers.EncoderActor):
        def prepare(self, item, *args):
            with fault(item.id):
                return super().prepare(item, *args)
    monkeypatch.setattr(ray_workers, "EncoderActor", DecodeFaultActor)


def patch_encoding(monkeypatch, fault) -> None:
    """``fault(video_id)`` around each video's encoding step in the encoder actors."""
    _by_value()

    class EncodeFaultActor(ray_workers.EncoderActor):
        def finish(self, row, *args):
            with fault(row["id"]):
                return super().finish(row, *args)
    monkeypatch.setattr(ray_workers, "EncoderActor", EncodeFaultActor)
