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
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vcmr.paths import check_output_dir
from vcmr.prepare.download import collect_inputs, shard_items
from vcmr.prepare.job import OutputWriteError, Recorder, check_config
from vcmr.prepare.local_engine import run_local
from vcmr.prepare.manifest import (DONE_STATUSES, MANIFEST, is_done, output_settings,
                                   read_manifest, row_files, write_rows)
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
    todo = [it for it in items if redo or not is_done(done.get(it.id), data_dir)]
    summary: dict[str, Any] = {"inputs": len(items), "skipped_done": len(items) - len(todo),
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
    changed = summary.get("changed_settings") or {}
    if changed.get("videos"):
        was = "; ".join(f"{k} was {', '.join(map(str, v))}" for k, v in changed["keys"].items())
        lines.append(f"note: {changed['videos']} of the finished videos were prepared with other "
                     f"settings ({was}) and keep their old outputs. To prepare them with the "
                     f"current settings, use a new --out folder or add --redo.")
    return "\n".join(lines)
