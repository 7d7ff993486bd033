"""Embedding throughput of the paper's SampleCNN on CPU, per batch size, for the two ways
vcmr embeds audio.

    python benchmarks/bench_embed.py --seconds 60 --hear-sounds 4 --hear-seconds 10 \
        --repeats 3 --batch-sizes 1,4,16,32

* ``single``: one file of ``--seconds`` through ``EmbeddingModel.embed`` (non-overlapping
  segments, what ``vcmr embed`` does per file).
* ``hear``: a HEAR-style batch of ``--hear-sounds`` x ``--hear-seconds`` through
  ``vcmr.hear.get_timestamp_embeddings`` at its default 50 ms hop (one full window per
  timestamp; windows of all sounds batched together).

Random weights (speed does not depend on them), eval mode, torch threads as configured. Each
batch size runs in turn, ``repeats`` rounds after one warm-up (interleaved, so a burst of load
from another process hits every size alike); the median is reported.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import numpy as np
import torch

from vcmr import hear
from vcmr.inference import EmbeddingModel
from vcmr.models.stages import build
from vcmr.config import EncoderConfig, config_to_dict


def paper_model() -> EmbeddingModel:
    torch.manual_seed(0)
    cfg = EncoderConfig()
    state = build("tagging", config_to_dict(cfg), ["tag"]).state_dict()
    return EmbeddingModel("tagging", config_to_dict(cfg), state, ["tag"], "paper encoder")


def workloads(model: EmbeddingModel, args) -> dict:
    """name -> (callable returning the number of windows embedded, audio seconds)."""
    rng = np.random.default_rng(0)
    sr = model.sample_rate
    x = rng.normal(0, 0.1, int(args.seconds * sr)).astype(np.float32)
    hm = hear.HearModel(model)
    batch = torch.from_numpy(rng.normal(0, 0.1, (args.hear_sounds, int(args.hear_seconds * hm.sample_rate)))
                             .astype(np.float32))
    return {
        "single": (lambda: len(model.embed(x, sr).starts), args.seconds),
        "hear": (lambda: int(np.prod(hear.get_timestamp_embeddings(batch, hm)[1].shape)),
                 args.hear_sounds * args.hear_seconds),
    }


def measure(model: EmbeddingModel, work, sizes: list[int], repeats: int) -> dict[int, tuple[float, int]]:
    """batch size -> (median seconds per run, windows per run)."""
    fn, _ = work
    model.batch_size = sizes[0]
    fn()  # warm-up
    times, n = {b: [] for b in sizes}, 0
    for _ in range(repeats):
        for b in sizes:
            model.batch_size = b
            t0 = time.perf_counter()
            n = fn()
            times[b].append(time.perf_counter() - t0)
    return {b: (statistics.median(t), n) for b, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="single: length of the file")
    p.add_argument("--hear-sounds", type=int, default=4)
    p.add_argument("--hear-seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-sizes", default="1,4,16,32")
    p.add_argument("--only", choices=["single", "hear"], default=None)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = paper_model()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"# {date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, paper SampleCNN ({model.segment_samples} samples at "
          f"{model.sample_rate} Hz), median of {args.repeats}")
    for name, work in workloads(model, args).items():
        if args.only and name != args.only:
            continue
        res = measure(model, work, sizes, args.repeats)
        best = min(t for t, _ in res.values())
        print(f"\n{name}: {work[1]:g} s of audio per run, {next(iter(res.values()))[1]} windows")
        print("| batch size | seconds per run | audio seconds / s | windows / s | vs best |")
        print("|---:|---:|---:|---:|---:|")
        for b, (t, n) in res.items():
            print(f"| {b} | {t:.2f} | {work[1] / t:.2f} | {n / t:.1f} | {t / best:.2f}x |")


if __name__ == "__main__":
    main()
