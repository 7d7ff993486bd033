"""``manifest.jsonl``: one JSON object per line, one line per prepared input.

The one reader and writer of the file (``vcmr prepare`` writes it, stage 2's dataset, the
demo and ``vcmr prepare merge`` read it). A row (``new_row`` lists every key)::

    {"id": "abc", "source": "videos/abc.mp4", "source_path": "/abs/videos/abc.mp4",
     "source_size": bytes, "source_mtime_ns": int,  (all three null for a URL)
     "status": "kept" | "dropped" | "failed",
     "reason": null | "too_short" | "long_scene" | "no_audio" | "decode_error" | ...,
     "duration_s", "start_s", "window_s", "n_scenes", "max_scene_s", "scene_cuts_s",
     "n_segments", "feature_dim", "frame_encoder", "seconds_taken",
     "settings": {the OUTPUT_KEYS that made the outputs},
     "audio_files": ["audio/abc/abc_0.wav", ...], "video_file": "video/abc.npy"}  (kept rows)

A run appends rows as videos finish (``append_row``) and compacts the file to one row per id
at its end (``write_rows``); readers take the last row of an id. An id is trusted (a rerun
skips it, ``merge`` takes it as the same video) only for the same source: ``same_source``
compares the path, size and mtime stored in the row. Kept only with light imports
(no PyAV, no torch), since ``vcmr.data`` reads it.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional

from vcmr.paths import write_bytes_atomic
from vcmr.errors import VcmrError

__all__ = ["MANIFEST", "DONE_STATUSES", "OUTPUT_KEYS", "ManifestError", "output_settings",
           "SOURCE_KEYS", "source_stat", "same_source", "new_row", "read_rows", "read_manifest", "kept_ids", "append_row", "write_rows",
           "row_files", "is_done"]

MANIFEST = "manifest.jsonl"
DONE_STATUSES = ("kept", "dropped")  # failed videos are retried by the next run
# PrepareConfig keys that decide a video's outputs; stored in its row so a rerun with other
# values can say which finished videos keep outputs made with the old ones
OUTPUT_KEYS = ("window_seconds", "segment_seconds", "n_segments", "sample_rate",
               "frames_per_second", "max_scene_seconds", "scene_threshold",
               "scene_min_scene_len", "scene_downscale_width", "too_short_rule", "frame_encoder",
               "frame_encoder_path")


SOURCE_KEYS = ("source_path", "source_size", "source_mtime_ns")


class ManifestError(VcmrError):
    """A line of the manifest is not a row (strict reading only)."""


def output_settings(cfg) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in OUTPUT_KEYS}


def source_stat(path: Optional[str | Path]) -> dict[str, Any]:
    """The ``SOURCE_KEYS`` of a local file (real path, size, mtime), all None for a URL (no
    path) or a file that cannot be read."""
    if not path:
        return dict.fromkeys(SOURCE_KEYS)
    try:
        st = os.stat(path)
    except OSError:
        return dict.fromkeys(SOURCE_KEYS)
    return {"source_path": os.path.realpath(path), "source_size": st.st_size,
            "source_mtime_ns": st.st_mtime_ns}


def same_source(row: Optional[dict], stat: dict) -> bool:
    """True when ``row`` was made from the source ``stat`` describes (``source_stat``)."""
    return row is not None and all(row.get(k) == stat.get(k) for k in SOURCE_KEYS)


def new_row(video_id: str, source: str, cfg, path: Optional[str | Path] = None) -> dict[str, Any]:
    """A video's row before anything is known about it: ``failed``, every key present;
    ``path`` is the local file (None for a URL)."""
    return {"id": video_id, "source": source, **source_stat(path), "status": "failed", "reason": None,
            "duration_s": None, "start_s": None, "window_s": None, "n_scenes": None,
            "max_scene_s": None, "scene_cuts_s": [], "n_segments": 0, "feature_dim": None,
            "frame_encoder": cfg.frame_encoder, "seconds_taken": None,
            "settings": output_settings(cfg)}


# ------------------------------------------------------------------------------ reading
def read_rows(data_dir: str | Path, strict: bool = False) -> list[dict]:
    """Every row of ``data_dir/manifest.jsonl`` in file order ([] when there is none).

    A line that is not a JSON object with an ``id`` (the torn last line of a killed run) is
    skipped, or with ``strict`` raises a ManifestError naming it.
    """
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and "id" in row:
            rows.append(row)
        elif strict:
            raise ManifestError(f"{path}: line {n} is not valid JSON" if row is None else
                                f"{path}: line {n} is not a row (a JSON object with an id)")
    return rows


def read_manifest(data_dir: str | Path, strict: bool = False) -> dict[str, dict]:
    """id -> the last row of that id (see ``read_rows``)."""
    return {row["id"]: row for row in read_rows(data_dir, strict)}


def kept_ids(data_dir: str | Path, strict: bool = False) -> list[str]:
    """Ids whose last row has status ``kept``, sorted."""
    return sorted(vid for vid, row in read_manifest(data_dir, strict).items()
                  if row.get("status") == "kept")


def row_files(row: dict) -> list[str]:
    """The output files a row lists, relative to the data folder."""
    return list(row.get("audio_files", [])) + ([row["video_file"]] if row.get("video_file") else [])


def is_done(row: Optional[dict], data_dir: Path) -> bool:
    """Kept or dropped, and every file it lists is there: a rerun skips the video."""
    if not row or row.get("status") not in DONE_STATUSES:
        return False
    return all((data_dir / f).is_file() for f in row_files(row))


# ------------------------------------------------------------------------------ writing
def _ends_torn(path: Path) -> bool:
    """True when the file ends without a newline (a run killed while appending)."""
    if not path.is_file() or not path.stat().st_size:
        return False
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def append_row(data_dir: Path, row: dict) -> None:
    """Append one row and fsync; a row cut short by a full disk is cut off again (the file
    is truncated back), so the manifest never ends in half a row that a later append extends.
    Raises the OSError, naming the file."""
    path = Path(data_dir) / MANIFEST
    data = (("\n" if _ends_torn(path) else "") + json.dumps(row) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        e.filename = e.filename or str(path)
        raise
    finally:
        os.close(fd)


def write_rows(data_dir: Path, rows: Iterable[dict]) -> None:
    """Replace the manifest with ``rows`` (atomically: a temporary file, then a rename)."""
    write_bytes_atomic(Path(data_dir) / MANIFEST, "".join(json.dumps(r) + "\n" for r in rows).encode())
