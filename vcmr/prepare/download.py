"""Inputs of ``vcmr prepare``: video files, folders, and lists of YouTube ids / URLs.

    items = collect_inputs(["videos/", "video_list.txt"])   # [VideoItem(id, source, path|url)]
    path = download(item, raw_dir)                          # yt-dlp, raises DownloadError

Ids become file names, so they are sanitised: only ``[A-Za-z0-9_-]``, never starting with
``-`` or ``.``, at most 80 characters; two inputs with the same sanitised id get a short hash
suffix. Nothing is ever passed to a shell.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from vcmr.errors import VcmrError

__all__ = ["VideoItem", "DownloadError", "VIDEO_EXTENSIONS", "sanitize_id", "collect_inputs",
           "download", "shard_items"]

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi")
_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YT_URL = re.compile(r"(?:v=|youtu\.be/|/shorts/|/embed/|/v/)([A-Za-z0-9_-]{11})")


class DownloadError(VcmrError):
    """A listed video could not be downloaded."""


@dataclass
class VideoItem:
    id: str
    source: str  # the path or URL as given
    path: Optional[str] = None  # local file (None until downloaded)
    url: Optional[str] = None


def sanitize_id(name: str) -> str:
    """A safe file name stem: no separators, no traversal, no shell metacharacters."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:80]
    safe = safe.lstrip("-") or "video"
    return safe


def _url_item(line: str) -> VideoItem:
    if _YT_ID.match(line):
        return VideoItem(id=sanitize_id(line), source=line,
                         url=f"https://www.youtube.com/watch?v={line}")
    m = _YT_URL.search(line)
    vid = m.group(1) if m else hashlib.sha1(line.encode()).hexdigest()[:12]
    return VideoItem(id=sanitize_id(vid), source=line, url=line)


def _read_list(path: Path) -> list[VideoItem]:
    items = []
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            items.append(_url_item(line))
    return items


def collect_inputs(inputs: list[str | Path]) -> list[VideoItem]:
    """Expand files, folders (recursively, sorted) and id/URL lists into unique VideoItems."""
    items: list[VideoItem] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
            items += [VideoItem(id=sanitize_id(f.stem), source=str(f), path=str(f)) for f in files]
        elif p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            items.append(VideoItem(id=sanitize_id(p.stem), source=str(p), path=str(p)))
        elif p.is_file():
            items += _read_list(p)
        else:
            raise VcmrError(f"input {str(inp)!r} not found: give video files, folders of videos "
                            f"({', '.join(VIDEO_EXTENSIONS)}) or a text file of YouTube ids/URLs")
    return _dedupe(items)


def _dedupe(items: list[VideoItem]) -> list[VideoItem]:
    seen: dict[str, str] = {}
    out = []
    for it in items:
        if it.id in seen:
            if seen[it.id] == it.source:
                continue  # the same input given twice
            it.id = f"{it.id[:71]}_{hashlib.sha1(it.source.encode()).hexdigest()[:8]}"
        seen[it.id] = it.source
        out.append(it)
    return out


def shard_items(items: list[VideoItem], index: int, count: int) -> list[VideoItem]:
    """Items of shard ``index`` of ``count``, chosen by a stable hash of the id (any order)."""
    def bucket(vid: str) -> int:
        return int(hashlib.sha1(vid.encode()).hexdigest(), 16) % count
    return [it for it in items if bucket(it.id) == index]


class _QuietLogger:
    """yt-dlp prints errors itself; we record them in the manifest instead."""

    def debug(self, msg):
        pass

    info = warning = error = debug


def download(item: VideoItem, raw_dir: Path, timeout_s: float = 30.0) -> Path:
    """Download ``item.url`` with yt-dlp into ``raw_dir/<id>.<ext>`` (reused when present).

    Asks for a single file holding video and audio (no ffmpeg needed for merging), at most
    720p. Raises DownloadError on any failure.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    done = [f for f in raw_dir.glob(f"{item.id}.*") if f.suffix.lower() in VIDEO_EXTENSIONS]
    if done:
        return done[0]
    try:
        import yt_dlp
    except ImportError as e:
        raise DownloadError(f"{item.source}: downloading needs yt-dlp (pip install yt-dlp)") from e
    opts = {
        "outtmpl": str(raw_dir / f"{item.id}.%(ext)s"),
        "format": "best[height<=720][vcodec!=none][acodec!=none]/best",
        "quiet": True, "no_warnings": True, "noprogress": True, "noplaylist": True,
        "socket_timeout": timeout_s, "retries": 1, "part": True, "logger": _QuietLogger(),
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            ydl.download([item.url])
    except Exception as e:  # yt-dlp raises DownloadError, ExtractorError, network errors...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DownloadError(f"{item.source}: download failed ({msg})") from e
    done = [f for f in raw_dir.glob(f"{item.id}.*") if f.suffix.lower() in VIDEO_EXTENSIONS]
    if not done:
        raise DownloadError(f"{item.source}: yt-dlp finished but wrote no video file")
    return done[0]
