"""``vcmr prepare``: music videos -> 16 kHz audio segments + per-second frame embeddings.

    from vcmr.config import load_config
    cfg = load_config("prepare", None, ["--frame_encoder", "efficientnet-lite0"])
    summary = prepare_videos(["videos/"], "data/av", cfg)

Per video (numbers are PrepareConfig keys): take the middle ``window_seconds``; detect scenes
(ContentDetector, ``scene_threshold``) and drop the clip when a scene inside the window is
longer than ``max_scene_seconds``; write ``n_segments`` WAVs of ``segment_seconds`` (mono,
16-bit, ``sample_rate``); embed frames sampled at ``frames_per_second`` and average each
second into a (window_seconds, D) float32 array. Layout under DATA_DIR::

    audio/<id>/<id>_<k>.wav    k = 0 .. n_segments-1
    video/<id>.npy             (window_seconds, D) float32; row t = seconds [t, t+1) of the window
    manifest.jsonl             one row per input (``vcmr.prepare.manifest``), the last row per id wins

Modules: ``job`` (the per-video work), ``local_engine`` (``engine: local``: decoding processes
on this machine) and ``ray_engine`` (``engine: ray``: tasks and actors on a Ray cluster),
``manifest`` (the rows), ``merge`` (combine sharded runs). Both engines record rows through
one ``job.Recorder`` in the driver and read and write the same layout, so either resumes the
other.

Resumable: every file is written under a temporary name then renamed, and a video counts as
done only once its manifest row is written, after its files. A failed write (full disk, folder
turned read-only) stops the run with a message: finished videos stay, the unfinished video's
files are removed, and the same command resumes. ``--out`` is checked before any work. Each row
stores the settings that made its outputs (``manifest.OUTPUT_KEYS``); a rerun with other values
skips finished videos and says so (``redo=True`` / ``--redo`` prepares them again).

An id of the manifest is trusted only with its source (``_match_manifest``): an input whose
file a row lists keeps that row's id; an input whose id a row of another file holds gets a new
id (a hash of its path); a finished video is skipped only when its file still has the size and
mtime stored in its row (a changed file is prepared again under its id).
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vcmr.errors import VcmrError
from vcmr.paths import check_output_dir
from vcmr.prepare.download import collect_inputs, shard_items, source_key, suffixed_id
from vcmr.prepare.job import OutputWriteError, Recorder, check_config, local_path
from vcmr.prepare.local_engine import run_local
from vcmr.prepare.manifest import (DONE_STATUSES, MANIFEST, is_done, output_settings,
                                   read_manifest, row_files, same_source, source_stat,
                                   write_rows)
from vcmr.prepare.ray_engine import import_ray, run_on_ray

__all__ = ["prepare_videos", "format_summary", "ENGINES"]

ENGINES = {"local": run_local, "ray": run_on_ray}  # (todo, data_dir, cfg, recorder)


def prepare_videos(inputs: list[str | Path], out_dir: str | Path, cfg,
                   shard: tuple[int, int] | None = None, progress: bool = True,
                   redo: bool = False) -> dict[str, Any]:
    """Prepare every input video into ``out_dir`` with ``cfg.engine`` (see the module docstring).

    Finished videos (kept or dropped, files present) are skipped unless ``redo``. Returns a
    summary: counts by status and reason, videos skipped as already done (and how many of them
    were made with other settings), time. Raises VcmrError before any work for a bad
    ``out_dir`` or input (or a missing Ray with ``engine: ray``), and OutputWriteError (with
    what was kept and how to resume) when an output cannot be written, e.g. on a full disk.
    """
    check_config(cfg)
    if cfg.engine == "ray":
        import_ray()  # a missing extra is reported before any work
    t_start = time.perf_counter()
    data_dir = Path(out_dir)
    check_output_dir(data_dir, f"--out {str(data_dir)!r}")
    items = collect_inputs(inputs)
    if shard is not None:
        items = shard_items(items, *shard)
    data_dir.mkdir(parents=True, exist_ok=True)
    done = read_manifest(data_dir)
    stats = _match_manifest(items, done)
    finished = [is_done(done.get(it.id), data_dir) for it in items]
    todo = [it for it, st, fin in zip(items, stats, finished)
            if redo or not (fin and same_source(done[it.id], st))]
    changed = sum(fin and not same_source(done[it.id], st)
                  for it, st, fin in zip(items, stats, finished))
    summary: dict[str, Any] = {"inputs": len(items), "skipped_done": len(items) - len(todo),
                               "changed_sources": changed,
                               "counts": Counter(), "reasons": Counter(),
                               "changed_settings": _changed_settings(items, todo, done, cfg)}
    if todo:
        _clean_tmp(data_dir)
        bar = tqdm(total=len(todo), unit="video", file=sys.stderr, dynamic_ncols=True) if progress else None
        try:
            with Recorder(data_dir, done, summary, bar) as recorder:
                ENGINES[cfg.engine](todo, data_dir, cfg, recorder)
        except OutputWriteError as e:
            raise _stopped(e, data_dir, done) from None
    write_rows(data_dir, done.values())  # compact: one row per id
    summary["seconds"] = round(time.perf_counter() - t_start, 2)
    return summary


def _match_manifest(items, done: dict) -> list[dict]:
    """Ids that agree with the manifest (see the module docstring); returns each input's
    ``source_stat``. Raises VcmrError when no free id is found for an input."""
    stats = [source_stat(local_path(it)) for it in items]
    by_path = {r["source_path"]: vid for vid, r in done.items() if r.get("source_path")}
    pinned = {i for i, st in enumerate(stats) if st["source_path"] in by_path}
    for i in pinned:
        items[i].id = by_path[stats[i]["source_path"]]
    taken = {items[i].id for i in pinned}
    for i, (it, st) in enumerate(zip(items, stats)):
        if i in pinned:
            continue
        for vid in (it.id, suffixed_id(it.id, source_key(it))):
            if vid not in taken and (vid not in done or done[vid].get("source_path") is None
                                     and st["source_path"] is None):
                break
        else:
            raise VcmrError(f"{it.source!r}: its id {it.id!r} and {vid!r} belong to other "
                            f"files in the manifest; rename the file or use a new --out folder")
        it.id = vid
        taken.add(vid)
    return stats


def _stopped(e: OutputWriteError, data_dir: Path, done: dict) -> OutputWriteError:
    """After a failed write: remove what no row lists; the error says what is kept and how
    to resume."""
    _remove_unfinished(data_dir, done)
    kept = sum(r.get("status") in DONE_STATUSES for r in done.values())
    return OutputWriteError(
        f"{e}. Stopped: {kept} finished videos are kept in {str(data_dir)!r} "
        f"({MANIFEST}); the unfinished video's files were removed. Free some disk space "
        f"(or fix the folder), then run the same command again: finished videos are "
        f"skipped and the rest resumes.")


def _clean_tmp(data_dir: Path) -> None:
    for sub in ("audio", "video"):
        for tmp in (data_dir / sub).rglob("*.tmp"):
            tmp.unlink(missing_ok=True)


def _remove_unfinished(data_dir: Path, done: dict) -> None:
    """After a stop: delete outputs no manifest row lists (a video cut short, or finished by a
    worker but never recorded) and temporaries; recorded videos are untouched."""
    listed = {f for row in done.values() for f in row_files(row)}
    for sub in ("audio", "video"):
        for f in sorted((data_dir / sub).rglob("*")):
            rel = f.relative_to(data_dir).as_posix()
            if f.is_file() and rel not in listed and f.suffix in (".wav", ".npy", ".tmp"):
                f.unlink(missing_ok=True)


def _changed_settings(items, todo, done: dict, cfg) -> dict[str, Any]:
    """Finished videos (skipped now) whose row says they were made with other output
    settings: {"videos": n, "keys": {key: [old values]}}."""
    now, skipped = output_settings(cfg), {it.id for it in items} - {it.id for it in todo}
    n, keys = 0, {}
    for vid in sorted(skipped):
        old = done[vid].get("settings") or {}
        diff = {k: v for k, v in old.items() if k in now and now[k] != v}
        if diff:
            n += 1
            for k, v in diff.items():
                keys.setdefault(k, [])
                if v not in keys[k]:
                    keys[k].append(v)
    return {"videos": n, "keys": keys}


def format_summary(summary: dict) -> str:
    c = summary["counts"]
    lines = [f"{summary['inputs']} inputs: {c.get('kept', 0)} kept, {c.get('dropped', 0)} dropped, "
             f"{c.get('failed', 0)} failed, {summary['skipped_done']} already done "
             f"({summary['seconds']} s)"]
    lines += [f"  {k}: {v}" for k, v in sorted(summary["reasons"].items())]
    if summary.get("changed_sources"):
        lines.append(f"note: {summary['changed_sources']} finished videos were prepared again: "
                     f"their file's size or modification time changed since")
    changed = summary.get("changed_settings") or {}
    if changed.get("videos"):
        was = "; ".join(f"{k} was {', '.join(map(str, v))}" for k, v in changed["keys"].items())
        lines.append(f"note: {changed['videos']} of the finished videos were prepared with other "
                     f"settings ({was}) and keep their old outputs. To prepare them with the "
                     f"current settings, use a new --out folder or add --redo.")
    return "\n".join(lines)
