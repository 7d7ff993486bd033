"""Tagging datasets (MagnaTagATune, MTG-Jamendo): split loading and the torch datasets.

A loader (``vcmr.data.splits`` defines what it returns) turns a dataset folder into a :class:`TaggingSplit`: the tag list and, for one subset
(train / valid / test), a list of :class:`TaggingItem` (key, audio path, multi-hot labels).
Clips listed in the split files but missing on disk are counted, reported once in one warning,
and left out, so an epoch never stops in the middle.

Two torch datasets read the audio (from the decoded cache of ``vcmr.data.cache`` when there is
one, else by decoding the file):

* :class:`CropDataset` — one ``audio_length`` crop per song: random for training (fresh every
  epoch, reproducible from seed, epoch and index), the middle of the song for validation.
* :class:`SongDataset` — the whole song (mono, at the model's rate) for song-level evaluation.

Both return ``None`` for an unreadable file (with a warning naming it); the collate functions
drop such items.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from vcmr.audio.io import AudioReadError
from vcmr.data.cache import read_cached_or_decode
from vcmr.data.magnatagatune import load_magnatagatune
from vcmr.data.mtg_jamendo import load_mtg_jamendo
from vcmr.data.splits import (DATASETS, SUBSETS, DatasetFormatError, TaggingItem,  # noqa: F401
                              TaggingSplit, add_item, check_subset, report_missing)
from vcmr.errors import VcmrError

log = logging.getLogger(__name__)


def load_split(dataset: str, root: str | Path, subset: str, split: str = "pons2017",
               category: str = "moodtheme") -> TaggingSplit:
    """The tag list and the items of ``subset`` for either dataset (dispatch by name)."""
    check_subset(subset)
    if dataset == "magnatagatune":
        return load_magnatagatune(root, subset, split)
    if dataset == "mtg-jamendo":
        return load_mtg_jamendo(root, subset, split, category)
    raise VcmrError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


def load_split_from_config(cfg, subset: str) -> TaggingSplit:
    """``load_split`` with the keys of a TaggingConfig or EvaluateConfig."""
    split = cfg.split
    if cfg.dataset == "mtg-jamendo" and split == "pons2017":
        split = "split-0"  # the shared default names a MagnaTagATune split
    return load_split(cfg.dataset, cfg.dataset_dir, subset, split, cfg.subset_category)


# ---------------------------------------------------------------------------- audio access
AudioReader = Callable[[TaggingItem], np.ndarray]


def make_reader(sample_rate: int, cache_dir: Optional[str | Path]) -> AudioReader:
    """A function item -> mono float32 audio at ``sample_rate`` (cache first, then decode)."""

    def read(item: TaggingItem) -> np.ndarray:
        return read_cached_or_decode(item, sample_rate, cache_dir)
    return read


def crop(x: np.ndarray, length: int, start: int) -> np.ndarray:
    """``length`` samples from ``start``; zero-padded at the end when the song is shorter."""
    out = np.asarray(x[start:start + length], dtype=np.float32)
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out


def read_or_warn(read, item):
    """Audio of ``item``, or None with a warning naming the file (one bad file never stops an epoch)."""
    try:
        return read(item)
    except (AudioReadError, OSError, ValueError) as e:
        warnings.warn(f"skipping unreadable audio file {item.path}: {e}", stacklevel=3)
        return None


class CropDataset(Dataset):
    """One crop of ``audio_length`` samples per song with its labels: ``(x (L,), y (n_tags,))``."""

    def __init__(self, split: TaggingSplit, sample_rate: int, audio_length: int, train: bool,
                 cache_dir: Optional[str | Path] = None, seed: int = 0):
        self.split, self.items = split, split.items
        self.audio_length, self.train, self.seed = audio_length, train, seed
        self.read = make_reader(sample_rate, cache_dir)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int):
        item = self.items[idx]
        x = read_or_warn(self.read, item)
        if x is None:
            return None
        spare = max(0, len(x) - self.audio_length)
        if self.train:
            start = int(np.random.default_rng([self.seed, self.epoch, idx]).integers(0, spare + 1))
        else:
            start = spare // 2
        return torch.from_numpy(crop(x, self.audio_length, start)), torch.from_numpy(item.labels)


class SongDataset(Dataset):
    """Whole songs: ``(index, x (samples,), y (n_tags,))``; ``None`` when unreadable."""

    def __init__(self, split: TaggingSplit, sample_rate: int, cache_dir: Optional[str | Path] = None):
        self.split, self.items = split, split.items
        self.read = make_reader(sample_rate, cache_dir)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int):
        item = self.items[idx]
        x = read_or_warn(self.read, item)
        if x is None:
            return None
        return idx, np.asarray(x, dtype=np.float32), item.labels


def collate_crops(batch):
    """Stack readable ``(x, y)`` pairs; an all-bad batch gives empty tensors."""
    good = [b for b in batch if b is not None]
    if not good:
        return torch.zeros(0, 0), torch.zeros(0, 0)
    return torch.stack([g[0] for g in good]), torch.stack([g[1] for g in good])


def collate_songs(batch):
    """Keep songs as a list (lengths differ); unreadable ones dropped."""
    return [b for b in batch if b is not None]
