"""One-time cache of decoded, resampled audio for the tagging datasets.

Decoding mp3 dominates training time when it happens every epoch, so ``vcmr cache-audio``
(or :func:`cache_audio`) decodes every clip once, in parallel processes with a progress bar,
to ``<cache_dir>/<sample_rate>/<relative path>.npy`` (mono, float16: half the disk of float32
and far below mp3's own precision). Readers memory-map the arrays, so a training crop reads
only its own samples. Files that cannot be decoded are counted and named, never fatal.

    vcmr cache-audio --dataset magnatagatune --dataset_dir data/mtat --cache_dir cache/mtat
    vcmr train tagging ... --cache_dir cache/mtat
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from tqdm.auto import tqdm

from vcmr.audio.io import AudioReadError, read_audio
from vcmr.paths import atomic_output
from vcmr.procs import die_with_parent


def cache_path(cache_dir: str | Path, sample_rate: int, relpath: str) -> Path:
    return Path(cache_dir) / str(sample_rate) / (relpath + ".npy")


def _save_atomic(path: Path, x: np.ndarray) -> None:
    """Unique temporary per writer, renamed when complete, removed on failure (disk full)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, x.astype(np.float16))


def read_cached_or_decode(item, sample_rate: int, cache_dir: Optional[str | Path]) -> np.ndarray:
    """Audio of a TaggingItem: the cached array (memory-mapped) when present, else decoded."""
    if cache_dir:
        p = cache_path(cache_dir, sample_rate, item.relpath or item.path.name)
        if p.is_file():
            return np.load(p, mmap_mode="r")
    x, _ = read_audio(item.path, sample_rate)
    return x


def _cache_one(args: tuple[str, str, int]) -> tuple[str, str]:
    src, dst, sample_rate = args
    if Path(dst).is_file():
        return "cached", ""
    try:
        x, _ = read_audio(src, sample_rate)
    except (AudioReadError, OSError, ValueError) as e:
        return "failed", f"{src}: {e}"
    _save_atomic(Path(dst), x)
    return "decoded", ""


def cache_audio(items: Iterable, cache_dir: str | Path, sample_rate: int, workers: int = 2,
                progress: bool = True) -> dict:
    """Decode and resample ``items`` (TaggingItem) into ``cache_dir``; returns counts and errors.

    Already cached clips are skipped, so the command can be re-run after an interruption.
    """
    jobs = [(str(it.path), str(cache_path(cache_dir, sample_rate, it.relpath or it.path.name)), sample_rate)
            for it in items]
    counts = {"decoded": 0, "cached": 0, "failed": 0}
    errors: list[str] = []
    bar = tqdm(total=len(jobs), desc="caching audio", unit="clip", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:  # no orphans if killed
            results = pool.map(_cache_one, jobs, chunksize=8)
            for status, err in results:
                counts[status] += 1
                errors += [err] if err else []
                bar.update(1)
    else:
        for job in jobs:
            status, err = _cache_one(job)
            counts[status] += 1
            errors += [err] if err else []
            bar.update(1)
    bar.close()
    return {**counts, "errors": errors, "cache_dir": str(Path(cache_dir) / str(sample_rate))}
