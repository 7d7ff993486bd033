"""Which torch device to run on: one rule for every part of vcmr (a leaf module: torch only).

    resolve_device(None)       # cuda when this machine has a usable CUDA GPU, else cpu
    resolve_device("gpu")      # cuda (Lightning's accelerator name), or a VcmrError without one
    resolve_device("cuda:1", "--device")   # a VcmrError naming --device when there is no GPU 1

The names are torch's device names (``cpu``, ``cuda``, ``cuda:1``, ``mps``) plus ``auto`` and
``gpu``, so the same function reads ``vcmr embed --device``, the ``accelerator`` key of the
training and evaluation configs and the ``device`` key of ``vcmr prepare``.
"""
from __future__ import annotations

import torch

from vcmr.errors import VcmrError

ALIASES = {"gpu": "cuda"}  # Lightning's accelerator name for CUDA


def cuda_count() -> int:
    """Usable CUDA devices (0 on a machine or a PyTorch build without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(name: str | torch.device | None = None, what: str = "device") -> torch.device:
    """The device ``name`` stands for, checked against this machine.

    None or ``auto``: the first CUDA GPU when there is one, else the CPU. Any other name must
    exist here: a CUDA device index below the number of GPUs, MPS only where it is available;
    otherwise a VcmrError names the setting (``what``, e.g. ``--device`` or ``accelerator``)
    and the fix, before any work starts.
    """
    if name is None or str(name).strip().lower() == "auto":
        return torch.device("cuda" if cuda_count() else "cpu")
    text = str(name).strip().lower()
    try:
        dev = torch.device(ALIASES.get(text, text))
    except (RuntimeError, ValueError):
        raise VcmrError(f"{what} {name!r} is not a device name; use cpu, cuda, cuda:1, mps or "
                        f"auto") from None
    if dev.type == "cuda":
        n = cuda_count()
        if n == 0:
            raise VcmrError(f"{what} {name}: this machine has no usable CUDA GPU (or this PyTorch "
                            f"build has no CUDA support); use {what} cpu or {what} auto")
        if dev.index is not None and dev.index >= n:
            raise VcmrError(f"{what} {name}: there are only {n} CUDA device(s) (0..{n - 1})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise VcmrError(f"{what} {name}: MPS is not available here; use {what} cpu")
    return dev
