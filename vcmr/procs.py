"""Worker processes that never outlive the process that started them.

A pool worker blocks on a pipe whose write end it also holds, so when its parent is killed
(SIGKILL, the out-of-memory killer) it never sees end-of-file and runs on as an orphan, holding
its memory. Every vcmr pool passes :func:`die_with_parent` as its initializer:

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment the thread
  that started it exits (vcmr starts pool workers from the main thread, or from a pool's own
  handler thread, which lives as long as the pool);
* elsewhere, or if prctl is unavailable: a daemon thread that checks ``os.getppid()`` every
  ``POLL_S`` seconds and exits the worker when the parent is gone (re-parented);
* either way the parent may have died before the call: checked at once.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this process when ``parent_pid`` (the caller's ``os.getpid()``)
    dies. Pass it as ``initializer=die_with_parent, initargs=(os.getpid(),)``."""
    if not _set_pdeathsig():
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                         name="vcmr-parent-watch").start()
    if os.getppid() != parent_pid:  # died before the line above took effect
        os._exit(1)


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os._exit(1)
