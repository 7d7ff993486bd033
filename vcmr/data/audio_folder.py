"""A folder of audio files for self-supervised training (stage 1).

* Finds .wav/.flac/.mp3/.ogg (and .opus/.aiff) files recursively.
* Train/valid split by a hash of each file's path relative to the root: stable when files are
  added or removed, and identical on every machine.
* Each item is one excerpt of ``excerpt_length`` samples (mono, at ``sample_rate``) taken at a
  random position (training) or from the middle of the file (validation). Files shorter than
  the excerpt are zero-padded at the end; files shorter than ``min_samples`` are left out.
* Files that cannot be read are skipped with a warning naming them (``collate_skip_bad``
  drops them from the batch), so one broken file never stops an epoch.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from vcmr.audio.io import (AUDIO_EXTENSIONS, AudioReadError, find_audio_files, read_audio, resample,
                           soundfile_channel_names, to_mono)
from vcmr.data.splits import hash_fraction, hashed_split
from vcmr.errors import VcmrError
from vcmr.paths import unreadable_folders

log = logging.getLogger(__name__)


def split_of(relative_path: str, valid_fraction: float) -> str:
    """'valid' or 'train' from an md5 hash of the relative path (deterministic, stable)."""
    return hashed_split(relative_path, valid_fraction)


MIN_VALID_FILES = 2  # NT-Xent needs at least two items in a validation batch


def list_split(root: str | Path, split: str, valid_fraction: float = 0.1) -> list[Path]:
    """Files of ``split`` ('train', 'valid' or 'all') under ``root``.

    A file is in 'valid' when the hash of its relative path is below ``valid_fraction``. Small
    folders (at least 4 files) always get MIN_VALID_FILES validation files: those with the
    lowest hashes.
    """
    root = Path(root)
    if not root.is_dir():
        raise VcmrError(f"dataset_dir {str(root)!r} does not exist or is not a folder; "
                        f"point --dataset_dir at a folder of audio files ({', '.join(AUDIO_EXTENSIONS)})")
    blocked = unreadable_folders(root)
    files = find_audio_files(root)
    if blocked and not files:
        raise VcmrError(f"dataset_dir {str(root)!r}: cannot read folder(s) {', '.join(blocked)}; fix "
                        f"the permissions (chmod u+rx) or run as a user who can read them")
    if blocked:
        warnings.warn(f"dataset_dir {str(root)!r}: cannot read folder(s) {', '.join(blocked)}: "
                      f"their audio files are left out", stacklevel=2)
    if not files:
        raise VcmrError(f"no audio files found under {str(root)!r} (searched recursively for "
                        f"{', '.join(AUDIO_EXTENSIONS)})")
    if split == "all":
        return files
    ranked = sorted(files, key=lambda f: hash_fraction(f.relative_to(root).as_posix()))
    valid = [f for f in ranked if split_of(f.relative_to(root).as_posix(), valid_fraction) == "valid"]
    if len(valid) < MIN_VALID_FILES and len(files) >= 2 * MIN_VALID_FILES and valid_fraction > 0:
        valid = ranked[:MIN_VALID_FILES]
    valid_set = set(valid)
    return sorted(valid) if split == "valid" else [f for f in files if f not in valid_set]


def read_excerpt(path: Path, start_s: float | None, n_samples: int, sample_rate: int,
                 rng: np.random.Generator | None) -> np.ndarray:
    """``n_samples`` mono samples at ``sample_rate`` from ``path``; random start when ``rng``.

    Reads only the needed range when soundfile can seek; zero-pads short files at the end.
    """
    try:
        info = sf.info(os.fsencode(path))
        sr_in, total = info.samplerate, info.frames
        need = int(np.ceil(n_samples * sr_in / sample_rate)) + 16
        if total <= need:
            start = 0
        elif rng is not None:
            start = int(rng.integers(0, total - need + 1))
        else:
            start = (total - need) // 2 if start_s is None else min(int(start_s * sr_in), total - need)
        x, _ = sf.read(os.fsencode(path), start=start, frames=need, dtype="float32", always_2d=False)
        if x.ndim == 2:  # the downmix weights follow the format's channel order
            x = to_mono(x, soundfile_channel_names(info.format, x.shape[1]))
        x = resample(x, sr_in, sample_rate)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        x, _ = read_audio(path, sample_rate)  # other containers: decode fully
        if len(x) > n_samples:
            start = int(rng.integers(0, len(x) - n_samples + 1)) if rng is not None else (len(x) - n_samples) // 2
            x = x[start:start + n_samples]
    if len(x) < n_samples:
        x = np.pad(x, (0, n_samples - len(x)))
    return x[:n_samples]


class AudioFolder(Dataset):
    """Excerpts of the audio files in a folder; ``None`` for an unreadable file."""

    def __init__(self, root: str | Path, split: str, sample_rate: int, excerpt_length: int,
                 valid_fraction: float = 0.1, min_samples: int = 0, seed: int = 0):
        self.root = Path(root)
        self.split = split
        self.sample_rate = sample_rate
        self.excerpt_length = excerpt_length
        self.seed = seed
        self.files = self._usable(list_split(root, split, valid_fraction), min_samples)
        self.epoch = 0

    def _usable(self, files: list[Path], min_samples: int) -> list[Path]:
        if min_samples <= 0:
            return files
        kept = []
        for f in files:
            try:
                info = sf.info(os.fsencode(f))
                if info.frames * self.sample_rate / info.samplerate >= min_samples:
                    kept.append(f)
            except Exception:
                kept.append(f)  # decided (and reported) when read
        return kept

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, idx: int) -> torch.Tensor | None:
        path = self.files[idx]
        # Training: a fresh random excerpt each epoch, reproducible from (seed, epoch, idx);
        # ``epoch`` is set in the reading process (vcmr.data.sampling.EpochItems).
        rng = (np.random.default_rng([self.seed, self.epoch, idx]) if self.split == "train" else None)
        try:
            x = read_excerpt(path, None, self.excerpt_length, self.sample_rate, rng)
        except (AudioReadError, Exception) as e:  # never stop the epoch for one file
            warnings.warn(f"skipping unreadable audio file {path}: {e}", stacklevel=2)
            return None
        return torch.from_numpy(np.ascontiguousarray(x))


def collate_skip_bad(items: list[torch.Tensor | None]) -> torch.Tensor:
    """Stack the readable items; an all-bad batch gives an empty (0, T) tensor."""
    good = [x for x in items if x is not None]
    if not good:
        return torch.zeros(0, 0)
    return torch.stack(good)


def collate_indexed(items: list[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, index)`` pairs (``EpochItems(..., with_index=True)``) -> ``(batch (B, T), indices
    (B,))`` of the readable items; an all-bad batch gives ``(0, 0)`` and ``(0,)`` tensors."""
    good = [it for it in items if it is not None]
    return collate_skip_bad([x for x, _ in good]), torch.tensor([i for _, i in good], dtype=torch.long)
