"""Peak memory and wall time of embedding long audio: streaming against the whole-file way.

    python benchmarks/long_audio.py --minutes 1,10,60 --models small,paper --hear-minutes 20

For each duration a 44.1 kHz stereo 16-bit WAV of synthetic music is written (30 s tiled), then
every case runs in a FRESH subprocess so that its peak RSS (``ru_maxrss``) is its own:

* ``stream``: ``vcmr.embed_file`` as it is now (``AudioStream``: blocks of 65536 frames decoded,
  mixed and resampled with soxr's streaming resampler; windows cut a batch at a time);
* ``whole``: the way before, measured side by side: ``read_audio`` decodes the whole file, one
  soxr call resamples it, then the windows are cut in batches from that array
  (``embed_blocks`` given the whole signal as one block).

``hear``: ``vcmr.hear.get_scene_embeddings`` and ``get_timestamp_embeddings`` (50 ms hop) of one
sound of ``--hear-minutes`` at the model's HEAR rate (the HEAR rule: 20 minutes in < 16 GB);
``--hear-scene-models``: the scene embeddings only.

Models: ``small`` is the tiny SampleCNN of ``config/tiny.yaml`` (2187 samples, 64-D) and
``paper`` the paper's (98415 samples, 512-D), both with seeded random weights (time and memory
do not depend on the values) at 16 kHz. Cases of one duration run one after the other, stream
and whole alternating, so both meet the same load. Reported: peak RSS of the process, RSS after
imports and model load (the floor), and the embedding call's wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR_FILE = 44100
SMALL = {"audio_length": 2187, "n_blocks": 6, "n_channels": [16, 16, 32, 32, 32, 64],
         "first_block_params": {"out_channels": 16, "conv_size": 3}, "output_size": 64}


def make_model(name: str):
    import torch
    from vcmr.config import EncoderConfig, config_to_dict
    from vcmr.inference import EmbeddingModel
    from vcmr.models.stages import build
    torch.manual_seed(0)
    cfg = config_to_dict(EncoderConfig())
    if name == "small":
        cfg.update(SMALL)
    state = build("tagging", cfg, ["tag"]).state_dict()
    return EmbeddingModel("tagging", cfg, state, ["tag"], f"{name} encoder")


def write_song(path: Path, minutes: float) -> None:
    """``minutes`` of 44.1 kHz stereo 16-bit WAV, written 30 s at a time."""
    import soundfile as sf
    from vcmr.audio.io import resample
    from vcmr.demo.synth.music import render_music
    piece = resample(render_music(["piano", "drums"], 30.0, 16000, 0).audio, 16000, SR_FILE)
    stereo = np.stack([piece, 0.8 * np.roll(piece, 441)], axis=1) * 0.5
    n = int(minutes * 60 * SR_FILE)
    with sf.SoundFile(str(path), "w", SR_FILE, 2, subtype="PCM_16") as f:
        for i in range(0, n, len(stereo)):
            f.write(stereo[: min(len(stereo), n - i)])


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(mode: str, model_name: str, arg: str) -> dict:
    """One case, in this (fresh) process."""
    import torch
    from vcmr import hear
    from vcmr.audio.io import read_audio, resample
    from vcmr.inference import embed_file
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    model = make_model(model_name)
    model.embed_segments(np.zeros((1, model.segment_samples), np.float32))  # warm-up
    floor = rss_mb()
    t0 = time.perf_counter()
    if mode == "stream":
        rows = len(embed_file(arg, model).embeddings)
    elif mode == "whole":
        x, sr = read_audio(arg)
        rows = len(model.embed_blocks([resample(x, sr, model.sample_rate)]).embeddings)
    else:  # hear (scene + timestamps) or hearscene (scene only): arg is minutes
        hm = hear.HearModel(model)
        rng = np.random.default_rng(0)
        n = int(float(arg) * 60 * hm.sample_rate)
        audio = torch.from_numpy(rng.standard_normal((1, n), dtype=np.float32) * np.float32(0.1))
        rows = int(hear.get_scene_embeddings(audio, hm).shape[0])
        if mode == "hear":
            rows += int(hear.get_timestamp_embeddings(audio, hm)[0].shape[1])
    return {"wall_s": time.perf_counter() - t0, "peak_mb": rss_mb(), "floor_mb": floor, "rows": rows}


def run_case(mode: str, model_name: str, arg: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", mode, model_name, arg],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"case {mode} {model_name} {arg} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def row(model_name: str, audio: str, mode: str, runs: list[dict], ratio: str = "") -> str:
    wall = sorted(r["wall_s"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    floor = max(r["floor_mb"] for r in runs)
    walls = " / ".join(f"{w:.1f}" for w in wall)
    return f"| {model_name} | {audio} | {mode} | {walls} | {peak:.0f} | {floor:.0f} | {peak - floor:.0f} | {ratio} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", default="1,10,60")
    p.add_argument("--models", default="small,paper")
    p.add_argument("--repeats", type=int, default=2,
                   help="runs per case, in the order stream, whole, whole, stream, ... (drift cancels)")
    p.add_argument("--hear-minutes", type=float, default=20.0)
    p.add_argument("--hear-models", default="small", help="HEAR scene + timestamp embeddings")
    p.add_argument("--hear-scene-models", default="", help="HEAR scene embeddings only (paper: "
                   "timestamps at 50 ms are 24,001 full windows for 20 min, hours on a laptop CPU)")
    p.add_argument("--child", nargs=3, metavar=("MODE", "MODEL", "ARG"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"torch threads {os.environ.get('BENCH_THREADS', '1')}, repeats {args.repeats}")
    print("| model | audio | way | wall s (each run) | peak RSS MB | floor MB | peak − floor MB | whole / stream (peak − floor) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in [float(m) for m in args.minutes.split(",") if m]:
            path = Path(tmp) / f"song_{minutes:g}min.wav"
            write_song(path, minutes)
            for model_name in args.models.split(","):
                res = {"stream": [], "whole": []}
                for i in range(args.repeats):
                    for mode in (("stream", "whole") if i % 2 == 0 else ("whole", "stream")):
                        res[mode].append(run_case(mode, model_name, str(path)))
                grow = {m: max(r["peak_mb"] for r in v) - max(r["floor_mb"] for r in v) for m, v in res.items()}
                audio = f"{minutes:g} min"
                print(row(model_name, audio, "stream", res["stream"]), flush=True)
                print(row(model_name, audio, "whole", res["whole"], f"{grow['whole'] / max(1.0, grow['stream']):.1f}×"),
                      flush=True)
            path.unlink()
    for model_name in filter(None, args.hear_models.split(",")):
        r = run_case("hear", model_name, str(args.hear_minutes))
        print(row(model_name, f"{args.hear_minutes:g} min, HEAR scene + timestamps (50 ms)", "stream", [r]),
              flush=True)
    for model_name in filter(None, args.hear_scene_models.split(",")):
        r = run_case("hearscene", model_name, str(args.hear_minutes))
        print(row(model_name, f"{args.hear_minutes:g} min, HEAR scene", "stream", [r]), flush=True)


if __name__ == "__main__":
    main()
