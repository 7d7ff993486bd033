"""Augmentation throughput (clips/s) at audio_length 98415, 16 kHz, measured side by side.

    python benchmarks/bench_augment.py                  # batch 64, 3 repeats
    python benchmarks/bench_augment.py --batch 32 --repeats 5 --chunks 1,2,4,8,16

Variants: vcmr's chain on the whole batch at once; in CPU chunks of N clips; one clip per
call (how CLMR applies its transforms in DataLoader workers); audiomentations 0.43 per clip
with the closest effects (delay and reverb as ApplyImpulseResponse with two-tap and decaying
noise impulse responses written to a temporary folder, since it has no delay or synthetic
reverb of its own). All use CLMR's probabilities, so each run applies a random mix of
effects; every variant sees the same clips and is timed in the same process, interleaved.
Reports the median of the repeats after one warm-up.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vcmr.audio import augment as A
from vcmr.audio.augment import AugmentChain
from vcmr.config import load_config

SR = 16000


def make_clips(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """Harmonic tones with a noise floor: music-like enough for timing."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / SR
    clips = np.zeros((batch, length), np.float32)
    for i in range(batch):
        for f0 in rng.uniform(80, 800, size=4):
            for h in range(1, 5):
                clips[i] += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / (4 * h)
        clips[i] += 0.01 * rng.standard_normal(length)
    return torch.from_numpy(clips)


def audiomentations_chain(cfg, ir_dir: Path):
    import audiomentations as am
    delay_dir, reverb_dir = ir_dir / "delay", ir_dir / "reverb"
    delay_dir.mkdir(), reverb_dir.mkdir()
    for ms in A.DELAY_MS:
        ir = np.zeros(ms * SR // 1000 + 1, np.float32)
        ir[0], ir[-1] = 1.0, A.DELAY_VOLUME
        sf.write(delay_dir / f"delay_{ms}.wav", ir, SR, subtype="FLOAT")
    gen = torch.Generator().manual_seed(0)
    for i, rt60 in enumerate(np.linspace(*A.REVERB_RT60_S, 8)):
        ir = A.synthetic_impulse_response(torch.tensor([rt60]), torch.tensor([-6.0]), SR,
                                          int(A.REVERB_RT60_S[1] * SR), generator=gen)
        sf.write(reverb_dir / f"reverb_{i}.wav", ir[0].numpy(), SR, subtype="FLOAT")
    return am.Compose([
        am.PolarityInversion(p=cfg.transforms_polarity),
        am.AddGaussianSNR(*A.NOISE_SNR_DB, p=cfg.transforms_noise),
        am.Gain(*A.GAIN_DB, p=cfg.transforms_gain),
        am.OneOf([am.HighPassFilter(*A.HIGHPASS_HZ, 12, 12), am.LowPassFilter(*A.LOWPASS_HZ, 12, 12)],
                 p=cfg.transforms_filters),
        am.ApplyImpulseResponse(str(delay_dir), p=cfg.transforms_delay),
        am.PitchShift(*A.PITCH_SEMITONES, p=cfg.transforms_pitch),  # signalsmith_stretch
        am.ApplyImpulseResponse(str(reverb_dir), p=cfg.transforms_reverb),
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", default="1,2,4,8,16")
    ap.add_argument("--slack", type=int, default=SR, help="extra source samples to crop from")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config("mus")
    length = cfg.audio_length
    x = make_clips(args.batch, length + args.slack)
    x_np = x.numpy()
    rng = np.random.default_rng(0)

    variants = {"vcmr chain, whole batch": (AugmentChain.from_config(cfg, chunk_size=None), None)}
    for c in [int(c) for c in args.chunks.split(",")]:
        variants[f"vcmr chain, chunks of {c}"] = (AugmentChain.from_config(cfg, chunk_size=c), None)
    one = AugmentChain.from_config(cfg, chunk_size=None)
    variants["vcmr chain, one clip per call"] = (one, "per_clip")

    with tempfile.TemporaryDirectory() as tmp:
        am_chain = audiomentations_chain(cfg, Path(tmp))

        def run(name):
            chain, mode = variants.get(name, (None, None))
            if name == "audiomentations, one clip per call":
                for clip in x_np:
                    off = rng.integers(0, args.slack + 1)
                    am_chain(clip[off: off + length], sample_rate=SR)
            elif mode == "per_clip":
                for i in range(args.batch):
                    chain(x[i: i + 1])
            else:
                chain(x)

        names = list(variants) + ["audiomentations, one clip per call"]
        times = {n: [] for n in names}
        for rep in range(args.repeats + 1):  # repeat 0 is the warm-up
            for n in names:
                t0 = time.perf_counter()
                run(n)
                if rep:
                    times[n].append(time.perf_counter() - t0)

    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; batch {args.batch} clips of {length} samples "
          f"(cropped from {length + args.slack}); median of {args.repeats} after 1 warm-up")
    print("| variant | s per batch (median) | clips/s |")
    print("|---|---:|---:|")
    for n in names:
        med = statistics.median(times[n])
        print(f"| {n} | {med:.2f} | {args.batch / med:.1f} |")


if __name__ == "__main__":
    main()
