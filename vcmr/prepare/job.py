"""The per-video job, in three steps that both engines run (``local_engine``, ``ray_engine``):

    row, frames = decode_video(item, data_dir, cfg, crop_size)   # a decoding process or task
    row = finish_video(row, frames, encoder, data_dir, cfg)      # where the frame encoder is
    recorder.record(row)                                         # the driver, once per video

``decode_video`` downloads the video if needed, takes the middle ``window_seconds`` in one
PyAV pass, detects scenes, drops the clip for a long scene and writes the WAVs;
``finish_video`` embeds the sampled frames and writes the per-second features;
``Recorder.record`` appends the row to ``manifest.jsonl`` only after that, so a video counts as
done once all its files are complete. A problem of the video itself becomes a ``failed`` or
``dropped`` row; a failed write (full disk, read-only folder) raises OutputWriteError, which
stops the run.
"""
from __future__ import annotations

import errno
import io
import time
from pathlib import Path
from typing import Optional

import numpy as np

from vcmr.audio.io import write_wav
from vcmr.paths import write_bytes_atomic
from vcmr.config import validate_prepare
from vcmr.errors import VcmrError
from vcmr.prepare.decode import DecodeError, decode_window, probe_video, window_start
from vcmr.prepare.download import DownloadError, VideoItem, download
from vcmr.prepare.manifest import append_row, new_row
from vcmr.prepare.scenes import SceneScanner

__all__ = ["OutputWriteError", "as_write_error", "check_config", "window_plan", "decode_video",
           "finish_video", "failed_row", "per_second_features", "Recorder"]


class OutputWriteError(VcmrError):
    """Writing an output failed (disk full, folder gone read-only...): the run must stop, as
    every following video would fail the same way; the video is not recorded as failed."""


def as_write_error(e: OSError) -> OutputWriteError:
    """The OutputWriteError for a failed write, naming the file and the cause."""
    cause = {errno.ENOSPC: "no space left on the disk", errno.EDQUOT: "disk quota exceeded",
             errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"
             }.get(e.errno, e.strerror or type(e).__name__)
    return OutputWriteError(f"cannot write {e.filename or 'an output file'!r} ({cause})")


def check_config(cfg) -> None:
    """The PrepareConfig checks of ``load_config``, for a config built in code, and the
    window must hold the segments."""
    if cfg.n_segments * cfg.segment_seconds > cfg.window_seconds + 1e-6:
        raise VcmrError(f"config: n_segments x segment_seconds ({cfg.n_segments} x "
                        f"{cfg.segment_seconds}) exceeds window_seconds ({cfg.window_seconds}); "
                        f"lower n_segments/segment_seconds or raise window_seconds")
    validate_prepare(cfg)


def window_plan(duration_s: float, cfg) -> Optional[tuple[float, int]]:
    """(window seconds, number of segments) for a video, or None when it is too short."""
    if duration_s + 1e-3 >= cfg.window_seconds:
        return cfg.window_seconds, cfg.n_segments
    if cfg.too_short_rule == "keep_shorter":
        n = min(cfg.n_segments, int((duration_s + 1e-3) // cfg.segment_seconds))
        if n >= 1:
            return n * cfg.segment_seconds, n
    return None


def local_path(item: VideoItem) -> Optional[str]:
    """The input's own file (None for a URL, also once downloaded): its row's source."""
    return item.path if item.url is None else None


def failed_row(item: VideoItem, cfg, reason: str, error: str, seconds: float) -> dict:
    """The row of a video whose job did not return (a download failed, its worker died...)."""
    row = new_row(item.id, item.source, cfg, local_path(item))
    row.update(reason=reason, error=error, seconds_taken=round(seconds, 3))
    return row


# ------------------------------------------------------------------------------ decoding side
def decode_video(item: VideoItem, data_dir: str | Path, cfg,
                 crop_size: int) -> tuple[dict, Optional[np.ndarray]]:
    """Download if needed, decode the window, filter scenes, write the WAVs.

    Returns (manifest row without features, sampled frames or None). Raises only
    OutputWriteError (the run must stop); any other problem is the video's and recorded.
    """
    t0 = time.perf_counter()
    row = new_row(item.id, item.source, cfg, local_path(item))
    frames = None
    try:
        frames = _decode(item, Path(data_dir), cfg, crop_size, row)
    except DownloadError as e:
        row.update(status="failed", reason="download_error", error=str(e))
    except DecodeError as e:
        row.update(status="failed", reason=e.reason, error=str(e))
    except OutputWriteError:
        raise
    except Exception as e:  # one bad video never stops the run
        row.update(status="failed", reason="decode_error", error=f"{type(e).__name__}: {e}")
    row["seconds_taken"] = round(time.perf_counter() - t0, 3)
    return row, frames


def _decode(item: VideoItem, data_dir: Path, cfg, crop_size: int, row: dict) -> Optional[np.ndarray]:
    path = Path(item.path) if item.path else download(item, data_dir / "raw")
    info = probe_video(path)
    row["duration_s"] = round(info.duration_s, 3)
    plan = window_plan(info.duration_s, cfg)
    if plan is None:
        row.update(status="dropped", reason="too_short")
        return None
    if not info.has_audio:
        raise DecodeError(f"{path}: the file has no audio stream", "no_audio")
    window, n_seg = plan
    start = window_start(info.duration_s, window, info.fps)
    row.update(start_s=round(start, 4), window_s=window)
    scanner = SceneScanner(info.fps, start, start + window, cfg.scene_threshold,
                           cfg.scene_min_scene_len, cfg.max_scene_seconds)
    win = decode_window(path, start, window, sample_fps=cfg.frames_per_second,
                        crop_size=crop_size, scene_width=cfg.scene_downscale_width,
                        sample_rate=cfg.sample_rate, on_scene_frame=scanner.feed)
    stats = scanner.finish()
    row.update(n_scenes=stats.n_scenes, max_scene_s=stats.max_scene_s, scene_cuts_s=stats.cuts_s)
    if not stats.complete:
        row["scene_scan"] = "stopped_at_long_scene"  # n_scenes/max_scene_s cover the scanned part
    if win.stopped_early or stats.max_scene_s > cfg.max_scene_seconds:
        row.update(status="dropped", reason="long_scene")
        return None
    seg_len = int(round(cfg.segment_seconds * cfg.sample_rate))
    row["audio_files"] = _write_segments(win.audio, item.id, data_dir, n_seg, seg_len, cfg.sample_rate)
    row.update(status="kept", reason=None, n_segments=n_seg)
    return win.frames


def _write_segments(audio: np.ndarray, item_id: str, data_dir: Path, n: int, seg_len: int,
                    sample_rate: int) -> list[str]:
    files = []
    try:
        for k in range(n):
            rel = f"audio/{item_id}/{item_id}_{k}.wav"
            write_wav(data_dir / rel, audio[k * seg_len:(k + 1) * seg_len], sample_rate)
            files.append(rel)
    except OSError as e:  # this video's segments are useless without the others
        for rel in files:
            (data_dir / rel).unlink(missing_ok=True)
        raise as_write_error(e) from None
    return files


# ------------------------------------------------------------------------------ encoding side
def per_second_features(feats: np.ndarray, fps: int) -> np.ndarray:
    """(seconds * fps, D) frame embeddings -> (seconds, D) means of each second."""
    return feats.reshape(-1, fps, feats.shape[-1]).mean(axis=1).astype(np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    try:
        write_bytes_atomic(path, buf.getvalue())
    except OSError as e:
        raise as_write_error(e) from None


def finish_video(row: dict, frames: Optional[np.ndarray], encoder, data_dir: str | Path, cfg) -> dict:
    """Embed a kept video's frames and write ``video/<id>.npy``; other rows pass through."""
    if row["status"] != "kept":
        return row
    t0 = time.perf_counter()
    feats = per_second_features(encoder.encode(frames), cfg.frames_per_second)
    rel = f"video/{row['id']}.npy"
    _save_npy(Path(data_dir) / rel, feats)
    row.update(video_file=rel, feature_dim=int(feats.shape[1]))
    row["seconds_taken"] = round(row["seconds_taken"] + time.perf_counter() - t0, 3)
    return row


# ------------------------------------------------------------------------------ driver side
class Recorder:
    """The one manifest writer of a run (both engines): appends a finished video's row (its
    files are already complete), counts it and moves the progress bar."""

    def __init__(self, data_dir: Path, done: dict, summary: dict, bar=None):
        self.data_dir, self.done, self.summary, self.bar = data_dir, done, summary, bar

    def record(self, row: dict) -> None:
        try:
            append_row(self.data_dir, row)
        except OSError as e:
            raise as_write_error(e) from None
        self.done[row["id"]] = row
        c = self.summary["counts"]
        c[row["status"]] += 1
        if row["reason"]:
            self.summary["reasons"][f"{row['status']}:{row['reason']}"] += 1
        if self.bar is not None:
            self.bar.set_postfix(kept=c["kept"], dropped=c["dropped"], failed=c["failed"], refresh=False)
            self.bar.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
