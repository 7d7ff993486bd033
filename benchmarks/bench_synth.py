"""Speed of the synthetic data generators.

    python benchmarks/bench_synth.py                 # 20 videos of 30 s at 320x240, 1 and 2 workers
    python benchmarks/bench_synth.py --n 100 --workers 2

Reports (1) the per-stage cost of one 30 s clip (median of --repeats, after a warm-up):
music rendering, mp3 encoding, video rendering+encoding (H.264+AAC); (2) the wall time of
``make_music_video_corpus`` for --n videos with each worker count, and the projected time for
100 videos.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn, repeats: int) -> float:
    fn()   # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stages(duration: float, repeats: int, tmp: Path) -> dict:
    import soundfile as sf
    from vcmr.demo.synth.music import render_music
    from vcmr.demo.synth.video import write_music_video
    tags = ["piano", "drums", "fast", "guitar"]
    clip = render_music(tags, duration, 22050, 0)
    cuts = list(np.arange(6.0, duration, 6.0))
    return {
        "music render (22.05 kHz)": timed(lambda: render_music(tags, duration, 22050, 0), repeats),
        "mp3 write": timed(lambda: sf.write(str(tmp / "a.mp3"), clip.audio, 22050, format="MP3"), repeats),
        "video write 320x240 25 fps": timed(lambda: write_music_video(tmp / "a.mp4", clip, cuts), repeats),
    }


def _cpu() -> float:
    import resource
    return sum(getattr(resource.getrusage(who), f) for who in
               (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))


def corpus(n: int, duration: float, workers: int, tmp: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its workers). On a shared, busy machine
    the CPU time / 2 is the better estimate of the wall time on 2 free cores."""
    from vcmr.demo.synth.corpus import make_music_video_corpus
    t, c = time.perf_counter(), _cpu()
    make_music_video_corpus(tmp / f"corpus_{workers}", n, seed=0, duration=duration, workers=workers)
    return time.perf_counter() - t, _cpu() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"\nper clip of {args.duration:.0f} s (median of {args.repeats}):")
        for name, sec in stages(args.duration, args.repeats, tmp).items():
            print(f"  {name:<30} {sec:6.2f} s")
        print(f"\ncorpus of {args.n} videos x {args.duration:.0f} s, 320x240, 25 fps, H.264+AAC:")
        for w in (int(v) for v in args.workers.split(",")):
            sec, cpu = corpus(args.n, args.duration, w, tmp)
            print(f"  workers={w}: wall {sec:6.1f} s ({sec / args.n:.2f} s/video, 100 videos ~ "
                  f"{100 * sec / args.n:.0f} s); CPU {cpu:.1f} s ({cpu / args.n:.2f} s/video, "
                  f"100 videos on 2 free cores ~ {100 * cpu / args.n / 2:.0f} s)")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
