"""The Ray engine's driver loop: downloads -> decodes -> encoder actors, bounded; each finished
video's row goes to the run's ``Recorder``. The ``ray`` module is passed in (see ``ray_engine``).

At most ``ray_max_in_flight`` videos are submitted and not yet recorded, so memory stays flat
whatever the corpus size. A task whose worker process dies becomes a ``failed`` row with
reason ``worker_crashed`` / ``out_of_memory``; an encoder actor that dies is restarted by Ray
and each video it held is tried once more, alone (see ``Scheduler``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import deque
from pathlib import Path

from vcmr.errors import VcmrError
from vcmr.prepare import ray_workers
from vcmr.prepare.download import VideoItem
from vcmr.prepare.job import OutputWriteError, Recorder, failed_row

__all__ = ["Scheduler", "crash_reason", "remove_outputs", "ACTOR_RESTART_PINGS"]

ACTOR_RESTART_PINGS = 600  # a crashed encoder actor has 600 x 0.2 s to come back


def crash_reason(ray, e: Exception) -> tuple[str, str]:
    """(reason, message) for a task or actor that died instead of returning; a full disk
    (OutputWriteError inside the task) is raised again, since it stops the run."""
    if isinstance(e, ray.exceptions.OutOfMemoryError):
        return "out_of_memory", f"the worker ran out of memory: {str(e).splitlines()[0]}"
    if isinstance(e, (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError)):
        return "worker_crashed", f"the worker process died: {str(e).splitlines()[0]}"
    cause = getattr(e, "cause", None)
    if isinstance(cause, OutputWriteError):
        raise OutputWriteError(str(cause)) from None
    what = cause if cause is not None else e
    return "worker_error", f"{type(what).__name__}: {str(what).splitlines()[0] if str(what) else ''}"


def remove_outputs(data_dir: Path, vid: str, audio_too: bool = True) -> None:
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


class Scheduler:
    """The driver's loop: downloads -> decodes -> actors, bounded, rows to the Recorder.

    Each actor holds at most ``depth`` videos (2 when decode tasks feed it, so the next
    frames are at hand; 1 when it decodes them itself). When an actor dies, every video it
    held gets one more try, alone on an actor (nothing queued behind it): a video that kills
    the actor again is the culprit and becomes a ``failed`` row; the others complete."""

    def __init__(self, ray, todo: list[VideoItem], data_dir: Path, cfg, recorder: Recorder,
                 actors: list, crop_size: int, decode_tasks: bool = True):
        self.ray, self.data_dir, self.cfg, self.recorder = ray, data_dir, cfg, recorder
        self.pending = deque(todo)
        self.actors, self.load = actors, {i: 0 for i in range(len(actors))}
        self.decode_fn = ray.remote(num_cpus=cfg.ray_decode_cpus, num_returns=2,
                                    max_retries=0)(ray_workers.decode_task)
        self.download_fn = ray.remote(num_cpus=0, max_retries=0)(ray_workers.download_task)
        self.crop_size = crop_size
        cpu_total = float(ray.cluster_resources().get("CPU", 1))
        self.decode_tasks = decode_tasks
        slots = max(1, int(cpu_total // cfg.ray_decode_cpus) - len(actors)) if decode_tasks else 0
        self.depth = 2 if decode_tasks else 1
        self.max_in_flight = cfg.ray_max_in_flight or slots + self.depth * len(actors)
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
            if item.path is None and n_dl >= self.cfg.ray_downloads:
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
        row_ref, frames_ref = self.decode_fn.remote(item, str(self.data_dir), self.cfg, self.crop_size)
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
            ref = self.actors[i].prepare.remote(item, str(self.data_dir), self.crop_size)
        else:
            ref = self.actors[i].finish.remote(row, frames_ref, str(self.data_dir))
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
            reason, msg = crash_reason(self.ray, e)
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
        remove_outputs(self.data_dir, item.id, audio_too=row is None)
        self.suspects.append(entry)
        self._feed_actors()

    def _failed(self, item: VideoItem, reason: str, msg: str, t0: float) -> None:
        remove_outputs(self.data_dir, item.id)  # e.g. WAVs written before the actor died
        self._record(failed_row(item, self.cfg, reason, msg, time.perf_counter() - t0))

    def _record(self, row: dict) -> None:
        self.in_flight -= 1
        self.recorder.record(row)
