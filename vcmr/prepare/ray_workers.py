"""What runs in Ray's worker processes for ``vcmr prepare --engine ray``: the download task,
the decode task and the encoder actor, each a thin shell around ``vcmr.prepare.job``.

``ray_engine`` and ``ray_scheduler`` wrap them with ``ray.remote`` when a run starts, looking
them up in this module then (Ray is not imported here). torch is imported by the encoder
actor only, so that the worker processes of decode tasks stay without it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from vcmr.errors import VcmrError
from vcmr.prepare.download import DownloadError, VideoItem, download
from vcmr.prepare.frame_encoders import build_frame_encoder
from vcmr.prepare.job import decode_video, finish_video
from vcmr.threads import available_cpus

__all__ = ["download_task", "decode_task", "EncoderActor"]


def download_task(item: VideoItem, raw_dir: str) -> tuple[Optional[str], Optional[str]]:
    """Download task: (local path, None) or (None, error message)."""
    try:
        return str(download(item, Path(raw_dir))), None
    except DownloadError as e:
        return None, str(e)


def decode_task(item: VideoItem, data_dir: str, cfg, crop_size: int):
    """Decode task: ``job.decode_video`` (its row and frames become two Ray objects)."""
    return decode_video(item, data_dir, cfg, crop_size)


class EncoderActor:
    """Encoder actor: builds the frame encoder once, then finishes videos (encode + write).

    ``threads``: torch threads; 0 keeps torch's default (GPU actors), -1 shares this node's
    cores among the ``per_node`` actors on it (CPU actors by default).
    """

    def __init__(self, cfg, threads: int, per_node: int = 1):
        self.cfg, self.error = cfg, None
        try:
            import torch
            if threads < 0:
                threads = max(1, available_cpus() // max(1, per_node))
            if threads > 0:
                torch.set_num_threads(threads)
            self.encoder = build_frame_encoder(cfg.frame_encoder, cfg.frame_encoder_path,
                                               cfg.device, cfg.encoder_batch_size)
        except VcmrError as e:  # reported by the driver as a clear error
            self.error = str(e)
        except Exception as e:  # (not a crash: a restarted actor would fail the same way)
            self.error = f"frame encoder {cfg.frame_encoder!r} failed to load: {type(e).__name__}: {e}"

    def info(self) -> dict:
        if self.error:
            return {"error": self.error}
        import torch
        return {"crop_size": self.encoder.crop_size, "device": str(self.encoder.device),
                "threads": torch.get_num_threads()}

    def prepare(self, item: VideoItem, data_dir: str, crop_size: int) -> dict:
        """Decode and finish a video in this actor (CPU actors): the local engine's loop."""
        row, frames = decode_task(item, data_dir, self.cfg, crop_size)
        if row["status"] != "kept":
            return row
        return self.finish(row, frames, data_dir)

    def finish(self, row: dict, frames, data_dir: str) -> dict:
        frames = np.array(frames)  # the object store's copy is read-only; torch wants writable
        return finish_video(row, frames, self.encoder, data_dir, self.cfg)
