"""Stage-1 step throughput (pairs/s) for the paper's SampleCNN: model alone vs with data.

    python benchmarks/bench_train_step.py --batch 8 --repeats 3

"model only": forward + backward + optimiser step of the paper SampleCNN (load_config("music")
defaults, the configured optimiser) with the 512-512-128 projector and NT-Xent on two
pre-made views of ``batch`` clips.
"data + aug + model": the same step preceded, in the same process and without DataLoader
workers (the worst case: nothing overlaps), by reading one excerpt of ``excerpt_seconds``
(15 s) per item from generated 30 s WAV files (soundfile, random offset) and making two views
with the default AugmentChain on one thread, as MusicModule does.
The table shows each part's share of the full step.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vcmr.audio.augment import AugmentChain
from vcmr.config import load_config
from vcmr.losses import NTXent
from vcmr.models import heads
from vcmr.models.sample_cnn import SampleCNN
from vcmr.train.music import _single_thread_on_cpu
from vcmr.train.optim import build_optimizer

SR = 16000


def write_wavs(folder: Path, n: int = 4, seconds: float = 30.0) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    paths = []
    for i in range(n):
        x = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 1000, 5)) / 6
        x = x + 0.02 * rng.standard_normal(t.size)
        paths.append(folder / f"song_{i}.wav")
        sf.write(paths[-1], x.astype(np.float32), SR)
    return paths


def read_batch(paths, batch, length, rng) -> torch.Tensor:
    clips = []
    for i in range(batch):
        path = paths[i % len(paths)]
        start = int(rng.integers(0, sf.info(path).frames - length))
        clips.append(sf.read(path, start=start, frames=length, dtype="float32")[0])
    return torch.from_numpy(np.stack(clips))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config("music")
    encoder = SampleCNN(cfg)
    projector = heads.projector(cfg.output_size, cfg.output_size, cfg.projection_dim)
    loss_fn = NTXent(cfg.temperature)
    params = list(encoder.parameters()) + list(projector.parameters())
    opt = build_optimizer(params, cfg.optimizer, cfg.learning_rate, cfg.weight_decay)
    chain = AugmentChain.from_config(cfg)
    excerpt = int(cfg.excerpt_seconds * cfg.sample_rate) or 2 * cfg.audio_length
    rng = np.random.default_rng(0)

    def model_step(a, b):
        z = projector(encoder(torch.cat([a, b])))
        loss = loss_fn(z[: len(a)], z[len(a):])
        opt.zero_grad()
        loss.backward()
        opt.step()

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_wavs(Path(tmp))
        fixed = torch.randn(2, args.batch, cfg.audio_length) * 0.1
        rows = {"model only": [], "data + aug + model": [], "  of which data": [],
                "  of which augmentation": []}
        for rep in range(args.repeats + 1):  # repeat 0 is the warm-up
            t0 = time.perf_counter()
            model_step(fixed[0], fixed[1])
            t1 = time.perf_counter()
            x = read_batch(paths, args.batch, excerpt, rng)
            t2 = time.perf_counter()
            with _single_thread_on_cpu(x):
                a, b = chain(x), chain(x)
            t3 = time.perf_counter()
            model_step(a, b)
            t4 = time.perf_counter()
            if rep:
                rows["model only"].append(t1 - t0)
                rows["data + aug + model"].append(t4 - t1)
                rows["  of which data"].append(t2 - t1)
                rows["  of which augmentation"].append(t3 - t2)

    full = statistics.median(rows["data + aug + model"])
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; paper SampleCNN "
          f"(audio_length {cfg.audio_length}, {sum(p.numel() for p in encoder.parameters())} "
          f"encoder parameters), {cfg.optimizer}, {excerpt}-sample excerpts, batch "
          f"{args.batch} pairs; median of "
          f"{args.repeats} steps after 1 warm-up")
    print("| step | s per step (median) | pairs/s | share of full step |")
    print("|---|---:|---:|---:|")
    for name, times in rows.items():
        med = statistics.median(times)
        rate = f"{args.batch / med:.2f}" if not name.startswith(" ") else ""
        print(f"| {name} | {med:.3f} | {rate} | {100 * med / full:.0f} % |")


if __name__ == "__main__":
    main()
