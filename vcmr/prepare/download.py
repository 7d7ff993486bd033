"""Inputs of ``vcmr prepare``: video files, folders, and lists of YouTube ids / URLs.

    items = collect_inputs(["videos/", "video_list.txt"])   # [VideoItem(id, source, path|url)]
    path = download(item, raw_dir)                          # yt-dlp, raises DownloadError

What an input is, decided before any work (never guessed from the extension alone):

- a folder: scanned recursively; files with a video extension (``VIDEO_EXTENSIONS``: .mp4,
  .m4v, .mpg, .ts, .mkv ...) are videos, other files are opened with PyAV and are videos when
  they hold a moving-picture stream (not a still image, not cover art); the rest is left out
  with a note. A folder that cannot be read, or that holds no video, is an error;
- a file with a video extension, or any file PyAV opens as a video: one video;
- a ``.txt`` / ``.list`` / extension-less file that is UTF-8 text whose every line (blank
  lines and ``#`` comments aside) is an 11-character YouTube id or an http(s) URL: a list;
- anything else is refused with a message (binary junk is never read as ids).

Ids become file names (``sanitize_id``): a stem that is already safe (``[A-Za-z0-9_-]``, at
most 80 characters, not starting with ``-``) and every YouTube id (11 of ``[A-Za-z0-9_-]``,
a leading or trailing ``-``/``_`` included) is kept as it is; any other stem (non-ASCII,
spaces, too long) becomes its safe characters plus a hash of the whole stem (``愛`` ->
``video_<8 hex>``), so two different stems never share an id. Two inputs with the same stem
(in two folders) get a hash of the second one's path; ``pipeline`` and ``merge`` trust an id of
a manifest only with the same source path, size and mtime (``manifest.source_stat``). Nothing is ever passed to a shell. PyAV (``av``) and yt-dlp are imported on use:
they belong to the optional ``video`` and ``download`` extras.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from vcmr.errors import VcmrError
from vcmr.paths import walk_files

__all__ = ["VideoItem", "DownloadError", "VIDEO_EXTENSIONS", "sanitize_id", "suffixed_id", "source_key",
           "collect_inputs", "download", "shard_items", "is_video_file"]

# containers taken as videos without opening them (a broken one fails later, with a reason);
# any other file is opened with PyAV, and is a video when it holds a moving-picture stream
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".webm", ".mkv", ".mov", ".avi", ".mpg", ".mpeg", ".m2v",
                    ".ts", ".mts", ".m2ts", ".vob", ".flv", ".f4v", ".wmv", ".asf", ".3gp",
                    ".3g2", ".ogv", ".mxf", ".dv", ".divx", ".rm", ".rmvb", ".nut", ".y4m")
LIST_EXTENSIONS = (".txt", ".list", "")
# never probed in folder scans: common companions of videos that PyAV may open as "video"
# (still images, cover art) or that are plainly not videos
_NOT_VIDEO = (".txt", ".list", ".json", ".jsonl", ".csv", ".tsv", ".yaml", ".yml", ".md", ".npy",
              ".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".jpg", ".jpeg", ".png",
              ".gif", ".bmp", ".webp", ".srt", ".vtt", ".ass", ".nfo", ".part", ".ckpt", ".pt")
_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$")
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_YT_URL = re.compile(r"(?:v=|youtu\.be/|/shorts/|/embed/|/v/)([A-Za-z0-9_-]{11})")
_INPUT_HELP = ("give video files (any container PyAV opens: " + ", ".join(VIDEO_EXTENSIONS[:8]) +
               "...), folders of videos, or a text file (.txt, .list or no extension) with one "
               "YouTube id or http(s) URL per line")


class DownloadError(VcmrError):
    """A listed video could not be downloaded."""


@dataclass
class VideoItem:
    id: str
    source: str  # the path or URL as given
    path: Optional[str] = None  # local file (None until downloaded)
    url: Optional[str] = None


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def sanitize_id(name: str) -> str:
    """A safe file name stem (no separators, no traversal, no shell metacharacters) that is
    ``name`` itself when ``name`` is already safe or a YouTube id, else its safe characters
    and a hash of ``name``: different names never give the same id."""
    if _SAFE_ID.match(name) or _YT_ID.match(name):
        return name
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:71] or "video"
    return f"{safe}_{_short_hash(name)}"


def suffixed_id(video_id: str, key: str) -> str:
    """A new id for a second source under ``video_id``: a hash of ``key`` (its path) added."""
    return f"{video_id[:71]}_{_short_hash(key)}"


def _url_item(line: str) -> VideoItem:
    if _YT_ID.match(line):
        return VideoItem(id=sanitize_id(line), source=line,
                         url=f"https://www.youtube.com/watch?v={line}")
    m = _YT_URL.search(line)
    vid = m.group(1) if m else hashlib.sha1(line.encode()).hexdigest()[:12]
    return VideoItem(id=sanitize_id(vid), source=line, url=line)


def _list_lines(path: Path) -> tuple[Optional[list[str]], str]:
    """The id/URL lines of ``path`` if it is a text list, else (None, why not).

    A list is valid UTF-8 whose every line (blank lines and ``#`` comments aside) is an
    11-character YouTube id or an http(s) URL: anything else (a video, binary junk, prose)
    must never turn into downloads.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None, "it is not UTF-8 text"
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\x00" in line or not (_YT_ID.match(line) or _URL.match(line)):
            return None, f"line {n} ({line[:40]!r}) is neither a YouTube id nor an http(s) URL"
        lines.append(line)
    if not lines:
        return None, "it lists no YouTube id or URL"
    return lines, ""


def is_video_file(path: Path) -> bool:
    """True when PyAV opens ``path`` and finds a moving-picture stream (not a still image, not
    the cover art of an audio file)."""
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(str(path)) as c:
            if c.format.name == "image2" or c.format.name.endswith("_pipe"):
                return False
            return any(not _is_cover_art(v) for v in c.streams.video)
    except Exception:  # PyAV raises InvalidDataError, OSError, ... for anything not a container
        return False


def _is_cover_art(stream) -> bool:
    disposition = getattr(stream, "disposition", 0)
    try:
        import av
        return bool(disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def _file_items(p: Path) -> list[VideoItem]:
    """An input file: a video, or a text list of ids/URLs; anything else is refused."""
    if p.suffix.lower() in VIDEO_EXTENSIONS:
        return [VideoItem(id=sanitize_id(p.stem), source=str(p), path=str(p))]
    why = "its extension is not a list's (.txt, .list, none)"
    if p.suffix.lower() in LIST_EXTENSIONS:
        lines, why = _list_lines(p)
        if lines is not None:
            return [_url_item(line) for line in lines]
    if is_video_file(p):
        return [VideoItem(id=sanitize_id(p.stem), source=str(p), path=str(p))]
    raise VcmrError(f"input {str(p)!r} is neither a video PyAV can open nor a list of YouTube "
                    f"ids/URLs ({why}): {_INPUT_HELP}")


def _walk(root: Path, on_note: Callable[[str], None]) -> list[Path]:
    """Every file under ``root``, sorted, by the one symlink rule (``vcmr.paths.walk_files``:
    links followed only inside ``root``, each real folder and file once; links not followed
    are reported in one note); unreadable folders are errors (not "0 videos")."""
    walk = walk_files(root)
    if walk.unreadable:
        raise VcmrError(f"cannot read folder {walk.unreadable[0]}: fix its permissions or leave "
                        f"it out of the inputs")
    note = walk.skipped_note(root)
    if note:
        on_note(note)
    for d in sorted({f.parent for f in walk.files if f.parent.suffix.lower() in VIDEO_EXTENSIONS}):
        on_note(f"{str(d)!r} is a folder, not a video file: its contents are scanned like any folder")
    return walk.files


def _folder_items(p: Path, on_note: Callable[[str], None]) -> list[VideoItem]:
    files = _walk(p, on_note)
    videos, skipped = [], []
    for f in files:
        ext = f.suffix.lower()
        if ext in VIDEO_EXTENSIONS or (ext not in _NOT_VIDEO and is_video_file(f)):
            videos.append(f)
        else:
            skipped.append(f)
    if not videos:
        raise VcmrError(f"folder {str(p)!r} holds no video ({len(files)} files, none a container "
                        f"with a video stream that PyAV opens): {_INPUT_HELP}")
    if skipped:
        on_note(f"{str(p)!r}: {len(skipped)} files that are not videos left out "
                f"(e.g. {skipped[0].name!r})")
    return [VideoItem(id=sanitize_id(f.stem), source=str(f), path=str(f)) for f in videos]


def _stderr_note(message: str) -> None:
    print(f"vcmr prepare: note: {message}", file=sys.stderr)


def collect_inputs(inputs: list[str | Path],
                   on_note: Callable[[str], None] = _stderr_note) -> list[VideoItem]:
    """Expand files, folders (recursively, sorted) and id/URL lists into unique VideoItems.

    Raises VcmrError for an input that is missing, unreadable, a folder without videos, or a
    file that is neither a video nor a text list; ``on_note`` receives what was left out.
    """
    items: list[VideoItem] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            items += _folder_items(p, on_note)
        elif p.is_file():
            if not os.access(p, os.R_OK):
                raise VcmrError(f"input {str(inp)!r} cannot be read (permission denied)")
            items += _file_items(p)
        else:
            raise VcmrError(f"input {str(inp)!r} not found: {_INPUT_HELP}")
    return _dedupe(items)


def source_key(item: VideoItem) -> str:
    """What identifies an input: the absolute path of a file, the line of a URL."""
    return os.path.realpath(item.path) if item.path else item.source


def _dedupe(items: list[VideoItem]) -> list[VideoItem]:
    seen: dict[str, str] = {}
    keys, out = set(), []
    for it in items:
        key = source_key(it)
        if key in keys:
            continue  # the same input given twice
        keys.add(key)
        if it.id in seen:
            it.id = suffixed_id(it.id, key)
            if it.id in seen:
                raise VcmrError(f"inputs {seen[it.id]!r} and {key!r} get the same id "
                                f"{it.id!r}: rename one of the files")
        seen[it.id] = key
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
