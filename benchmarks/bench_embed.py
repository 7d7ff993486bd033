"""Embedding throughput of the paper's SampleCNN on CPU: seconds of audio embedded per second.

    python benchmarks/bench_embed.py --seconds 60 --repeats 3 --batch-sizes 1,4,16

Random weights (speed does not depend on them), eval mode, torch threads as configured. The
same 16 kHz excerpt goes through ``EmbeddingModel.embed`` (segmentation + forward passes) with
each batch size, in turn, ``repeats`` times after one warm-up; the median is reported.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from vcmr.api import EmbeddingModel
from vcmr.checkpoint import build_encoder
from vcmr.config import EncoderConfig, config_to_dict


def paper_model() -> EmbeddingModel:
    torch.manual_seed(0)
    cfg = EncoderConfig()
    state = {f"encoder.{k}": v for k, v in build_encoder(cfg).state_dict().items()}
    return EmbeddingModel("sup", config_to_dict(cfg), {**state, **_head(cfg)}, ["tag"], "paper encoder")


def _head(cfg):
    from vcmr.models.heads import tagging_head
    return {f"head.{k}": v for k, v in tagging_head(cfg.output_size, 1).state_dict().items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-sizes", default="1,4,16")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = paper_model()
    sr = model.sample_rate
    x = np.random.default_rng(0).normal(0, 0.1, int(args.seconds * sr)).astype(np.float32)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    n_seg = len(model.embed(x[: model.segment_samples], sr).starts)  # warm-up
    times = {b: [] for b in sizes}
    for _ in range(args.repeats):
        for b in sizes:  # interleaved, so machine noise hits every batch size alike
            model.batch_size = b
            t0 = time.perf_counter()
            n_seg = len(model.embed(x, sr).starts)
            times[b].append(time.perf_counter() - t0)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.seconds:.0f} s of audio = {n_seg} segments "
          f"of {model.segment_samples} samples, median of {args.repeats}")
    print("| batch size | seconds per run | audio seconds / s | segments / s |")
    print("|---:|---:|---:|---:|")
    for b in sizes:
        med = statistics.median(times[b])
        print(f"| {b} | {med:.2f} | {args.seconds / med:.1f} | {n_seg / med:.1f} |")


if __name__ == "__main__":
    main()
