"""``vcmr prepare INPUT... --out DATA_DIR`` and ``vcmr prepare merge DIR... --out DIR``.

    vcmr prepare videos/ --out data/av --frame-encoder efficientnet-lite0
    vcmr prepare video_list.txt --out data/part0 --shard 0/4      # on 4 machines: 0/4 .. 3/4
    vcmr prepare merge data/part0 data/part1 data/part2 data/part3 --out data/av
    vcmr prepare videos/ --out data/av --window_seconds 60 --redo  # redo finished videos too
    vcmr prepare videos/ --out /shared/av --engine ray --ray-address auto  # on a Ray cluster

In a SLURM job array, ``--shard`` defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (the
index counted from SLURM_ARRAY_TASK_MIN), with either engine.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping, Optional

from vcmr.errors import VcmrError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders of videos, or text files with one YouTube id "
                             "or URL per line; `merge DIR...` combines prepared folders")
    parser.add_argument("--out", required=True, help="output folder (DATA_DIR)")
    parser.add_argument("--config", default=None, help="YAML config (default: paper values)")
    parser.add_argument("--frame-encoder", default=None,
                        help="clip (default, 512-D) or efficientnet-lite0 (1280-D, offline)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes (0: everything in this process; default auto: 0 when the "
                             "encoder runs on the CPU, up to 4 with a GPU)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="prepare only shard I of N (deterministic split by id)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--redo", action="store_true",
                        help="prepare every input again, also the videos a previous run into the "
                             "same --out finished (e.g. after changing the window or a rule)")
    ray = parser.add_argument_group("Ray engine (--engine ray, needs pip install \"vcmr[ray]\")")
    ray.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local (default): this machine; ray: decode tasks and encoder actors "
                          "on a Ray cluster (--out must be a folder every node sees)")
    ray.add_argument("--ray-address", default=None,
                     help="join this Ray cluster (HOST:PORT or auto); default: start a local one")
    ray.add_argument("--ray-num-cpus", type=int, default=None,
                     help="CPUs of the local Ray instance (default: all of this machine)")
    ray.add_argument("--ray-actors", type=int, default=None,
                     help="frame-encoder actors (default: one per GPU share, else one per node)")
    ray.add_argument("--ray-gpus-per-actor", type=float, default=None,
                     help="GPUs per encoder actor, fractions allowed (default 1 when the "
                          "cluster has GPUs, else 0: CPU actors)")
    ray.add_argument("--ray-encoder-cpus", type=float, default=1.0,
                     help="CPUs each CPU encoder actor reserves in Ray's accounting (default 1)")
    ray.add_argument("--ray-decode-tasks", action="store_const", const=True, default=None,
                     help="decode in Ray tasks that feed CPU encoder actors (default: only "
                          "with GPU actors; CPU actors decode their own videos)")
    ray.add_argument("--ray-encoder-threads", type=int, default=None,
                     help="torch threads of each CPU encoder actor (default: the cores of its "
                          "node shared by the actors there)")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise VcmrError(f"--shard {text!r}: write it as I/N, e.g. --shard 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise VcmrError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def shard_from_env(env: Mapping[str, str]) -> Optional[tuple[int, int]]:
    """(index, count) of a SLURM array task, or None outside one."""
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        task, count = int(env["SLURM_ARRAY_TASK_ID"]), int(env["SLURM_ARRAY_TASK_COUNT"])
        first = int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
    except ValueError:
        raise VcmrError("SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT are not numbers; "
                        "give --shard I/N") from None
    if count < 1 or not 0 <= task - first < count:
        raise VcmrError(f"SLURM array task {task} (first {first}, count {count}) does not give a "
                        f"shard; use --array=0-{max(count, 1) - 1} or give --shard I/N")
    return task - first, count


def _ray_runner(args: argparse.Namespace):
    from vcmr.prepare.ray_engine import RayOptions, ray_runner
    return ray_runner(RayOptions(address=args.ray_address, num_cpus=args.ray_num_cpus, actors=args.ray_actors,
                      gpus_per_actor=args.ray_gpus_per_actor, encoder_cpus=args.ray_encoder_cpus,
                      encoder_threads=args.ray_encoder_threads, decode_tasks=args.ray_decode_tasks))


def run(args: argparse.Namespace) -> int:
    if args.inputs[0] == "merge":
        return _merge(args)
    from vcmr.config import load_config
    from vcmr.prepare.pipeline import format_summary, prepare_videos
    overrides = list(getattr(args, "overrides", []) or [])
    if args.frame_encoder is not None:
        overrides += ["--frame_encoder", args.frame_encoder]
    if args.workers is not None:
        overrides += ["--workers", str(args.workers)]
    cfg = load_config("prepare", args.config, overrides)
    shard = parse_shard(args.shard)
    if shard is None:
        shard = shard_from_env(os.environ)
        if shard is not None:
            print(f"vcmr prepare: SLURM array task: --shard {shard[0]}/{shard[1]}", file=sys.stderr)
    runner = _ray_runner(args) if args.engine == "ray" else None
    if args.engine != "ray":
        given = [f"--{k.replace('_', '-')}" for k in ("ray_address", "ray_num_cpus", "ray_actors",
                                                        "ray_gpus_per_actor", "ray_encoder_threads",
                                                        "ray_decode_tasks")
                 if getattr(args, k) is not None]
        if given:
            raise VcmrError(f"{', '.join(given)} work only with --engine ray; add --engine ray")
    summary = prepare_videos(args.inputs, args.out, cfg, shard=shard, progress=not args.no_progress,
                             redo=args.redo, runner=runner)
    print(format_summary(summary))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from vcmr.prepare.pipeline import merge_outputs
    dirs = args.inputs[1:]
    if not dirs:
        raise VcmrError("prepare merge: give the folders to merge, e.g. "
                        "`vcmr prepare merge data/part0 data/part1 --out data/av`")
    if getattr(args, "overrides", None):
        raise VcmrError(f"prepare merge: unexpected options {' '.join(args.overrides)}")
    counts = merge_outputs(dirs, args.out)
    print(f"merged {len(dirs)} folders into {args.out}: " +
          ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 0
