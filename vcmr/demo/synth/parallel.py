"""Order-preserving parallel map for the generators (each job carries its own seed, so the
result does not depend on the number of workers)."""
from __future__ import annotations

import multiprocessing as mp
import os

from tqdm import tqdm

from vcmr.procs import die_with_parent


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_parallel(fn, jobs: list, workers: int | None = None, progress: bool = False,
                 desc: str = "") -> list:
    """``[fn(j) for j in jobs]`` on ``workers`` processes (default min(2, cpu count)), in order.
    Uses the 'spawn' start method: safe even when the caller has threads (torch, tests)."""
    workers = default_workers() if workers is None else max(1, int(workers))
    bar = tqdm(total=len(jobs), desc=desc, unit="file", disable=not progress)
    try:
        if workers == 1 or len(jobs) <= 1:
            out = []
            for j in jobs:
                out.append(fn(j))
                bar.update(1)
            return out
        with mp.get_context("spawn").Pool(min(workers, len(jobs)), initializer=die_with_parent,
                                          initargs=(os.getpid(),)) as pool:
            out = []
            for r in pool.imap(fn, jobs):
                out.append(r)
                bar.update(1)
            return out
    finally:
        bar.close()
