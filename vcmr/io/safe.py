"""The one reader of pickled checkpoint files: ``torch.load(weights_only=True)``.

The only class allowed beyond tensors and plain containers is ``argparse.Namespace`` (the
hyper-parameters Lightning 1.x saved from argparse), by name. Anything else is refused with the
class named; nothing is ever unpickled in full, whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
says. Every vcmr checkpoint, foreign checkpoint and resume file goes through ``read_weights_only``.

A leaf module (torch and ``vcmr.errors`` only), so the config loader can use it too.
"""
from __future__ import annotations

import argparse
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from vcmr.errors import CheckpointError

ALLOWED_CLASSES = [argparse.Namespace]  # Lightning 1.x hyper-parameters saved from argparse


def read_weights_only(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` on CPU with exactly ``ALLOWED_CLASSES`` added; a file
    that is not a torch file, is damaged, or holds any other object is a CheckpointError
    naming ``what`` and the file (the object is never constructed)."""
    try:
        with torch.serialization.safe_globals(ALLOWED_CLASSES):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if _refused_global(e) is None:  # not an object: damaged or not a torch file at all
            raise CheckpointError(f"{what} {str(path)!r} cannot be read ({_last_line(e)}); is the "
                                  f"file complete?") from None
        raise CheckpointError(
            f"{what} {str(path)!r} refused: it holds a Python object that loading would have to "
            f"construct ({_refused_global(e)}); vcmr reads only tensors, plain containers and "
            f"argparse.Namespace, so nothing in the file runs. Save the weights as a plain "
            f"state dict (or export them as .safetensors) from a trusted copy") from None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"{what} {str(path)!r} cannot be read ({type(e).__name__}: {first}); "
                              f"is the file complete?") from None


def hyper_parameters(ckpt: Any) -> dict[str, Any]:
    """The ``hyper_parameters`` of a loaded Lightning checkpoint as a dict ({} if none)."""
    hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    if isinstance(hp, argparse.Namespace):
        hp = vars(hp)
    return dict(hp) if isinstance(hp, dict) else {}


def _refused_global(e: Exception) -> str | None:
    """The class or function torch's weights-only unpickler refused, from its message."""
    m = re.search(r"GLOBAL ([\w.]+)", str(e))
    return f"class or function {m.group(1)}" if m else None


def _last_line(e: Exception) -> str:
    m = re.search(r"WeightsUnpickler error:\s*(\S.*)", str(e))  # torch's reason, not its advice
    lines = [m.group(1)] if m else [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__
