"""Benchmark of ``vcmr prepare`` on realistic video sizes (1280x720, 25 fps, H.264 + AAC).

    python benchmarks/bench_prepare.py --n-videos 2 --duration 150 --workdir /tmp/bench_prepare

Measures, in one run on the same files:
  * the frame encoder's speed per batch size, with and without channels-last;
  * bare PyAV decode of the windows (seek + decode every frame, no conversion);
  * the encoder alone on the sampled frames (5 fps x 120 s per video), at its best batch size;
    practical limit = bare decode + encoder;
  * the pipeline (`prepare_videos`) with 0 (inline), 1 and 2 decoding workers;
  * the Ray engine (`--engine ray`, a local Ray instance started and stopped by the run, as a
    user gets it): one CPU encoder actor that decodes its own videos with the machine's cores
    (the default on CPU), decode tasks feeding that actor (``--ray_decode_tasks``, the GPU
    layout), and decode tasks feeding a 1-thread actor (a core left to the tasks), plus Ray's
    start-up alone (``ray.init`` + ``ray.shutdown``); ``--no-ray`` skips them;
  * a straightforward reference: `scenedetect.detect(path, ContentDetector())` (OpenCV
    backend) on the whole file, a separate audio extraction pass, a separate frame-sampling
    pass, one encoder call per frame.
Prints a markdown table; throughput is seconds of video window per wall-clock second.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np


def write_h264_aac(path: Path, frames, audio: np.ndarray, fps: int, width: int, height: int,
                   sample_rate: int = 44100) -> Path:
    """H.264 (x264 ultrafast, crf 23) + mono AAC to ``path``, written to a .part file first:
    ``frames`` yields (height, width, 3) RGB uint8 images, ``audio`` is float32 mono."""
    import av
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "23"}
        aus = c.add_stream("aac", rate=sample_rate, layout="mono")
        for img in frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(vs.encode(None))
        for i in range(0, len(audio), 1024):
            fr = av.AudioFrame.from_ndarray(audio[None, i:i + 1024].copy(), format="fltp", layout="mono")
            fr.sample_rate = sample_rate
            c.mux(aus.encode(fr))
        c.mux(aus.encode(None))
    tmp.replace(path)
    return path


def _bench_frames(duration: float, fps: int, cuts: np.ndarray):
    """720p frames: a gradient background per scene and a square moving in a circle."""
    yy, xx = np.mgrid[0:720, 0:1280]
    scenes: dict = {}
    for i in range(int(duration * fps)):
        t = i / fps
        k = int(np.searchsorted(cuts, t, side="right"))
        if k not in scenes:
            r = np.random.default_rng(k)
            base = r.integers(0, 256, 3)
            grad = ((xx * r.uniform(-0.1, 0.1) + yy * r.uniform(-0.1, 0.1)) % 64).astype(np.int16)
            scenes = {k: (base, np.clip(base[None, None, :] + grad[..., None], 0, 255).astype(np.uint8))}
        base, bg = scenes[k]
        img = bg.copy()
        cx = int(640 + 400 * np.cos(t * 2)); cy = int(360 + 200 * np.sin(t * 2))
        img[max(0, cy - 60):cy + 60, max(0, cx - 60):cx + 60] = 255 - base
        yield img


def make_videos(workdir: Path, n: int, duration: float, fps: int = 25) -> list[Path]:
    """Synthetic 720p music videos: synth audio, a scene cut every 7-12 s, moving content."""
    from vcmr.demo.synth.music import render_music
    out = []
    for v in range(n):
        path = workdir / "videos" / f"bench{v}.mp4"
        out.append(path)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(v)
        cuts = np.cumsum(rng.uniform(7, 12, 40))
        clip = render_music(["piano", "fast"], duration=duration, sample_rate=44100, seed=v)
        write_h264_aac(path, _bench_frames(duration, fps, cuts), clip.audio.astype(np.float32),
                       fps, 1280, 720)
    return out


def bare_decode(path: Path, start: float, window: float) -> int:
    import av
    n = 0
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        c.seek(int(max(0, start - 1) * 1e6))
        for f in c.decode(vs):
            if f.time >= start + window:
                break
            n += 1
    return n


def encoder_table(enc, n=32) -> dict:
    import torch
    from vcmr.prepare.frame_encoders import measure_best_batch
    out = {}
    for cl in (False, True):
        enc.channels_last = cl
        enc.model = enc.model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        _, table = measure_best_batch(enc, candidates=(1, 4, 8, 16, 32), n_frames=n, repeats=2)
        out["channels_last" if cl else "contiguous"] = {k: round(v, 1) for k, v in table.items()}
    return out


def reference(paths, enc, cfg) -> float:
    """The straightforward pipeline (see module docstring); returns wall seconds."""
    import av
    import scenedetect
    from PIL import Image
    from scenedetect.detectors import ContentDetector
    from vcmr.audio.io import read_audio
    t0 = time.perf_counter()
    for p in paths:
        scenes = scenedetect.detect(str(p), ContentDetector(threshold=cfg.scene_threshold))
        x, sr = read_audio(p, sample_rate=cfg.sample_rate)  # pass 2: whole audio
        dur = len(x) / sr
        start = (dur - cfg.window_seconds) / 2
        times = start + (np.arange(int(cfg.window_seconds * cfg.frames_per_second)) + 0.5) / cfg.frames_per_second
        feats, j = [], 0
        with av.open(str(p)) as c:  # pass 3: frames, from the start of the file
            for f in c.decode(c.streams.video[0]):
                while j < len(times) and f.time + 1 / 25 > times[j]:
                    img = f.to_image()
                    w, h = img.size
                    s = enc.crop_size / min(w, h)
                    img = img.resize((round(w * s), round(h * s)), Image.BICUBIC)
                    a = np.asarray(img)
                    y0, x0 = (a.shape[0] - enc.crop_size) // 2, (a.shape[1] - enc.crop_size) // 2
                    a = a[y0:y0 + enc.crop_size, x0:x0 + enc.crop_size]
                    feats.append(enc.encode_batch(a[None]))  # one call per frame
                    j += 1
                if j >= len(times):
                    break
        del scenes
    return time.perf_counter() - t0


RAY_VARIANTS = (("default", "1 CPU encoder actor that decodes its own videos, the machine's cores (default)"),
                ("tasks", "decode tasks feeding 1 CPU encoder actor of the machine's cores (--ray_decode_tasks)"),
                ("tasks_t1", "decode tasks feeding 1 CPU encoder actor of 1 thread "
                             "(--ray_decode_tasks --ray_encoder_threads 1)"))
RAY_OPTIONS = {"default": {}, "tasks": {"ray_decode_tasks": True},
               "tasks_t1": {"ray_decode_tasks": True, "ray_encoder_threads": 1}}


def ray_startup_s() -> float:
    """Seconds for ``ray.init`` + ``ray.shutdown`` of a local instance (the fixed cost)."""
    import logging
    import os
    import ray
    t = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    ray.shutdown()
    return time.perf_counter() - t


def ray_rows(res: dict, paths, work: Path, frame_encoder: str, batch: int) -> None:
    """Time the Ray engine on the same videos (see the module docstring)."""
    import torch
    from vcmr.config import load_config
    from vcmr.prepare.pipeline import prepare_videos
    res["ray_start_s"] = ray_startup_s()
    c = load_config("prepare", None, ["--frame_encoder", frame_encoder, "--encoder_batch_size", str(batch)])
    variants = {key: dataclasses.replace(c, engine="ray", **RAY_OPTIONS[key]) for key, _ in RAY_VARIANTS}
    for key, _ in RAY_VARIANTS:
        out = work / f"out_ray_{key}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        s = prepare_videos(paths, out, variants[key], progress=False)
        res[f"ray_{key}_s"] = time.perf_counter() - t
        res[f"ray_{key}_counts"] = dict(s["counts"])
        print(json.dumps(res), flush=True)
        torch.set_num_threads(res["torch_threads"])


def engines_only(paths, work: Path, frame_encoder: str, repeats: int, window_total: float,
                 ray_variants: tuple = tuple(k for k, _ in RAY_VARIANTS)) -> None:
    """Local (workers auto) and Ray engine runs alternated ``repeats`` times (each Ray run
    starts its own local instance, as a user's does); medians, so both see the same load."""
    import torch
    from vcmr.config import load_config
    from vcmr.prepare.pipeline import prepare_videos
    import ray  # noqa: F401  (imported once here, as a local run of the CLI would not)
    threads = torch.get_num_threads()
    cfg = load_config("prepare", None, ["--frame_encoder", frame_encoder, "--encoder_batch_size", "4"])
    variants = {"local": cfg}
    variants.update({f"ray_{key}": dataclasses.replace(cfg, engine="ray", **RAY_OPTIONS[key])
                     for key in ray_variants})
    times: dict = {k: [] for k in variants}
    for rep in range(repeats):
        for key, variant in variants.items():
            out = work / f"out_{key}"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            prepare_videos(paths, out, variant, progress=False)
            times[key].append(time.perf_counter() - t)
            torch.set_num_threads(threads)
            print(key, rep, round(time.perf_counter() - t, 1), flush=True)
    med = {k: float(np.median(v)) for k, v in times.items()}
    start = ray_startup_s()
    print(json.dumps({"times": times, "median": med, "ray_start_s": start}))
    print(f"Ray start-up alone (init + shutdown): {start:.1f} s")
    print("\n| engine (median of %d, batch 4) | wall s | video s / wall s | vs local |\n|---|---:|---:|---:|" % repeats)
    for key, _ in variants.items():
        print(f"| {key} | {med[key]:.1f} | {window_total / med[key]:.2f} | {med[key] / med['local']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-videos", type=int, default=2)
    ap.add_argument("--duration", type=float, default=150.0)
    ap.add_argument("--workdir", default="/tmp/bench_prepare")
    ap.add_argument("--frame-encoder", default="efficientnet-lite0")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray engine rows")
    ap.add_argument("--engines-only", type=int, default=0, metavar="REPEATS",
                    help="only the local engine (default settings) against the Ray engine, "
                         "interleaved REPEATS times; prints the medians")
    ap.add_argument("--ray-variants", default=",".join(k for k, _ in RAY_VARIANTS),
                    help="with --engines-only: which Ray variants (comma-separated: "
                         + ", ".join(k for k, _ in RAY_VARIANTS) + ")")
    args = ap.parse_args()
    import torch
    from vcmr.config import load_config
    from vcmr.prepare.decode import probe_video, window_start
    from vcmr.prepare.frame_encoders import build_frame_encoder
    from vcmr.prepare.pipeline import prepare_videos
    work = Path(args.workdir)
    t = time.perf_counter()
    paths = make_videos(work, args.n_videos, args.duration)
    print(f"videos ready ({time.perf_counter() - t:.0f} s)", flush=True)
    cfg = load_config("prepare", None, ["--frame_encoder", args.frame_encoder])
    res: dict = {"n_videos": len(paths), "duration_s": args.duration, "torch_threads": torch.get_num_threads()}
    window_total = cfg.window_seconds * len(paths)
    if args.engines_only:
        return engines_only(paths, work, args.frame_encoder, args.engines_only, window_total,
                            tuple(v for v in args.ray_variants.split(",") if v))

    enc = build_frame_encoder(args.frame_encoder, None, "cpu", batch_size=1)
    res["encoder_frames_per_s"] = encoder_table(enc)
    print(json.dumps(res["encoder_frames_per_s"]), flush=True)
    enc = build_frame_encoder(args.frame_encoder, None, "cpu", batch_size=0)
    res["best_batch"] = enc.batch_size

    t = time.perf_counter()
    for p in paths:
        info = probe_video(p)
        bare_decode(p, window_start(info.duration_s, cfg.window_seconds, info.fps), cfg.window_seconds)
    res["bare_decode_s"] = time.perf_counter() - t
    frames = np.random.default_rng(0).integers(0, 255, (int(cfg.window_seconds * cfg.frames_per_second),
                                                          enc.crop_size, enc.crop_size, 3), np.uint8)
    t = time.perf_counter()
    for _ in paths:
        enc.encode(frames)
    res["encoder_s"] = time.perf_counter() - t
    res["limit_s"] = res["bare_decode_s"] + res["encoder_s"]
    print(json.dumps(res), flush=True)

    from vcmr.prepare.local_engine import resolve_workers
    res["auto_workers"] = resolve_workers(-1, enc.device)
    for workers in (0, 1, 2):
        out = work / f"out_w{workers}"
        shutil.rmtree(out, ignore_errors=True)
        c = load_config("prepare", None, ["--frame_encoder", args.frame_encoder, "--workers", str(workers),
                                          "--encoder_batch_size", str(enc.batch_size)])
        t = time.perf_counter()
        s = prepare_videos(paths, out, c, progress=False)
        res[f"pipeline_w{workers}_s"] = time.perf_counter() - t
        res[f"pipeline_w{workers}_counts"] = dict(s["counts"])
        print(json.dumps(res), flush=True)
        torch.set_num_threads(res["torch_threads"])
    if not args.no_ray:
        ray_rows(res, paths, work, args.frame_encoder, enc.batch_size)
    if not args.skip_reference:
        res["reference_s"] = reference(paths, build_frame_encoder(args.frame_encoder, None, "cpu", 1), cfg)
    (work / "results.json").write_text(json.dumps(res, indent=1))

    best = res[f"pipeline_w{res['auto_workers']}_s"]  # the default configuration (workers: auto)
    rows = [("bare PyAV decode of the windows", res["bare_decode_s"]),
            (f"encoder alone on sampled frames (batch {enc.batch_size})", res["encoder_s"]),
            ("practical limit (decode + encoder)", res["limit_s"])]
    for w in (0, 1, 2):
        auto = " (default: workers auto)" if w == res["auto_workers"] else ""
        rows.append((f"pipeline, {w} decoding workers{auto}", res[f"pipeline_w{w}_s"]))
    for key, name in RAY_VARIANTS:
        if f"ray_{key}_s" in res:
            rows.append((f"Ray engine, {name} (Ray start included)", res[f"ray_{key}_s"]))
    if "ray_start_s" in res:
        rows.append(("Ray start-up alone (ray.init + shutdown, local instance)", res["ray_start_s"]))
    if "reference_s" in res:
        rows.append(("reference (scenedetect.detect + audio pass + frame pass, 1 frame/call)", res["reference_s"]))
    print(f"\n{len(paths)} videos x {args.duration:.0f} s, 1280x720 25 fps H.264; window {cfg.window_seconds:.0f} s;"
          f" encoder {args.frame_encoder}\n")
    print("| what | wall s | video s / wall s |\n|---|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s:.1f} | {window_total / s:.2f} |")
    print(f"\ndefault pipeline / practical limit = {best / res['limit_s']:.2f} (target <= 1.3)")
    for key, name in RAY_VARIANTS:
        if f"ray_{key}_s" in res:
            print(f"Ray engine ({name}) overhead vs the default local pipeline = "
                  f"{100 * (res[f'ray_{key}_s'] / best - 1):.0f} % (target <= 15 %)")
    if "reference_s" in res:
        print(f"reference / default pipeline = {res['reference_s'] / best:.2f} (target >= 2)")


if __name__ == "__main__":
    main()
