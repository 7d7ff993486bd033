"""Augmentation throughput (clips/s) at audio_length 98415, 16 kHz, all variants in one run.

    python benchmarks/bench_augment.py                      # batch 32, 3 repeats, 1 thread
    python benchmarks/bench_augment.py --batch 64 --repeats 5 --chunks 4,16

Variants, all with CLMR's probabilities (so each call applies a random mix of effects), timed
interleaved in one process on the same clips, median of the repeats after one warm-up:

* vcmr's chain (``AugmentChain``: windowed-sinc FIR, pitch by cents, sox reverb network) on
  the whole batch, in CPU chunks of N clips, and one clip per call (as CLMR's DataLoader
  workers apply their transforms);
* audiomentations (the ``bench`` extra) one clip per call with the closest effects:
  PolarityInversion; AddGaussianSNR 40-80 dB (noise std 0.0001-0.01 x the signal's);
  Gain -20..-1 dB; OneOf(HighPassFilter 200-1200 Hz, LowPassFilter 2.2-4 kHz) as 48 dB/octave
  Butterworth filters (about as steep as the FIR one octave out); PitchShift -7..+7
  semitones (signalsmith_stretch); ApplyImpulseResponse for the delay (two-tap IR files
  1/2 and 1/4, i.e. (x + 0.5 x[n - d]) / 2) and for the reverb (the first audio_length
  samples of 16 sox-reverb impulse responses computed by ``sox_reverb_response`` and written
  to a temporary folder, since audiomentations has neither effect).
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vcmr.audio.augment import AugmentChain, sox_reverb_response
from vcmr.audio.augment.common import fast_len
from vcmr.audio.augment.delay import DELAY_MS, DELAY_VOLUME
from vcmr.audio.augment.filters import HIGHPASS_HZ, LOWPASS_HZ
from vcmr.audio.augment.gain import GAIN_DB
from vcmr.audio.augment.noise import NOISE_STD_RATIO
from vcmr.audio.augment.pitch import PITCH_CENTS
from vcmr.audio.augment.reverb import SOX_ALIAS_FLOOR
from vcmr.config import load_config

SR = 16000
PITCH_SEMITONES = tuple(c / 100 for c in PITCH_CENTS)  # audiomentations shifts by semitones


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
    return torch.from_numpy(clips * 0.2)


def sox_reverb_irs(n: int, length: int, seed: int = 0) -> np.ndarray:
    """(n, length) impulse responses of sox's reverb (dry + wet) at random settings."""
    rng = np.random.default_rng(seed)
    rev, damp, room = (torch.tensor(rng.integers(0, 100, n), dtype=torch.float64) for _ in range(3))
    n_fft = fast_len(2 * length)
    radius = SOX_ALIAS_FLOOR ** (1.0 / n_fft)
    wet = sox_reverb_response(rev, damp, room, SR, n_fft, radius=radius,
                                dtype=torch.complex128).mean(0)
    ir = torch.fft.irfft(wet, n=n_fft)[:, :length] * radius ** -torch.arange(length)
    ir[:, 0] += 1.0  # the dry path
    return ir.float().numpy()


def audiomentations_chain(cfg, ir_dir: Path, length: int):
    import audiomentations as am  # the optional ``bench`` extra: imported only here
    delay_dir, reverb_dir = ir_dir / "delay", ir_dir / "reverb"
    delay_dir.mkdir(), reverb_dir.mkdir()
    for ms in DELAY_MS:
        ir = np.zeros(ms * SR // 1000 + 1, np.float32)
        ir[0], ir[-1] = 0.5, DELAY_VOLUME / 2
        sf.write(delay_dir / f"delay_{ms}.wav", ir, SR, subtype="FLOAT")
    for i, ir in enumerate(sox_reverb_irs(16, length)):
        sf.write(reverb_dir / f"reverb_{i}.wav", ir, SR, subtype="FLOAT")
    snr = [-20 * math.log10(r) for r in NOISE_STD_RATIO]  # 80 and 40 dB
    return am.Compose([
        am.PolarityInversion(p=cfg.transforms_polarity),
        am.AddGaussianSNR(min(snr), max(snr), p=cfg.transforms_noise),
        am.Gain(*GAIN_DB, p=cfg.transforms_gain),
        am.OneOf([am.HighPassFilter(*HIGHPASS_HZ, 48, 48), am.LowPassFilter(*LOWPASS_HZ, 48, 48)],
                 p=cfg.transforms_filters),
        am.ApplyImpulseResponse(str(delay_dir), p=cfg.transforms_delay),
        am.PitchShift(*PITCH_SEMITONES, p=cfg.transforms_pitch),  # signalsmith_stretch
        am.ApplyImpulseResponse(str(reverb_dir), p=cfg.transforms_reverb),
    ])


def time_variants(run, names, repeats):
    times = {n: [] for n in names}
    for rep in range(repeats + 1):  # repeat 0 is the warm-up
        for n in names:
            t0 = time.perf_counter()
            run(n)
            if rep:
                times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", default="16")
    ap.add_argument("--slack", type=int, default=SR, help="extra source samples to crop from")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config("music")
    length = cfg.audio_length
    x = make_clips(args.batch, length + args.slack)
    x_np = x.numpy()
    rng = np.random.default_rng(0)

    variants = {"chain, whole batch": (AugmentChain.from_config(cfg, chunk_size=None), False)}
    for c in [int(c) for c in args.chunks.split(",")]:
        variants[f"chain, chunks of {c}"] = (AugmentChain.from_config(cfg, chunk_size=c), False)
    variants["chain, one clip per call"] = (AugmentChain.from_config(cfg), True)
    am_name = "audiomentations, one clip per call"

    with tempfile.TemporaryDirectory() as tmp:
        am_chain = audiomentations_chain(cfg, Path(tmp), length)

        def run(name):
            if name == am_name:
                for clip in x_np:
                    off = rng.integers(0, args.slack + 1)
                    am_chain(clip[off: off + length], sample_rate=SR)
                return
            chain, per_clip = variants[name]
            if per_clip:
                for i in range(args.batch):
                    chain(x[i: i + 1])
            else:
                chain(x)

        med = time_variants(run, list(variants) + [am_name], args.repeats)

    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; batch {args.batch} clips of {length} samples "
          f"(cropped from {length + args.slack}); median of {args.repeats} after 1 warm-up")
    print("| variant | s per batch (median) | ms per clip | audiomentations time / variant time |")
    print("|---|---:|---:|---:|")
    for n, t in med.items():
        print(f"| {n} | {t:.2f} | {1000 * t / args.batch:.1f} | {med[am_name] / t:.2f} |")


if __name__ == "__main__":
    main()
