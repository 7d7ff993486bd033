"""The local engine of ``vcmr prepare`` (``engine: local``, the default): one machine.

``workers`` processes decode (``job.decode_video``: one PyAV pass, scene detection, WAVs);
the main process runs the frame encoder on what they send back (``job.finish_video``) and
records each row, so decoding and encoding overlap. That pays off when the encoder runs on a
GPU. When it runs on the CPU it already keeps every core busy, and parallel decoders only
compete with it (measured on 2 cores, benchmarks/README.md), so ``workers: -1`` (auto)
decodes in the main process there.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from vcmr.prepare.download import VideoItem
from vcmr.procs import die_with_parent
from vcmr.prepare.frame_encoders import build_frame_encoder
from vcmr.prepare.job import Recorder, decode_video, finish_video
from vcmr.threads import available_cpus

__all__ = ["run_local", "resolve_workers"]


def resolve_workers(workers: int, device: str) -> int:
    """``workers`` as configured, or for -1 (auto): 0 when the encoder is on the CPU, else up to 4.

    Measured on 2 cores (benchmarks/README.md): with a CPU encoder, one decoding worker made the
    run 1.2x slower than decoding inline, and giving it a core by halving the encoder's
    threads 1.8x slower; the encoder is the bottleneck and decoding is a small part of the work.
    """
    if workers >= 0:
        return workers
    if str(device).startswith("cpu"):
        return 0
    return max(1, min(4, available_cpus() - 1))


def _decode_star(args):
    return decode_video(*args)


def _decoded(tasks: list[tuple], workers: int) -> Iterator[tuple[dict, Optional[np.ndarray]]]:
    """Results of decode_video for each task, computed by ``workers`` processes (0: inline).

    At most ``workers + 1`` results wait for the encoder, bounding memory.
    """
    if workers <= 0:
        for t in tasks:
            yield decode_video(*t)
        return
    ctx = mp.get_context("spawn")  # no fork of a process that holds torch threads
    with ctx.Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending = []
        it = iter(tasks)
        for t in it:
            pending.append(pool.apply_async(_decode_star, (t,)))
            if len(pending) > workers:
                break
        while pending:
            res = pending.pop(0).get()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(_decode_star, (nxt,)))
            yield res


def run_local(todo: list[VideoItem], data_dir: Path, cfg, recorder: Recorder) -> None:
    """Prepare ``todo`` on this machine, recording each finished video through ``recorder``."""
    encoder = build_frame_encoder(cfg.frame_encoder, cfg.frame_encoder_path, cfg.device,
                                  cfg.encoder_batch_size)
    workers = resolve_workers(cfg.workers, encoder.device)
    tasks = [(it, str(data_dir), cfg, encoder.crop_size) for it in todo]
    for row, frames in _decoded(tasks, workers):
        recorder.record(finish_video(row, frames, encoder, data_dir, cfg))
