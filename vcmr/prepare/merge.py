"""``vcmr prepare merge DIR... --out DIR``: combine the outputs of several (sharded) runs."""
from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

from vcmr.errors import VcmrError
from vcmr.paths import atomic_output
from vcmr.prepare.manifest import MANIFEST, is_done, read_manifest, row_files, write_rows

__all__ = ["merge_outputs"]

_RANK = {"kept": 2, "dropped": 1, "failed": 0}


def _link_or_copy(src: Path, dst: Path) -> None:
    with atomic_output(dst) as tmp:
        tmp.unlink()  # os.link needs a free name
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def merge_outputs(dirs: list[str | Path], out_dir: str | Path) -> dict[str, int]:
    """Combine the outputs of several (sharded) runs into ``out_dir``.

    For an id present in several inputs the best row wins (kept > dropped > failed); files
    are hard-linked when possible, else copied. Returns counts by status.
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
            old = merged.get(vid)
            if old is not None and _RANK.get(old["status"], 0) >= _RANK.get(row["status"], 0):
                continue
            if row["status"] == "kept" and not is_done(row, d):
                continue  # files missing in that folder: not a finished video
            for f in row_files(row):
                _link_or_copy(d / f, out / f)
            merged[vid] = row
    write_rows(out, merged.values())
    return dict(Counter(r["status"] for r in merged.values()))
