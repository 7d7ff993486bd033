"""Crash-safe checkpoint files: the previous good ``last.ckpt`` / ``best.ckpt`` stays until the
new one is complete.

Lightning's own writer stages the file in ``$TMPDIR`` and moves it into place; when the log
folder is on another filesystem (NFS, scratch, tmpfs) the move is a copy that first truncates
the old file, so a kill during the copy leaves ``last.ckpt`` at 0 bytes. Here the file is
written to a temporary name in the SAME folder, flushed and fsync'ed, renamed onto the final
name with ``os.replace`` (atomic within one filesystem), and the folder is fsync'ed so the
rename survives a power cut. Every checkpoint Lightning writes goes through this class
(``ModelCheckpoint``, :class:`vcmr.train.trainer.SaveOnSigterm`, SLURM's ``hpc_ckpt``).

Temporaries are named ``.<final name>.<host>.<pid>.<random>.tmp``: they never match ``*.ckpt``,
and one left by a killed write (this host, process gone) is removed at the next save into
that folder.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
from pathlib import Path
from typing import Any, Optional

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

TMP_SUFFIX = ".tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _tmp_prefix(final: Path) -> str:
    return f".{final.name}.{socket.gethostname()}."


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Delete temporaries of ``final`` left by killed writes on this host; return them."""
    removed = []
    prefix = _tmp_prefix(final)
    for tmp in final.parent.glob(f"{_glob_escape(prefix)}*{TMP_SUFFIX}"):
        pid = tmp.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is done anyway
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(checkpoint: Any, path: str | os.PathLike) -> None:
    """``torch.save(checkpoint)`` to ``path`` through a fsync'ed temporary in the same folder."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = final.with_name(f"{_tmp_prefix(final)}{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        with open(tmp, "xb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(final.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with :func:`save_atomic` as the writer."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        save_atomic(checkpoint, path)
