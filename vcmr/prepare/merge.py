"""``vcmr prepare merge DIR... --out DIR``: combine the outputs of several (sharded) runs.

Rows of one id are the same video only when they name the same source (``same_source``: path,
size, mtime); a row of another source under a taken id is merged under a new id (a hash of its
source path added), its files renamed, and a note says so: nothing is dropped silently.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from vcmr.errors import VcmrError
from vcmr.paths import atomic_output
from vcmr.prepare.download import suffixed_id
from vcmr.prepare.manifest import (MANIFEST, SOURCE_KEYS, is_done, read_manifest, row_files,
                                   same_source, write_rows)

__all__ = ["merge_outputs"]

_RANK = {"kept": 2, "dropped": 1, "failed": 0}


def _link_or_copy(src: Path, dst: Path) -> None:
    with atomic_output(dst) as tmp:
        tmp.unlink()  # os.link needs a free name
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _stderr_note(message: str) -> None:
    print(f"vcmr prepare merge: note: {message}", file=sys.stderr)


def _free_id(vid: str, row: dict, merged: dict, d: Path) -> str:
    """``vid`` when no merged row of another source holds it, else a new id for ``row``."""
    stat = {k: row.get(k) for k in SOURCE_KEYS}
    for new in (vid, suffixed_id(vid, row.get("source_path") or row.get("source") or "")):
        if new not in merged or same_source(merged[new], stat):
            return new
    raise VcmrError(f"{d}: id {vid!r} ({row.get('source')!r}) and {new!r} both belong to other "
                    f"videos in the merged folders; prepare these inputs into one folder")


def _renamed(row: dict, vid: str, new: str) -> tuple[dict, list[tuple[str, str]]]:
    """``row`` under the id ``new`` and its files as (old, new) relative paths."""
    moves = [(f"audio/{vid}/{vid}_", f"audio/{new}/{new}_"), (f"video/{vid}.", f"video/{new}.")]

    def rename(f: str) -> str:
        for old, to in moves:
            if f.startswith(old):
                return to + f[len(old):]
        return f
    out = dict(row, id=new)
    if "audio_files" in row:
        out["audio_files"] = [rename(f) for f in row["audio_files"]]
    if row.get("video_file"):
        out["video_file"] = rename(row["video_file"])
    return out, list(zip(row_files(row), row_files(out)))


def merge_outputs(dirs: list[str | Path], out_dir: str | Path,
                  on_note: Callable[[str], None] = _stderr_note) -> dict[str, int]:
    """Combine the outputs of several (sharded) runs into ``out_dir``.

    For an id present in several inputs with the same source the best row wins (kept >
    dropped > failed); a different source under that id gets a new id (see the module
    docstring). Files are hard-linked when possible, else copied. Returns counts by status.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged = read_manifest(out)
    for d in map(Path, dirs):
        if not (d / MANIFEST).is_file():
            raise VcmrError(f"{d}: no {MANIFEST}; give output folders of `vcmr prepare`")
        if d.resolve() == out.resolve():
            continue
        for vid, row in read_manifest(d).items():
            if row["status"] == "kept" and not is_done(row, d):
                continue  # files missing in that folder: not a finished video
            new = _free_id(vid, row, merged, d)
            old = merged.get(new)
            if old is not None and _RANK.get(old["status"], 0) >= _RANK.get(row["status"], 0):
                continue
            row, files = _renamed(row, vid, new)
            if new != vid:
                on_note(f"{d}: {vid!r} ({row.get('source')!r}) is another video than the "
                        f"{vid!r} merged before: merged as {new!r}")
            for src, dst in files:
                _link_or_copy(d / src, out / dst)
            merged[new] = row
    write_rows(out, merged.values())
    return dict(Counter(r["status"] for r in merged.values()))
