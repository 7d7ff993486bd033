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
    manifest.jsonl             one row per input (see ``README.md``), the last row per id wins

Work split: ``workers`` processes decode (one PyAV pass over the window), detect scenes and
write the WAVs; the main process runs the frame encoder on what they send back, so decoding
and encoding overlap. That pays off when the encoder runs on a GPU. When it runs on the CPU it
already keeps every core busy, and parallel decoders only compete with it (measured on 2 cores,
benchmarks/README.md), so ``workers: -1`` (auto) decodes in the main process there.
Resumable: every file is written under a temporary name then renamed, and a video counts as
done only once its manifest row is written, after its files. A failed write (full disk, folder
turned read-only) stops the run with a message: finished videos stay, the unfinished video's
files are removed, and the same command resumes. ``--out`` is checked before any work. Each row
stores the settings that made its outputs (``OUTPUT_KEYS``); a rerun with other values skips
finished videos and says so (``redo=True`` / ``--redo`` prepares them again).

Engines: local (above) and Ray (``vcmr.prepare.ray_engine``, passed in as ``runner``: the
same ``process_video`` as Ray tasks, ``_finish`` in encoder actors). Both record rows through
one ``Recorder`` in the driver and read and write the same layout, so either resumes the other.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from vcmr.errors import VcmrError
from vcmr.paths import check_output_dir
from vcmr.prepare.decode import DecodeError, decode_window, probe_video, window_start
from vcmr.prepare.download import (DownloadError, VideoItem, collect_inputs, download,
                                   shard_items)
from vcmr.prepare.scenes import SceneScanner

__all__ = ["prepare_videos", "read_manifest", "merge_outputs", "MANIFEST", "window_plan", "Recorder"]

MANIFEST = "manifest.jsonl"
DONE_STATUSES = ("kept", "dropped")  # failed videos are retried by the next run


# ------------------------------------------------------------------------------ manifest
def read_manifest(data_dir: str | Path) -> dict[str, dict]:
    """id -> last row of ``data_dir/manifest.jsonl``; a torn last line (killed run) is ignored."""
    path = Path(data_dir) / MANIFEST
    rows: dict[str, dict] = {}
    if not path.is_file():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            rows[row["id"]] = row
    return rows


def _append_row(data_dir: Path, row: dict) -> None:
    """Append one row and fsync; a row cut short by a full disk is cut off again (the file
    is truncated back), so the manifest never ends in half a row that a later append extends."""
    path = data_dir / MANIFEST
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:  # a killed run may have left a line without newline
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
    else:
        torn = False
    data = (("\n" if torn else "") + json.dumps(row) + "\n").encode()
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


def _write_manifest(data_dir: Path, rows: dict[str, dict]) -> None:
    from vcmr.audio.io import write_bytes_atomic
    write_bytes_atomic(data_dir / MANIFEST, "".join(json.dumps(r) + "\n" for r in rows.values()).encode())


def _files_of(row: dict) -> list[str]:
    return list(row.get("audio_files", [])) + ([row["video_file"]] if row.get("video_file") else [])


def _is_done(row: Optional[dict], data_dir: Path) -> bool:
    if not row or row.get("status") not in DONE_STATUSES:
        return False
    return all((data_dir / f).is_file() for f in _files_of(row))


# ------------------------------------------------------------------------------ planning
def window_plan(duration_s: float, cfg) -> Optional[tuple[float, int]]:
    """(window seconds, number of segments) for a video, or None when it is too short."""
    if duration_s + 1e-3 >= cfg.window_seconds:
        return cfg.window_seconds, cfg.n_segments
    if cfg.too_short_rule == "keep_shorter":
        n = min(cfg.n_segments, int((duration_s + 1e-3) // cfg.segment_seconds))
        if n >= 1:
            return n * cfg.segment_seconds, n
    return None


def check_config(cfg) -> None:
    if cfg.n_segments * cfg.segment_seconds > cfg.window_seconds + 1e-6:
        raise VcmrError(f"config: n_segments x segment_seconds ({cfg.n_segments} x "
                        f"{cfg.segment_seconds}) exceeds window_seconds ({cfg.window_seconds}); "
                        f"lower n_segments/segment_seconds or raise window_seconds")
    from vcmr.config import validate_prepare
    validate_prepare(cfg)  # a config built in code skips load_config's checks


# ------------------------------------------------------------------------------ worker side
# PrepareConfig keys that decide a video's outputs; stored in its row so a rerun with other
# values can say which finished videos keep outputs made with the old ones
OUTPUT_KEYS = ("window_seconds", "segment_seconds", "n_segments", "sample_rate",
               "frames_per_second", "max_scene_seconds", "scene_threshold",
               "scene_min_scene_len", "scene_downscale_width", "too_short_rule", "frame_encoder",
               "frame_encoder_path")


def output_settings(cfg) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in OUTPUT_KEYS}


class OutputWriteError(VcmrError):
    """Writing an output failed (disk full, folder gone read-only...): the run must stop, as
    every following video would fail the same way; the video is not recorded as failed."""


def _write_error(e: OSError) -> OutputWriteError:
    cause = {errno.ENOSPC: "no space left on the disk", errno.EDQUOT: "disk quota exceeded",
             errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"
             }.get(e.errno, e.strerror or type(e).__name__)
    return OutputWriteError(f"cannot write {e.filename or 'an output file'!r} ({cause})")


def _base_row(item: VideoItem, cfg, enc_name: str) -> dict[str, Any]:
    return {"id": item.id, "source": item.source, "status": "failed", "reason": None,
            "duration_s": None, "start_s": None, "window_s": None, "n_scenes": None,
            "max_scene_s": None, "scene_cuts_s": [], "n_segments": 0, "feature_dim": None,
            "frame_encoder": enc_name, "seconds_taken": None, "settings": output_settings(cfg)}


def _write_segments(audio: np.ndarray, item_id: str, data_dir: Path, n: int, seg_len: int,
                    sample_rate: int) -> list[str]:
    from vcmr.audio.io import write_wav
    files = []
    try:
        for k in range(n):
            rel = f"audio/{item_id}/{item_id}_{k}.wav"
            write_wav(data_dir / rel, audio[k * seg_len:(k + 1) * seg_len], sample_rate)
            files.append(rel)
    except OSError as e:  # this video's segments are useless without the others
        for rel in files:
            (data_dir / rel).unlink(missing_ok=True)
        raise _write_error(e) from None
    return files


def process_video(item: VideoItem, data_dir: str, cfg_dict: dict, crop_size: int,
                  enc_name: str) -> tuple[dict, Optional[np.ndarray]]:
    """Worker: download if needed, decode the window, filter scenes, write the WAVs.

    Returns (manifest row without features, sampled frames or None). Raises only
    OutputWriteError (the run must stop); any other problem is the video's and recorded.
    """
    from vcmr.config import PrepareConfig
    cfg = PrepareConfig(**cfg_dict)
    data_dir = Path(data_dir)
    t0 = time.perf_counter()
    row = _base_row(item, cfg, enc_name)
    try:
        frames = _process(item, data_dir, cfg, crop_size, row)
    except DownloadError as e:
        row.update(status="failed", reason="download_error", error=str(e))
        frames = None
    except DecodeError as e:
        row.update(status="failed", reason=e.reason, error=str(e))
        frames = None
    except OutputWriteError:
        raise
    except Exception as e:  # one bad video never stops the run
        row.update(status="failed", reason="decode_error", error=f"{type(e).__name__}: {e}")
        frames = None
    row["seconds_taken"] = round(time.perf_counter() - t0, 3)
    return row, frames


def _process(item: VideoItem, data_dir: Path, cfg, crop_size: int, row: dict) -> Optional[np.ndarray]:
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


def _process_star(args):
    return process_video(*args)


# ------------------------------------------------------------------------------ main side
def _save_npy(path: Path, array: np.ndarray) -> None:
    from vcmr.audio.io import write_bytes_atomic
    buf = io.BytesIO()
    np.save(buf, array)
    try:
        write_bytes_atomic(path, buf.getvalue())
    except OSError as e:
        raise _write_error(e) from None


def per_second_features(feats: np.ndarray, fps: int) -> np.ndarray:
    """(seconds * fps, D) frame embeddings -> (seconds, D) means of each second."""
    return feats.reshape(-1, fps, feats.shape[-1]).mean(axis=1).astype(np.float32)


def _finish(row: dict, frames: Optional[np.ndarray], encoder, data_dir: Path, cfg) -> dict:
    if row["status"] != "kept":
        return row
    t0 = time.perf_counter()
    feats = per_second_features(encoder.encode(frames), cfg.frames_per_second)
    rel = f"video/{row['id']}.npy"
    _save_npy(data_dir / rel, feats)
    row.update(video_file=rel, feature_dim=int(feats.shape[1]))
    row["seconds_taken"] = round(row["seconds_taken"] + time.perf_counter() - t0, 3)
    return row


def _run_tasks(tasks: list[tuple], workers: int) -> Iterator[tuple[dict, Optional[np.ndarray]]]:
    """Results of process_video for each task, computed by ``workers`` processes (0: inline).

    At most ``workers + 1`` results wait for the encoder, bounding memory.
    """
    if workers <= 0:
        for t in tasks:
            yield process_video(*t)
        return
    import multiprocessing as mp
    ctx = mp.get_context("spawn")  # no fork of a process that holds torch threads
    with ctx.Pool(workers) as pool:
        pending = []
        it = iter(tasks)
        for t in it:
            pending.append(pool.apply_async(_process_star, (t,)))
            if len(pending) > workers:
                break
        while pending:
            res = pending.pop(0).get()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(_process_star, (nxt,)))
            yield res


def _clean_tmp(data_dir: Path) -> None:
    for sub in ("audio", "video"):
        for tmp in (data_dir / sub).rglob("*.tmp"):
            tmp.unlink(missing_ok=True)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="video", file=sys.stderr, dynamic_ncols=True)


def prepare_videos(inputs: list[str | Path], out_dir: str | Path, cfg, shard: tuple[int, int] | None = None,
                   progress: bool = True, encoder=None, redo: bool = False,
                   runner: Optional[Callable] = None) -> dict[str, Any]:
    """Prepare every input video into ``out_dir`` (see the module docstring).

    Finished videos (kept or dropped, files present) are skipped unless ``redo``. Returns a
    summary: counts by status and reason, videos skipped as already done (and how many of them
    were made with other settings), time. Raises VcmrError before any work for a bad
    ``out_dir`` or input, and OutputWriteError (with what was kept and how to resume) when an
    output cannot be written, e.g. on a full disk. ``runner(todo, data_dir, cfg, recorder)``
    replaces the local engine, e.g. ``vcmr.prepare.ray_engine.ray_runner(...)`` runs the same
    per-video work on a Ray cluster; both read and write the same folder, so either one
    resumes the other's run.
    """
    check_config(cfg)
    t_start = time.perf_counter()
    data_dir = Path(out_dir)
    check_output_dir(data_dir, f"--out {str(data_dir)!r}")
    items = collect_inputs(inputs)
    if shard is not None:
        items = shard_items(items, *shard)
    data_dir.mkdir(parents=True, exist_ok=True)
    done = read_manifest(data_dir)
    todo = [it for it in items if redo or not _is_done(done.get(it.id), data_dir)]
    summary: dict[str, Any] = {"inputs": len(items), "skipped_done": len(items) - len(todo),
                               "counts": Counter(), "reasons": Counter(),
                               "changed_settings": _changed_settings(items, todo, done, cfg)}
    if todo:
        _clean_tmp(data_dir)
        recorder = Recorder(data_dir, done, summary, _progress(len(todo), progress))
        try:
            with recorder:
                if runner is not None:
                    runner(todo, data_dir, cfg, recorder)
                else:
                    _run_local(todo, data_dir, cfg, encoder, recorder)
        except OutputWriteError as e:
            _remove_unfinished(data_dir, done)
            kept = sum(r.get("status") in DONE_STATUSES for r in done.values())
            raise OutputWriteError(
                f"{e}. Stopped: {kept} finished videos are kept in {str(data_dir)!r} "
                f"({MANIFEST}); the unfinished video's files were removed. Free some disk space "
                f"(or fix the folder), then run the same command again: finished videos are "
                f"skipped and the rest resumes.") from None
    _write_manifest(data_dir, done)  # compact: one row per id
    summary["seconds"] = round(time.perf_counter() - t_start, 2)
    return summary


class Recorder:
    """The one manifest writer of a run (both engines): appends a finished video's row (its
    files are already complete), counts it and moves the progress bar."""

    def __init__(self, data_dir: Path, done: dict, summary: dict, bar=None):
        self.data_dir, self.done, self.summary, self.bar = data_dir, done, summary, bar

    def record(self, row: dict) -> None:
        try:
            _append_row(self.data_dir, row)
        except OSError as e:
            raise _write_error(e) from None
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


def _run_local(todo, data_dir: Path, cfg, encoder, recorder: Recorder) -> None:
    if encoder is None:
        from vcmr.prepare.frame_encoders import build_frame_encoder
        encoder = build_frame_encoder(cfg.frame_encoder, cfg.frame_encoder_path, cfg.device,
                                      cfg.encoder_batch_size)
    workers = resolve_workers(cfg.workers, encoder.device)
    tasks = [(it, str(data_dir), dataclasses.asdict(cfg), encoder.crop_size, cfg.frame_encoder)
             for it in todo]
    for row, frames in _run_tasks(tasks, workers):
        recorder.record(_finish(row, frames, encoder, data_dir, cfg))


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


def _remove_unfinished(data_dir: Path, done: dict) -> None:
    """After a stop: delete outputs no manifest row lists (a video cut short, or finished by a
    worker but never recorded) and temporaries; recorded videos are untouched."""
    listed = {f for row in done.values() for f in _files_of(row)}
    for sub in ("audio", "video"):
        for f in sorted((data_dir / sub).rglob("*")):
            rel = f.relative_to(data_dir).as_posix()
            if f.is_file() and rel not in listed and f.suffix in (".wav", ".npy", ".tmp"):
                f.unlink(missing_ok=True)


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
    return max(1, min(4, (os.cpu_count() or 2) - 1))


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


# ------------------------------------------------------------------------------ merge
def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)


def merge_outputs(dirs: list[str | Path], out_dir: str | Path) -> dict[str, int]:
    """Combine the outputs of several (sharded) runs into ``out_dir``.

    For an id present in several inputs the best row wins (kept > dropped > failed); files
    are hard-linked when possible, else copied. Returns counts by status.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank = {"kept": 2, "dropped": 1, "failed": 0}
    merged = read_manifest(out)
    for d in dirs:
        d = Path(d)
        if not (d / MANIFEST).is_file():
            raise VcmrError(f"{d}: no {MANIFEST}; give output folders of `vcmr prepare`")
        if d.resolve() == out.resolve():
            continue
        for vid, row in read_manifest(d).items():
            old = merged.get(vid)
            if old is not None and rank.get(old["status"], 0) >= rank.get(row["status"], 0):
                continue
            if row["status"] == "kept" and not _is_done(row, d):
                continue  # files missing in that folder: not a finished video
            for f in _files_of(row):
                _link_or_copy(d / f, out / f)
            merged[vid] = row
    _write_manifest(out, merged)
    return dict(Counter(r["status"] for r in merged.values()))
