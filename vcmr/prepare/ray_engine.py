"""``vcmr prepare --engine ray``: the same per-video work as the local engine, on a Ray cluster.

    vcmr prepare videos/ --out /shared/data/av --engine ray                       # local Ray
    vcmr prepare list.txt --out /shared/data/av --engine ray --ray-address HEAD:6379  # cluster
    prepare_videos(inputs, out, cfg, runner=ray_runner(RayOptions(address="auto")))  # Python

Work split (one code path with the local engine, ``vcmr.prepare.pipeline``):

- download tasks (``download``, yt-dlp) for listed ids/URLs, at most ``downloads`` at once;
- a pool of encoder actors that hold the frame encoder once (GPU actors when the cluster has
  GPUs, ``gpus_per_actor`` may be a fraction; CPU actors otherwise) and finish a video with
  ``pipeline._finish`` (encode the frames in batches of ``encoder_batch_size``, write the
  features);
- with GPU actors, decode tasks (``process_video``: one PyAV pass, scene detection, WAV
  writing), one CPU each, feed them: frames go from a decode task to an actor through Ray's
  object store, never through the driver. CPU actors decode their own videos by default
  (``decode_tasks``), one actor per node using the node's cores, as the local engine does on
  one machine: a decode task beside a CPU encoder only takes cores from it (measured in
  benchmarks/README.md).

The driver schedules: at most ``max_in_flight`` videos are submitted and not yet recorded, so
memory stays flat whatever the corpus size, and each actor gets the next video when it holds
fewer than two (decode tasks) or none (CPU actors that decode). It is the only manifest writer
(``pipeline.Recorder``): a row is appended after the video's WAVs and features are written
(atomically, by the workers), so a killed driver loses nothing finished and the next run
(either engine) resumes. A task whose worker process dies (a decoder segfault, the OOM killer)
becomes a ``failed`` row with reason ``worker_crashed`` / ``out_of_memory`` and the run goes
on. When an encoder actor dies, Ray restarts it and each video it held is tried once more,
alone (see ``_Scheduler``). A failed row is retried by the next run. ``--out`` must be a path every node sees (a shared file system).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from vcmr.errors import VcmrError
from vcmr.prepare.download import DownloadError, VideoItem, download
from vcmr.prepare.pipeline import (OutputWriteError, Recorder, _base_row, _finish,
                                   process_video)

__all__ = ["RayOptions", "import_ray", "ray_runner", "run_on_ray"]

# tests: ID kills the decode task's worker, encode:ID the actor, enospc:ID fills the disk
# while the decode task writes that video
CRASH_HOOK = "VCMR_TEST_CRASH_ON"
ACTOR_RESTART_PINGS = 600  # a crashed encoder actor has 600 x 0.2 s to come back


@dataclass
class RayOptions:
    """How to use Ray (none of these change the outputs)."""
    address: Optional[str] = None  # None: start a local instance; "auto" or HOST:PORT: join
    num_cpus: Optional[int] = None  # local instance only; default os.cpu_count()
    actors: Optional[int] = None  # encoder actors; default one per GPU share, else one per node
    gpus_per_actor: Optional[float] = None  # default 1 when the cluster has GPUs, else 0
    encoder_cpus: float = 1.0  # CPUs each CPU actor reserves in Ray's accounting
    encoder_threads: Optional[int] = None  # torch threads of a CPU actor; default: its node's
    #   cores shared by the actors on it
    decode_cpus: float = 1.0  # CPUs each decode task reserves
    decode_tasks: Optional[bool] = None  # decode in tasks that feed the actors; default: with
    #   GPU actors only (CPU actors then decode their own videos)
    downloads: int = 4  # download tasks at once
    max_in_flight: Optional[int] = None  # default: decode slots (if any) + what actors hold


def import_ray():
    """The ``ray`` module, or a VcmrError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise VcmrError('--engine ray needs Ray, which is not installed: pip install "vcmr[ray]" '
                        '(or pip install ray), or use the default --engine local') from None
    return ray


# ------------------------------------------------------------------------------ workers
def _decode(item: VideoItem, data_dir: str, cfg_dict: dict, crop_size: int, enc_name: str,
            crash_on: Optional[str]):
    """Decode task: ``process_video`` (returns row, frames as two objects)."""
    if crash_on == item.id:
        os._exit(3)  # test hook: a worker that dies in the middle of a video
    full = _disk_full_for(item.id, data_dir) if crash_on == f"enospc:{item.id}" else None
    with full or contextlib.nullcontext():
        return process_video(item, data_dir, cfg_dict, crop_size, enc_name)


@contextlib.contextmanager
def _disk_full_for(vid: str, data_dir: str):
    """Test hook: while it is active, writes to this video's files under ``data_dir`` fail
    with ENOSPC (a full disk) at ``os.write``, the call every prepare output goes through.
    Restored afterwards, since the worker process runs other tasks."""
    real_write = os.write

    def write(fd, data):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.startswith(data_dir) and os.path.basename(name).startswith(vid):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)
    os.write = write
    try:
        yield
    finally:
        os.write = real_write


def _download(item: VideoItem, raw_dir: str) -> tuple[Optional[str], Optional[str]]:
    """Download task: (local path, None) or (None, error message)."""
    try:
        return str(download(item, Path(raw_dir))), None
    except DownloadError as e:
        return None, str(e)


class _Encoder:
    """Encoder actor: builds the frame encoder once, then finishes videos (encode + write)."""

    def __init__(self, cfg_dict: dict, threads: int, per_node: int = 1):
        from vcmr.config import PrepareConfig
        self.cfg = PrepareConfig(**cfg_dict)
        self.error = None
        try:
            import torch
            if threads < 0:  # CPU actor, default: this node's cores shared by the actors
                threads = max(1, (os.cpu_count() or 1) // max(1, per_node))
            if threads > 0:
                torch.set_num_threads(threads)
            from vcmr.prepare.frame_encoders import build_frame_encoder
            self.encoder = build_frame_encoder(self.cfg.frame_encoder, self.cfg.frame_encoder_path,
                                               self.cfg.device, self.cfg.encoder_batch_size)
        except VcmrError as e:  # reported by the driver as a clear error
            self.error = str(e)
        except Exception as e:  # (not a crash: a restarted actor would fail the same way)
            self.error = f"frame encoder {self.cfg.frame_encoder!r} failed to load: {type(e).__name__}: {e}"

    def info(self) -> dict:
        if self.error:
            return {"error": self.error}
        import torch
        return {"crop_size": self.encoder.crop_size, "device": str(self.encoder.device),
                "threads": torch.get_num_threads()}

    def prepare(self, item: VideoItem, data_dir: str, crop_size: int, enc_name: str,
                crash_on: Optional[str] = None) -> dict:
        """Decode and finish a video in this actor (CPU actors): the local engine's loop."""
        row, frames = _decode(item, data_dir, dataclasses.asdict(self.cfg), crop_size, enc_name,
                              crash_on)
        if row["status"] != "kept":
            return row
        return self.finish(row, frames, data_dir, crash_on)

    def finish(self, row: dict, frames, data_dir: str, crash_on: Optional[str] = None) -> dict:
        import numpy as np
        if crash_on == f"encode:{row['id']}":
            os._exit(3)  # test hook: an actor that dies in the middle of a video
        frames = np.array(frames)  # the object store's copy is read-only; torch wants writable
        return _finish(row, frames, self.encoder, Path(data_dir), self.cfg)


# ------------------------------------------------------------------------------ driver
def _connect(ray, opts: RayOptions) -> bool:
    """Join ``opts.address`` or start a local instance; True when this call started Ray."""
    if ray.is_initialized():
        return False
    import logging
    common = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if opts.address:
        try:
            ray.init(address=opts.address, **common)
        except Exception as e:  # ConnectionError, timeouts...: say which address
            raise VcmrError(f"--ray-address {opts.address!r}: cannot join the Ray cluster "
                            f"({type(e).__name__}: {e}); start it with `ray start --head` or "
                            f"leave --ray-address out for a local instance") from None
    else:
        ray.init(num_cpus=opts.num_cpus or os.cpu_count() or 1, **common)
    return True


def _alive_nodes(ray) -> int:
    return max(1, sum(1 for node in ray.nodes() if node.get("Alive")))


def _pool_size(ray, opts: RayOptions) -> tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) for this cluster."""
    gpus = float(ray.cluster_resources().get("GPU", 0))
    per_gpu = opts.gpus_per_actor if opts.gpus_per_actor is not None else (1.0 if gpus else 0.0)
    if per_gpu > 0 and per_gpu > gpus:
        raise VcmrError(f"--ray-gpus-per-actor {per_gpu}: the cluster has {gpus:g} GPUs")
    if opts.actors is not None:
        n = opts.actors
    else:
        n = max(1, int(gpus / per_gpu + 1e-9)) if per_gpu > 0 else _alive_nodes(ray)
    return n, per_gpu, (1.0 if per_gpu > 0 else opts.encoder_cpus)


def _uses_decode_tasks(opts: RayOptions, gpus_per_actor: float) -> bool:
    return opts.decode_tasks if opts.decode_tasks is not None else gpus_per_actor > 0


def _start_pool(ray, cfg, opts: RayOptions) -> tuple[list, dict]:
    n, gpus, cpus = _pool_size(ray, opts)
    cpu_total = float(ray.cluster_resources().get("CPU", 1))
    decode = _uses_decode_tasks(opts, gpus)
    if n * cpus + (opts.decode_cpus if decode else 0) > cpu_total + 1e-9:
        what = "leave no CPU for decoding" if decode else "need more CPUs than there are"
        raise VcmrError(f"Ray: {n} encoder actors x {cpus:g} CPUs {what} on a cluster with "
                        f"{cpu_total:g} CPUs; use fewer --ray-actors")
    # a dead actor restarts; the driver retries the videos it held, each alone on an actor,
    # so only a video that kills it twice (a decoder segfault, not bad luck) is failed
    cls = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=0,
                     scheduling_strategy="SPREAD")(_Encoder)
    if gpus > 0:
        threads = 0  # torch's default; the GPU does the work
    else:
        threads = opts.encoder_threads if opts.encoder_threads else -1
    per_node = -(-n // _alive_nodes(ray))  # spread over the nodes: at most this many on one
    actors = [cls.remote(dataclasses.asdict(cfg), threads, per_node) for _ in range(n)]
    infos = ray.get([a.info.remote() for a in actors])
    for info in infos:
        if "error" in info:
            raise VcmrError(info["error"])
    return actors, dict(infos[0], decode_tasks=decode)


def _crash_reason(ray, e: Exception) -> tuple[str, str]:
    """(reason, message) for a task or actor that died instead of returning."""
    if isinstance(e, ray.exceptions.OutOfMemoryError):
        return "out_of_memory", f"the worker ran out of memory: {str(e).splitlines()[0]}"
    if isinstance(e, (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError)):
        return "worker_crashed", f"the worker process died: {str(e).splitlines()[0]}"
    cause = getattr(e, "cause", None)
    if isinstance(cause, OutputWriteError):
        raise OutputWriteError(str(cause)) from None
    what = cause if cause is not None else e
    return "worker_error", f"{type(what).__name__}: {str(what).splitlines()[0] if str(what) else ''}"


def _remove_outputs(data_dir: Path, vid: str, audio_too: bool = True) -> None:
    """Delete the files a video that is now recorded as failed (or about to be retried) may
    have left (no row lists them); its id is not finished (else it would not have run), so
    nothing recorded is lost. ``audio_too=False`` keeps its WAVs (a decode task's finished
    work, which the retried encoding step needs)."""
    audio = data_dir / "audio" / vid
    if audio_too and audio.is_dir():
        for f in audio.glob(f"{vid}_*.wav*"):
            f.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            audio.rmdir()
    for f in (data_dir / "video" / f"{vid}.npy", data_dir / "video" / f"{vid}.npy.tmp"):
        f.unlink(missing_ok=True)


class _Scheduler:
    """The driver's loop: downloads -> decodes -> actors, bounded, rows to the Recorder.

    Each actor holds at most ``depth`` videos (2 when decode tasks feed it, so the next
    frames are at hand; 1 when it decodes them itself). When an actor dies, every video it
    held gets one more try, alone on an actor (nothing queued behind it): a video that kills
    the actor again is the culprit and becomes a ``failed`` row; the others complete."""

    def __init__(self, ray, todo, data_dir: Path, cfg, recorder: Recorder, opts: RayOptions,
                 actors: list, crop_size: int, decode_tasks: bool = True):
        self.ray, self.data_dir, self.cfg, self.recorder = ray, data_dir, cfg, recorder
        self.pending = deque(todo)
        self.actors, self.load = actors, {i: 0 for i in range(len(actors))}
        self.decode_fn = ray.remote(num_cpus=opts.decode_cpus, num_returns=2, max_retries=0)(_decode)
        self.download_fn = ray.remote(num_cpus=0, max_retries=0)(_download)
        self.downloads_max = max(1, opts.downloads)
        self.args = (str(data_dir), dataclasses.asdict(cfg), crop_size, cfg.frame_encoder,
                     os.environ.get(CRASH_HOOK))
        cpu_total = float(ray.cluster_resources().get("CPU", 1))
        self.decode_tasks = decode_tasks
        slots = max(1, int(cpu_total // max(opts.decode_cpus, 1e-3)) - len(actors)) if decode_tasks else 0
        self.depth = 2 if decode_tasks else 1
        self.max_in_flight = opts.max_in_flight or slots + self.depth * len(actors)
        self.running: dict = {}  # ObjectRef -> (kind, item, extra, t0)
        self.decoded: deque = deque()  # (item, row, frames_ref, t0) waiting for an actor
        self.suspects: deque = deque()  # the same, held by an actor that died: one more try
        self.retried: set = set()  # ids that had their extra try
        self.alive = {i: True for i in range(len(actors))}  # False while one restarts
        self.pings = {i: 0 for i in range(len(actors))}
        self.in_flight = 0

    def run(self) -> None:
        try:
            while self.pending or self.in_flight:
                self._submit()
                ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=1.0)
                for ref in ready:
                    self._handle(ref, *self.running.pop(ref))
        finally:
            for ref, (kind, *_) in self.running.items():  # a stop (full disk, Ctrl-C)
                if kind in ("download", "decode"):  # actors are killed by run_on_ray
                    self.ray.cancel(ref, force=True)

    def _submit(self) -> None:
        n_dl = sum(1 for k, *_ in self.running.values() if k == "download")
        while self.pending and self.in_flight < self.max_in_flight:
            item = self.pending[0]
            if item.path is None and n_dl >= self.downloads_max:
                break
            self.pending.popleft()
            self.in_flight += 1
            if item.path is None:
                ref = self.download_fn.remote(item, str(self.data_dir / "raw"))
                self.running[ref] = ("download", item, None, time.perf_counter())
                n_dl += 1
            else:
                self._decode(item, time.perf_counter())
        self._feed_actors()

    def _decode(self, item: VideoItem, t0: float) -> None:
        if not self.decode_tasks:  # the actor decodes it
            self.decoded.append((item, None, None, t0))
            return self._feed_actors()
        row_ref, frames_ref = self.decode_fn.remote(item, *self.args)
        self.running[row_ref] = ("decode", item, frames_ref, t0)

    def _feed_actors(self) -> None:
        while self.suspects:  # first, each alone on an idle actor
            idle = [i for i, n in self.load.items() if n == 0 and self.alive[i]]
            if not idle:
                return
            self._dispatch(idle[0], self.suspects.popleft(), alone=True)
        while self.decoded:
            up = [i for i in self.load if self.alive[i]]
            if not up:
                return
            i = min(up, key=self.load.get)
            if self.load[i] >= self.depth:
                return
            self._dispatch(i, self.decoded.popleft(), alone=False)

    def _dispatch(self, i: int, entry: tuple, alone: bool) -> None:
        item, row, frames_ref, t0 = entry
        if row is None:
            ref = self.actors[i].prepare.remote(item, *self.args[:1], *self.args[2:])
        else:
            ref = self.actors[i].finish.remote(row, frames_ref, str(self.data_dir), self.args[-1])
        taken = self.depth if alone else 1  # nothing queues behind a suspect
        self.load[i] += taken
        self.running[ref] = ("encode", item, (i, taken, entry), t0)

    def _handle(self, ref, kind: str, item: VideoItem, extra, t0: float) -> None:
        if kind == "ping":
            return self._pinged(ref, extra)
        if kind == "encode":
            self.load[extra[0]] -= extra[1]
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            if kind == "encode" and isinstance(e, self.ray.exceptions.RayActorError):
                self._actor_down(extra[0])
                if item.id not in self.retried:
                    return self._retry_alone(extra[2])
            reason, msg = _crash_reason(self.ray, e)
            return self._failed(item, reason, msg, t0)
        if kind == "download":
            path, error = result
            if error is not None:
                return self._failed(item, "download_error", error, t0)
            return self._decode(dataclasses.replace(item, path=path), t0)
        if kind == "decode" and result["status"] == "kept":
            self.decoded.append((item, result, extra, t0))
            return self._feed_actors()
        self._record(result)

    def _actor_down(self, i: int) -> None:
        """Actor ``i`` died: Ray restarts it; nothing is sent to it until it answers again
        (a task sent while it restarts would fail)."""
        if self.alive[i]:
            self.alive[i], self.pings[i] = False, 0
            self._ping(i)

    def _ping(self, i: int) -> None:
        self.running[self.actors[i].info.remote()] = ("ping", None, i, time.perf_counter())

    def _pinged(self, ref, i: int) -> None:
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayActorError:
            self.pings[i] += 1
            if self.pings[i] > ACTOR_RESTART_PINGS:
                raise VcmrError(f"Ray: encoder actor {i} did not come back after a crash "
                                f"({ACTOR_RESTART_PINGS * 0.2:.0f} s); check the Ray logs "
                                f"(ray status) and run the command again to resume") from None
            time.sleep(0.2)
            return self._ping(i)
        if "error" in info:
            raise VcmrError(info["error"])
        self.alive[i] = True
        self._feed_actors()

    def _retry_alone(self, entry: tuple) -> None:
        """The actor holding this video died (maybe because of another one): try it again,
        alone, after removing what the dead attempt may have left half-written."""
        item, row = entry[0], entry[1]
        self.retried.add(item.id)
        _remove_outputs(self.data_dir, item.id, audio_too=row is None)
        self.suspects.append(entry)
        self._feed_actors()

    def _failed(self, item: VideoItem, reason: str, msg: str, t0: float) -> None:
        _remove_outputs(self.data_dir, item.id)  # e.g. WAVs written before the actor died
        row = _base_row(item, self.cfg, self.cfg.frame_encoder)
        row.update(reason=reason, error=msg,
                   seconds_taken=round(time.perf_counter() - t0, 3))
        self._record(row)

    def _record(self, row: dict) -> None:
        self.in_flight -= 1
        self.recorder.record(row)


def ray_runner(opts: Optional[RayOptions] = None):
    """A ``runner`` for ``pipeline.prepare_videos``; checks that Ray is installed first, so a
    missing Ray is reported before any work::

        prepare_videos(["videos/"], "data/av", cfg, runner=ray_runner(RayOptions(address="auto")))
    """
    import_ray()
    return lambda todo, data_dir, cfg, recorder: run_on_ray(todo, data_dir, cfg, recorder, opts)


def run_on_ray(todo: list[VideoItem], data_dir: Path, cfg, recorder: Recorder,
               opts: Optional[RayOptions] = None) -> dict[str, Any]:
    """Prepare ``todo`` on Ray, recording each finished video through ``recorder``.

    Uses the Ray instance of this process when there is one, else joins ``opts.address`` or
    starts (and stops) a local one. Returns what it used: actors, encoder device and torch
    threads, in-flight bound.
    """
    ray = import_ray()
    opts = opts or RayOptions()
    started = _connect(ray, opts)
    actors: list = []
    try:
        actors, info = _start_pool(ray, cfg, opts)
        sched = _Scheduler(ray, todo, data_dir, cfg, recorder, opts, actors, info["crop_size"],
                           info["decode_tasks"])
        sched.run()
        return {"actors": len(actors), "device": info["device"], "threads": info["threads"],
                "decode_tasks": info["decode_tasks"], "max_in_flight": sched.max_in_flight}
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()
