"""``vcmr prepare INPUT... --out DATA_DIR`` and ``vcmr prepare merge DIR... --out DIR``.

    vcmr prepare videos/ --out data/av --frame_encoder efficientnet-lite0
    vcmr prepare video_list.txt --out data/part0 --shard 0/4      # on 4 machines: 0/4 .. 3/4
    vcmr prepare merge data/part0 data/part1 data/part2 data/part3 --out data/av
    vcmr prepare videos/ --out data/av --window_seconds 60 --redo  # redo finished videos too
    vcmr prepare videos/ --out /shared/av --engine ray --ray_address auto  # on a Ray cluster

Every PrepareConfig key is also a flag (``--key value``, or ``--key-with-dashes value``); the
flags declared here are the ones ``--help`` lists, with the engine and Ray keys.

In a SLURM job array, ``--shard`` defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (the
index counted from SLURM_ARRAY_TASK_MIN), with either engine.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping, Optional

from vcmr.commands import flag_names
from vcmr.config import load_config
from vcmr.errors import VcmrError
from vcmr.locks import locked
from vcmr.prepare.merge import merge_outputs
from vcmr.prepare.pipeline import format_summary, prepare_videos


def _flag(group, key: str, text: str, **kw) -> None:
    """``--key`` and its dashed spelling, for a PrepareConfig key (``run`` passes it on as an
    override, so the YAML value holds unless the flag is given)."""
    kw.setdefault("metavar", "N")
    group.add_argument(*flag_names(key), dest=key, default=None, help=text, **kw)


# PrepareConfig keys with a flag of their own (any other key is given as --key value too)
CONFIG_FLAGS = ("frame_encoder", "workers", "engine", "ray_address", "ray_num_cpus", "ray_actors",
                "ray_gpus_per_actor", "ray_encoder_cpus", "ray_encoder_threads", "ray_decode_tasks")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders of videos, or text files with one YouTube id "
                             "or URL per line; `merge DIR...` combines prepared folders")
    parser.add_argument("--out", required=True, help="output folder (DATA_DIR)")
    parser.add_argument("--config", default=None, help="YAML config (default: paper values)")
    _flag(parser, "frame_encoder", "clip (default, 512-D) or efficientnet-lite0 (1280-D, offline)",
          metavar="NAME")
    _flag(parser, "workers", "decoding processes (0: everything in this process; default auto: 0 "
                             "when the encoder runs on the CPU, up to 4 with a GPU)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="prepare only shard I of N (deterministic split by id)")
    parser.add_argument("--no_progress", "--no-progress", dest="no_progress", action="store_true",
                        help="no progress bar")
    parser.add_argument("--redo", action="store_true",
                        help="prepare every input again, also the videos already finished in "
                             "--out (e.g. after changing the window or a rule)")
    ray = parser.add_argument_group("Ray engine (--engine ray, needs pip install \"vcmr[ray]\")")
    _flag(ray, "engine", "local (default): this machine; ray: decode tasks and encoder actors on "
                         "a Ray cluster (--out must be a folder every node sees)", metavar="local|ray")
    _flag(ray, "ray_address", "join this Ray cluster (HOST:PORT or auto); default: start a local one",
          metavar="HOST:PORT")
    _flag(ray, "ray_num_cpus", "CPUs of the local Ray instance (default: all of this machine)")
    _flag(ray, "ray_actors", "frame-encoder actors (default: one per GPU share, else one per node)")
    _flag(ray, "ray_gpus_per_actor", "GPUs per encoder actor, fractions allowed (default 1 when "
                                     "the cluster has GPUs, else 0: CPU actors)")
    _flag(ray, "ray_encoder_cpus", "CPUs each CPU encoder actor reserves in Ray's accounting "
                                   "(default 1)")
    _flag(ray, "ray_encoder_threads", "torch threads of each CPU encoder actor (default: the "
                                      "cores of its node shared by the actors there)")
    _flag(ray, "ray_decode_tasks", "decode in Ray tasks that feed the encoder actors; alone or "
                                   "true, or false (default: only with GPU actors; CPU actors "
                                   "decode their own videos)", nargs="?", const="true",
          metavar="true|false")
    ray.description = ("Further keys: ray_decode_cpus, ray_downloads, ray_max_in_flight "
                       "(config/prepare.yaml).")


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


def run(args: argparse.Namespace) -> int:
    if args.inputs[0] == "merge":
        return _merge(args)
    overrides = list(getattr(args, "overrides", []) or [])
    for key in CONFIG_FLAGS:
        if getattr(args, key) is not None:
            overrides += [f"--{key}", getattr(args, key)]
    cfg = load_config("prepare", args.config, overrides)
    shard = parse_shard(args.shard)
    if shard is None:
        shard = shard_from_env(os.environ)
        if shard is not None:
            print(f"vcmr prepare: SLURM array task: --shard {shard[0]}/{shard[1]}", file=sys.stderr)
    with locked(args.out, f"--out {args.out!r}"):
        summary = prepare_videos(args.inputs, args.out, cfg, shard=shard,
                                 progress=not args.no_progress, redo=args.redo)
    print(format_summary(summary))
    return 0


def _merge(args: argparse.Namespace) -> int:
    dirs = args.inputs[1:]
    if not dirs:
        raise VcmrError("prepare merge: give the folders to merge, e.g. "
                        "`vcmr prepare merge data/part0 data/part1 --out data/av`")
    if getattr(args, "overrides", None):
        raise VcmrError(f"prepare merge: unexpected options {' '.join(args.overrides)}")
    with locked(args.out, f"--out {args.out!r}"):
        counts = merge_outputs(dirs, args.out)
    print(f"merged {len(dirs)} folders into {args.out}: " +
          ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 0
