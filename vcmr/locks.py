"""One lock per output folder, so two runs never write into the same place at once.

A run takes an ``fcntl.flock`` lock on ``FOLDER/.vcmr.lock`` and writes its pid, host, command
and start time into it; it removes the file when it ends. The kernel drops the lock when the
process exits, however it exits (SIGKILL included), so a lock file left behind by a killed run
never blocks: only a lock that is actually held does (a run that locked a file its holder
removed meanwhile retries on the new one). Lock files of output files sit beside them
(``.NAME.vcmr.lock``), so nothing is added inside a folder that is uploaded as is. A second run that finds the lock held stops before any work with an error
naming the holder (``vcmr`` exits 1).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

from vcmr.errors import VcmrError
from vcmr.paths import check_output_dir

LOCK_NAME = ".vcmr.lock"


class FolderLock:
    """A held lock on ``folder/name``; :meth:`release` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):  # removed while held: no one else can own it
                self.path.unlink()
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __del__(self) -> None:  # a lock nobody references any more is a lock nobody holds
        self.release()

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process (it wrote no details yet)"


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)


def try_lock(folder: str | Path, name: str = LOCK_NAME) -> tuple[Optional[FolderLock], str]:
    """``(lock, "")`` when taken, ``(None, holder description)`` when another run holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path):
                break
            os.close(fd)  # its holder removed the file as we locked it: take the new one
        except BlockingIOError:
            who = _holder(fd)
            os.close(fd)
            return None, who
        except BaseException:
            os.close(fd)
            raise
    info = (f"pid {os.getpid()} on {socket.gethostname()}, command `{' '.join(sys.argv)}`, "
            f"since {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n")
    os.ftruncate(fd, 0)
    os.pwrite(fd, info.encode("utf-8", "backslashreplace"), 0)
    return FolderLock(path, fd), ""


def lock_folder(folder: str | Path, what: str, name: str = LOCK_NAME) -> FolderLock:
    """Take the lock or raise a :class:`VcmrError` naming the run that holds it (or, for a
    folder that cannot be one, the path and the fix)."""
    check_output_dir(folder, what)
    lock, who = try_lock(folder, name)
    if lock is None:
        raise VcmrError(f"{what} is in use by another vcmr run ({who}); wait until it finishes or "
                        f"use another folder. (The lock is {Path(folder) / name}; it is freed when "
                        f"that process exits, so a left-over file never blocks.)")
    return lock


@contextlib.contextmanager
def locked(folder: str | Path, what: str, name: str = LOCK_NAME) -> Iterator[FolderLock]:
    lock = lock_folder(folder, what, name)
    try:
        yield lock
    finally:
        lock.release()


def lock_output_file(path: str | Path, what: str) -> FolderLock:
    """A lock for one output file: ``.NAME.vcmr.lock`` beside it (other files in that folder
    stay free for other runs; a long NAME is shortened with a hash)."""
    path = Path(path)
    name = path.name if len(os.fsencode(path.name)) <= 100 else \
        f"{path.name[:40]}-{hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]}"  # a legal 255-byte name
    return lock_folder(path.parent, what, f".{name}.vcmr.lock")


@contextlib.contextmanager
def locked_output_file(path: str | Path, what: str) -> Iterator[FolderLock]:
    lock = lock_output_file(path, what)
    try:
        yield lock
    finally:
        lock.release()


def _is_other_rank() -> bool:
    """A DDP process other than rank 0: rank 0 chose and locked the run's folder."""
    return any(os.environ.get(k, "0") not in ("", "0") for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def lock_run_version(exp_dir: str | Path, version: Optional[str]) -> tuple[str, list[FolderLock]]:
    """Choose and lock a training run's ``version`` folder in ``exp_dir``.

    ``version`` None: the next ``version_N`` that does not exist, chosen under a lock on
    ``exp_dir`` and created before that lock is freed, so two runs started together get
    different folders. A fixed ``version`` held by a running training is refused. The
    returned locks are held for the run. Other DDP ranks take the version rank 0 chose
    (``VCMR_RUN_VERSION``, inherited by the processes Lightning starts) and lock nothing.
    """
    exp_dir = Path(exp_dir)
    if _is_other_rank():
        return version or os.environ.get("VCMR_RUN_VERSION") or None, []
    if version is None:
        with locked(exp_dir, f"the experiment folder {str(exp_dir)!r}"):
            taken = [int(p.name[8:]) for p in exp_dir.glob("version_*") if p.name[8:].isdigit()]
            version = f"version_{max(taken, default=-1) + 1}"
            held = lock_folder(exp_dir / version, f"the run folder {str(exp_dir / version)!r}")
    else:
        held = lock_folder(exp_dir / str(version), f"the run folder {str(exp_dir / str(version))!r} "
                           f"(experiment_version {version!r}; choose another one or leave it unset)")
    os.environ["VCMR_RUN_VERSION"] = str(version)
    return str(version), [held]
