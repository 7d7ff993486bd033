"""What every tagging dataset loader returns, and the helpers they share.

A loader (``vcmr.data.magnatagatune``, ``vcmr.data.mtg_jamendo``) turns a dataset folder into a
:class:`TaggingSplit`: the tag list and, for one subset (train / valid / test), a list of
:class:`TaggingItem` (key, audio path, multi-hot labels). Clips listed in the split files but
missing on disk are counted, reported once in one warning, and left out.

This module sits below the loaders and ``vcmr.data.tagging`` (which dispatches to them), so
imports flow one way: tagging -> loaders -> splits.
"""
from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from vcmr.errors import VcmrError

log = logging.getLogger(__name__)

SUBSETS = ("train", "valid", "test")
DATASETS = ("magnatagatune", "mtg-jamendo")


def hash_fraction(name: str) -> float:
    """A number in [0, 1] from an md5 hash of ``name`` (deterministic across runs and machines).

    ``name`` is hashed as its bytes on disk (``os.fsencode``): UTF-8 names as UTF-8, and a name
    that is not valid UTF-8 (a surrogate-escaped str from ``os.fsdecode``) as its raw bytes."""
    return int(hashlib.md5(os.fsencode(name)).hexdigest()[:8], 16) / 0xFFFFFFFF


def hashed_split(name: str, valid_fraction: float) -> str:
    """'valid' or 'train' by :func:`hash_fraction` (audio files and prepared videos alike)."""
    return "valid" if hash_fraction(name) < valid_fraction else "train"


class DatasetFormatError(VcmrError):
    """A dataset folder or split file is missing or malformed; the message says what to fix."""


@dataclass
class TaggingItem:
    key: str  # clip / track id
    path: Path  # audio file
    labels: np.ndarray  # (n_tags,) float32 multi-hot
    relpath: str = ""  # path relative to the dataset root (names the cache entry)


@dataclass
class TaggingSplit:
    dataset: str
    subset: str
    tags: list[str]
    items: list[TaggingItem]
    root: Path
    missing: list[str] = field(default_factory=list)  # listed in the split, absent on disk

    def labels(self) -> np.ndarray:
        if not self.items:
            return np.zeros((0, len(self.tags)), dtype=np.float32)
        return np.stack([it.labels for it in self.items]).astype(np.float32)


def check_subset(subset: str) -> str:
    if subset not in SUBSETS:
        raise VcmrError(f"unknown subset {subset!r}: choose one of {', '.join(SUBSETS)}")
    return subset


def add_item(split: TaggingSplit, key, path: Optional[Path], labels, rel: str) -> None:
    """Append a clip found on disk to ``split.items``, or its relative path to ``split.missing``."""
    if path is None:
        split.missing.append(rel)
    else:
        split.items.append(TaggingItem(key, path, labels, rel))


def report_missing(split: TaggingSplit, what: str) -> None:
    """One warning for all clips of the split that are not on disk (not one per clip)."""
    if split.missing:
        n, total = len(split.missing), len(split.missing) + len(split.items)
        shown = ", ".join(split.missing[:3]) + (" ..." if n > 3 else "")
        msg = (f"{what}: {n} of {total} clips listed in the {split.subset} split are missing under "
               f"{split.root} and are left out ({shown})")
        warnings.warn(msg, stacklevel=3)
        log.warning(msg)
