"""``vcmr prepare --engine ray``: the same per-video job as the local engine, on a Ray cluster.

    vcmr prepare videos/ --out /shared/data/av --engine ray                           # local Ray
    vcmr prepare list.txt --out /shared/data/av --engine ray --ray_address HEAD:6379  # cluster
    prepare_videos(inputs, out, load_config("prepare", None, ["--engine", "ray"]))    # Python

The ``ray_*`` keys of PrepareConfig set how Ray is used (none of them changes the outputs).
Work split (``vcmr.prepare.job`` does the work, ``ray_workers`` holds the remote code):

- download tasks (yt-dlp) for listed ids/URLs, at most ``ray_downloads`` at once;
- a pool of encoder actors that hold the frame encoder once (GPU actors when the cluster has
  GPUs, ``ray_gpus_per_actor`` may be a fraction; CPU actors otherwise) and finish a video
  with ``job.finish_video`` (encode the frames in batches of ``encoder_batch_size``, write
  the features);
- with GPU actors, decode tasks (``job.decode_video``: one PyAV pass, scene detection, WAV
  writing), ``ray_decode_cpus`` each, feed them: frames go from a decode task to an actor
  through Ray's object store, never through the driver. CPU actors decode their own videos
  by default (``ray_decode_tasks``), one actor per node using the node's cores, as the local
  engine does on one machine: a decode task beside a CPU encoder only takes cores from it
  (measured in benchmarks/README.md).

The driver (``ray_scheduler.Scheduler``) bounds the videos in flight and is the only manifest
writer (``job.Recorder``): a row is appended after the video's WAVs and features are written
(atomically, by the workers), so a killed driver loses nothing finished and the next run
(either engine) resumes. A failed row is retried by the next run. ``--out`` must be a path
every node sees (a shared file system). Ray itself is imported on use: it is an optional
extra (``pip install "vcmr[ray]"``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from vcmr.errors import VcmrError
from vcmr.prepare import ray_workers
from vcmr.prepare.download import VideoItem
from vcmr.prepare.job import Recorder
from vcmr.prepare.ray_scheduler import Scheduler

__all__ = ["import_ray", "run_on_ray", "start_pool"]


def import_ray():
    """The ``ray`` module, or a VcmrError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise VcmrError('--engine ray needs Ray, which is not installed: pip install "vcmr[ray]" '
                        '(or pip install ray), or use the default --engine local') from None
    return ray


def _connect(ray, cfg) -> bool:
    """Join ``cfg.ray_address`` or start a local instance; True when this call started Ray."""
    if ray.is_initialized():
        return False
    common = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if cfg.ray_address:
        try:
            ray.init(address=cfg.ray_address, **common)
        except Exception as e:  # ConnectionError, timeouts...: say which address
            raise VcmrError(f"--ray_address {cfg.ray_address!r}: cannot join the Ray cluster "
                            f"({type(e).__name__}: {e}); start it with `ray start --head` or "
                            f"leave --ray_address out for a local instance") from None
    else:
        ray.init(num_cpus=cfg.ray_num_cpus or os.cpu_count() or 1, **common)
    return True


def _alive_nodes(ray) -> int:
    return max(1, sum(1 for node in ray.nodes() if node.get("Alive")))


def _pool_size(ray, cfg) -> tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) for this cluster."""
    gpus = float(ray.cluster_resources().get("GPU", 0))
    per_gpu = cfg.ray_gpus_per_actor if cfg.ray_gpus_per_actor is not None else (1.0 if gpus else 0.0)
    if per_gpu > 0 and per_gpu > gpus:
        raise VcmrError(f"--ray_gpus_per_actor {per_gpu}: the cluster has {gpus:g} GPUs")
    if cfg.ray_actors is not None:
        n = cfg.ray_actors
    else:
        n = max(1, int(gpus / per_gpu + 1e-9)) if per_gpu > 0 else _alive_nodes(ray)
    return n, per_gpu, (1.0 if per_gpu > 0 else cfg.ray_encoder_cpus)


def start_pool(ray, cfg) -> tuple[list, dict]:
    """The encoder actors, started and loaded, and what they report (crop size, device,
    torch threads) with ``decode_tasks``: whether decode tasks feed them."""
    n, gpus, cpus = _pool_size(ray, cfg)
    cpu_total = float(ray.cluster_resources().get("CPU", 1))
    decode = cfg.ray_decode_tasks if cfg.ray_decode_tasks is not None else gpus > 0
    if n * cpus + (cfg.ray_decode_cpus if decode else 0) > cpu_total + 1e-9:
        what = "leave no CPU for decoding" if decode else "need more CPUs than there are"
        raise VcmrError(f"Ray: {n} encoder actors x {cpus:g} CPUs {what} on a cluster with "
                        f"{cpu_total:g} CPUs; use fewer --ray_actors")
    # a dead actor restarts; the driver retries the videos it held, each alone on an actor,
    # so only a video that kills it twice (a decoder segfault, not bad luck) is failed
    cls = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=0,
                     scheduling_strategy="SPREAD")(ray_workers.EncoderActor)
    if gpus > 0:
        threads = 0  # torch's default; the GPU does the work
    else:
        threads = cfg.ray_encoder_threads or -1  # -1: the node's cores shared by its actors
    per_node = -(-n // _alive_nodes(ray))  # spread over the nodes: at most this many on one
    actors = [cls.remote(cfg, threads, per_node) for _ in range(n)]
    infos = ray.get([a.info.remote() for a in actors])
    for info in infos:
        if "error" in info:
            raise VcmrError(info["error"])
    return actors, dict(infos[0], decode_tasks=decode)


def run_on_ray(todo: list[VideoItem], data_dir: Path, cfg, recorder: Recorder) -> dict[str, Any]:
    """Prepare ``todo`` on Ray, recording each finished video through ``recorder``.

    Uses the Ray instance of this process when there is one, else joins ``cfg.ray_address``
    or starts (and stops) a local one. Returns what it used: actors, encoder device and torch
    threads, in-flight bound.
    """
    ray = import_ray()
    started = _connect(ray, cfg)
    actors: list = []
    try:
        actors, info = start_pool(ray, cfg)
        sched = Scheduler(ray, todo, data_dir, cfg, recorder, actors, info["crop_size"],
                          info["decode_tasks"])
        sched.run()
        return {"actors": len(actors), "device": info["device"], "threads": info["threads"],
                "decode_tasks": info["decode_tasks"], "max_in_flight": sched.max_in_flight}
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()
