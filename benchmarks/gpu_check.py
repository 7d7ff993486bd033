"""GPU check: the GPU paths of vcmr measured in one command (about 5-8 minutes on one GPU).

    python benchmarks/gpu_check.py --out gpu_check            # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/gc  # the same code paths, tiny, on CPU

Needs only the project's install (``pip install -e ".[all]"``) and a CUDA build of torch; no
network (every model has random weights, every input is generated). Writes
``OUT/gpu_check.json`` and ``OUT/gpu_check.md`` and prints the Markdown.

Measured (median of ``--repeats`` after a warm-up, CUDA synchronised around each timing):

1. Stage 1, paper SampleCNN at batch 64 (per process), 15 s excerpts:
   * model only: forward/backward/AdamW on two pre-made views;
   * augmentation on the GPU (what training does): excerpts on the device -> two views by
     the batched chain (float32, autocast off) -> model step;
   * augmentation in CPU data-loader workers (the alternative): each worker reads and
     augments its items, the step only copies and trains;
   each in fp32, 16-mixed and bf16-mixed (bf16 when the GPU supports it);
   * the real input pipeline (AudioFolder with data-loader workers reading WAV excerpts,
     chain on the GPU): share of the step spent in the model vs waiting for data.
2. Stage 2 step at batch 128 (audio SampleCNN + LSTM video branch on 512-D CLIP features).
3. ``vcmr prepare`` on synthetic 1280x720 H.264 videos with a CLIP ViT-B/32-shaped encoder
   (random weights from its transformers config) on the GPU, with 0/2/4/8 decoding workers,
   against the bare-decode limit (PyAV decoding the same windows, no conversion); and the
   Ray engine on the same videos (a local Ray instance of all CPUs and GPUs: one GPU encoder
   actor per GPU fed by decode tasks; CPU actors in the smoke run), start-up included, with
   its outputs compared to the local engine's (same rows, same WAVs).
4. Embedding throughput of the paper encoder at batch 1/8/32/128.

``--cpu-smoke`` runs every section on CPU with tiny sizes (tiny SampleCNN, 320x180 videos,
a 2-layer CLIP) to prove the script works; its numbers say nothing about a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench_prepare import bare_decode, write_h264_aac  # this folder: the same video helpers
from vcmr.audio.augment import AugmentChain
from vcmr.config import load_config
from vcmr.data.audio_folder import AudioFolder, collate_indexed
from vcmr.data.sampling import epoch_loader_kwargs
from vcmr.losses import NTXent
from vcmr.models import SampleCNN, projector
from vcmr.train.optim import build_optimizer

TINY = ["--n_blocks", "6", "--n_channels", "16,16,32,32,32,64", "--audio_length", "2187",
        "--first_block_params.conv_size", "3", "--first_block_params.out_channels", "16",
        "--output_size", "64"]
FULL = dict(batch=64, excerpt_s=15.0, steps=12, vid_batch=128, embed_batches=[1, 8, 32, 128],
            loader_workers=[4, 8], n_videos=8, video_s=40.0, window_s=30, segments=2, segment_s=15.0,
            width=1280, height=720, prepare_workers=[0, 2, 4, 8], n_files=64)
SMOKE = dict(batch=4, excerpt_s=1.0, steps=2, vid_batch=8, embed_batches=[1, 8],
             loader_workers=[2], n_videos=2, video_s=6.0, window_s=4, segments=2, segment_s=2.0,
             width=320, height=180, prepare_workers=[0, 2], n_files=8)


# ------------------------------------------------------------------------------ helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def precisions(device: torch.device) -> list[str]:
    if device.type == "cuda":
        out = ["32-true", "16-mixed"]
        return out + (["bf16-mixed"] if torch.cuda.is_bf16_supported() else [])
    return ["32-true"]  # smoke run: CPU autocast is slow and tested in tests/train/test_workers.py


def autocast(device: torch.device, precision: str):
    if precision == "32-true":
        return nullcontext()
    dtype = torch.float16 if precision == "16-mixed" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Step:
    """One stage-1 optimisation step (encoder + projector + NT-Xent, AdamW as configured)."""

    def __init__(self, cfg, device: torch.device, precision: str):
        torch.manual_seed(0)
        self.encoder = SampleCNN(cfg).to(device)
        self.proj = projector(cfg.output_size, cfg.output_size, cfg.projection_dim).to(device)
        params = list(self.encoder.parameters()) + list(self.proj.parameters())
        self.opt = build_optimizer(params, cfg.optimizer, cfg.learning_rate, cfg.weight_decay)
        self.loss = NTXent(cfg.temperature)
        self.device, self.precision = device, precision
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        with autocast(self.device, self.precision):
            loss = self.loss(self.proj(self.encoder(a)), self.proj(self.encoder(b)))
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()


def views_on(chain: AugmentChain, x: torch.Tensor, gen: torch.Generator):
    with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
        return chain(x, generator=gen), chain(x, generator=gen)


def write_audio(folder: Path, n: int, seconds: float, sr: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(str(folder / f"a{i:03d}.wav"), x.astype(np.float32), sr)


class AugmentedItems(torch.utils.data.Dataset):
    """Augmentation in the data-loader workers: an item is its two views (CPU, one thread)."""

    def __init__(self, folder: AudioFolder, chain: AugmentChain):
        self.folder, self.chain = folder, chain

    def __len__(self):
        return len(self.folder)

    def __getitem__(self, idx):
        torch.set_num_threads(1)
        x = self.folder[idx].unsqueeze(0)
        gen = torch.Generator().manual_seed(idx)
        a, b = views_on(self.chain, x, gen)
        return a[0], b[0]


def loader_steps(loader, step, device, n_steps: int) -> dict:
    """Run ``n_steps`` (after 2 warm-up steps); time spent waiting for data vs in the step."""
    it = iter(loader)
    wait = work = 0.0
    for i in range(n_steps + 2):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        step(batch)
        sync(device)
        t2 = time.perf_counter()
        if i >= 2:
            wait, work = wait + (t1 - t0), work + (t2 - t1)
    total = wait + work
    return {"ms_per_step": 1000 * total / n_steps, "model_share": work / total, "data_wait_share": wait / total}


# ------------------------------------------------------------------------------ sections
def stage1(args, sizes, device, cfg, work: Path) -> dict:
    sr = cfg.sample_rate
    excerpt = max(cfg.audio_length, int(sizes["excerpt_s"] * sr))
    chain = AugmentChain.from_config(cfg, chunk_size=None if device.type == "cuda" else 8)
    audio_dir = work / "audio"
    write_audio(audio_dir, sizes["n_files"], sizes["excerpt_s"] * 2, sr)
    folder = AudioFolder(audio_dir, "all", sr, excerpt, seed=0)
    B = sizes["batch"]
    raw = torch.randn(B, excerpt, device=device) * 0.1
    gen = torch.Generator(device=device).manual_seed(0)
    out: dict = {"batch": B, "excerpt_samples": excerpt, "audio_length": cfg.audio_length}
    a, b = views_on(chain, raw, gen)
    out["augment_ms"] = 1000 * median_time(lambda: views_on(chain, raw, gen), device, args.repeats)
    for prec in precisions(device):
        step = Step(cfg, device, prec)
        row = {"model_only_ms": 1000 * median_time(lambda: step(a, b), device, args.repeats)}
        row["gpu_augment_ms"] = 1000 * median_time(lambda: step(*views_on(chain, raw, gen)), device, args.repeats)
        for w in sizes["loader_workers"]:
            loader = torch.utils.data.DataLoader(AugmentedItems(folder, chain), batch_size=B, shuffle=True,
                                                 num_workers=w, persistent_workers=True, drop_last=False,
                                                 pin_memory=device.type == "cuda")
            cyc = _cycle(loader)
            row[f"cpu_workers{w}_augment"] = loader_steps(
                cyc, lambda ab: step(ab[0].to(device, non_blocking=True), ab[1].to(device, non_blocking=True)),
                device, sizes["steps"])
        out[prec] = row
        print(json.dumps({"stage1": {prec: row}}), flush=True)
    # The real input pipeline: workers read WAV excerpts, the chain runs on the device.
    step = Step(cfg, device, "16-mixed" if device.type == "cuda" else "32-true")  # the GPU default
    w = sizes["loader_workers"][0]
    loader = torch.utils.data.DataLoader(**epoch_loader_kwargs(folder, True, 0, with_index=True), batch_size=B,
                                         num_workers=w, persistent_workers=True, collate_fn=collate_indexed,
                                         pin_memory=device.type == "cuda")
    out["pipeline"] = {"workers": w, "precision": step.precision, **loader_steps(
        _cycle(loader), lambda xb: step(*views_on(chain, xb[0].to(device, non_blocking=True), gen)),
        device, sizes["steps"])}
    return out


def _cycle(loader):
    while True:
        yield from loader


def stage2(args, sizes, device, cfg_vid) -> dict:
    from vcmr.train.video import VideoModule
    module = VideoModule(cfg_vid).to(device)
    opt = build_optimizer([p for p in module.parameters() if p.requires_grad], cfg_vid.optimizer,
                          cfg_vid.learning_rate, cfg_vid.weight_decay)
    B = sizes["vid_batch"]
    audio = torch.randn(B, cfg_vid.audio_length, device=device) * 0.1
    video = torch.randn(B, _video_seconds(cfg_vid), cfg_vid.feature_dim, device=device)
    out = {"batch": B, "feature_dim": cfg_vid.feature_dim}
    for prec in precisions(device):
        scaler = torch.amp.GradScaler(device.type, enabled=prec == "16-mixed")

        def step():
            with autocast(device, prec):
                loss = module.loss(module.net.embed_audio(audio), module.net.embed_video(video))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        out[prec] = {"ms_per_step": 1000 * median_time(step, device, args.repeats)}
    print(json.dumps({"stage2": out}), flush=True)
    return out


def _video_seconds(cfg) -> int:
    from vcmr.models import video_seconds
    return video_seconds(cfg.audio_length, cfg.sample_rate)


def make_video(path: Path, seconds: float, width: int, height: int, seed: int, fps: int = 25) -> str:
    """H.264 + AAC, a moving square over a scene that changes every 5-9 s."""
    cuts = np.cumsum(np.random.default_rng(seed).uniform(5, 9, 64))

    def frames():
        for i in range(int(seconds * fps)):
            t = i / fps
            k = int(np.searchsorted(cuts, t, side="right"))
            img = np.empty((height, width, 3), np.uint8)
            img[:] = np.random.default_rng(k).integers(0, 256, 3, dtype=np.uint8)
            cx, cy = int(width / 2 + width / 3 * np.cos(2 * t)), int(height / 2 + height / 3 * np.sin(2 * t))
            s = max(4, height // 12)
            img[max(0, cy - s):cy + s, max(0, cx - s):cx + s] = 255 - img[0, 0]
            yield img
    tt = np.arange(int(seconds * 44100)) / 44100
    audio = (0.3 * np.sin(2 * np.pi * (220 + 110 * seed) * tt)).astype(np.float32)
    return str(write_h264_aac(path, frames(), audio, fps, width, height))


def clip_b32(folder: Path, smoke: bool) -> Path:
    """A CLIPVisionModelWithProjection of ViT-B/32's shape (random weights), saved locally."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    shape = (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8, projection_dim=512) if smoke else
             dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  image_size=224, patch_size=32, projection_dim=512))
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**shape)).save_pretrained(folder)
    return folder


def prepare(args, sizes, device, work: Path) -> dict:
    from vcmr.prepare.decode import probe_video, window_start
    from vcmr.prepare.pipeline import prepare_videos
    vids = work / "videos"
    vids.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=min(sizes["n_videos"], 8)) as pool:
        paths = list(pool.map(make_video, [vids / f"v{i}.mp4" for i in range(sizes["n_videos"])],
                              [sizes["video_s"]] * sizes["n_videos"], [sizes["width"]] * sizes["n_videos"],
                              [sizes["height"]] * sizes["n_videos"], range(sizes["n_videos"])))
    out: dict = {"n_videos": len(paths), "video_s": sizes["video_s"], "window_s": sizes["window_s"],
                 "resolution": f"{sizes['width']}x{sizes['height']}", "make_videos_s": time.perf_counter() - t0}
    clip_dir = clip_b32(work / "clip_b32", args.cpu_smoke)
    total_window = sizes["window_s"] * len(paths)

    def bare():
        for p in paths:
            info = probe_video(p)
            bare_decode(p, window_start(info.duration_s, sizes["window_s"], info.fps), sizes["window_s"])
    out["bare_decode_video_s_per_s"] = total_window / median_time(bare, torch.device("cpu"), 1, warmup=1)
    common = ["--frame_encoder", "clip", "--frame_encoder_path", str(clip_dir), "--device", device.type,
              "--window_seconds", str(sizes["window_s"]), "--n_segments", str(sizes["segments"]),
              "--segment_seconds", str(sizes["segment_s"]), "--encoder_batch_size", "64"]
    for w in sizes["prepare_workers"]:
        cfg = load_config("prepare", None, common + ["--workers", str(w)])
        dest = work / f"prepared_w{w}"
        shutil.rmtree(dest, ignore_errors=True)
        t0 = time.perf_counter()
        summary = prepare_videos(paths, dest, cfg, progress=False)
        wall = time.perf_counter() - t0
        out[f"workers{w}"] = {"video_s_per_s": total_window / wall, "wall_s": wall,
                              "counts": dict(summary["counts"])}
        print(json.dumps({"prepare": {w: out[f"workers{w}"]}}), flush=True)
    out["ray"] = prepare_on_ray(paths, common, work, total_window, work / f"prepared_w{sizes['prepare_workers'][0]}")
    return out


def prepare_on_ray(paths, common: list, work: Path, total_window: float, local: Path) -> dict:
    """The Ray engine on the same videos; outputs checked against the local engine's."""
    from vcmr.prepare.manifest import read_manifest
    from vcmr.prepare.pipeline import prepare_videos
    from vcmr.prepare.ray_engine import import_ray
    try:
        import_ray()
    except Exception as e:  # Ray not installed: say so in the report, measure the rest
        return {"error": str(e)}
    dest = work / "prepared_ray"
    shutil.rmtree(dest, ignore_errors=True)
    t0 = time.perf_counter()
    summary = prepare_videos(paths, dest, load_config("prepare", None, common + ["--engine", "ray"]),
                             progress=False)
    wall = time.perf_counter() - t0
    rows, ref = read_manifest(dest), read_manifest(local)
    same_wavs = all((dest / f).read_bytes() == (local / f).read_bytes()
                    for r in ref.values() for f in r.get("audio_files", []))
    out = {"video_s_per_s": total_window / wall, "wall_s": wall, "counts": dict(summary["counts"]),
           "same_rows_as_local": sorted(rows) == sorted(ref) and all(
               rows[k]["status"] == ref[k]["status"] for k in ref), "same_wavs_as_local": same_wavs}
    print(json.dumps({"prepare": {"ray": out}}), flush=True)
    return out


def embedding(args, sizes, device, cfg) -> dict:
    torch.manual_seed(0)
    enc = SampleCNN(cfg).to(device).eval()
    out = {"clip_samples": cfg.audio_length}
    for b in sizes["embed_batches"]:
        x = torch.randn(b, cfg.audio_length, device=device) * 0.1
        with torch.no_grad():
            t = median_time(lambda: enc(x), device, args.repeats)
        out[f"batch{b}"] = {"clips_per_s": b / t, "audio_s_per_s": b * cfg.audio_length / cfg.sample_rate / t}
    print(json.dumps({"embedding": out}), flush=True)
    return out


# ------------------------------------------------------------------------------ report
def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# vcmr GPU check ({'CPU smoke run' if res['cpu_smoke'] else 'GPU run'})", "",
             f"{res['date']} on {m['device_name']} (torch {m['torch']}, CUDA {m['cuda']}, {m['cpus']} CPUs); "
             f"median of {res['repeats']} after warm-up; total {res['total_s']:.0f} s.", "",
             f"## Stage 1 step, batch {res['stage1']['batch']} (ms per step)", "",
             "| precision | model only | + augmentation on device | + augmentation in CPU workers |",
             "|---|---:|---:|---:|"]
    for prec in [k for k in res["stage1"] if k.endswith(("-true", "-mixed"))]:
        r = res["stage1"][prec]
        cpu = ", ".join(f"{k.split('_')[1]}: {v['ms_per_step']:.0f} (waiting {100 * v['data_wait_share']:.0f}%)"
                        for k, v in r.items() if k.startswith("cpu_"))
        lines.append(f"| {prec} | {r['model_only_ms']:.1f} | {r['gpu_augment_ms']:.1f} | {cpu} |")
    p = res["stage1"]["pipeline"]
    lines += ["", f"Augmentation chain alone on the device: {res['stage1']['augment_ms']:.1f} ms per two views "
              f"of the batch. Real input pipeline ({p['workers']} workers reading WAV excerpts, chain on "
              f"the device, {p['precision']}): {p['ms_per_step']:.0f} ms per step, "
              f"{100 * p['model_share']:.0f}% in the step, {100 * p['data_wait_share']:.0f}% waiting for data.",
              "", f"## Stage 2 step, batch {res['stage2']['batch']}", "",
              "| precision | ms per step |", "|---|---:|"]
    lines += [f"| {k} | {v['ms_per_step']:.1f} |" for k, v in res["stage2"].items() if isinstance(v, dict)]
    pr = res["prepare"]
    lines += ["", f"## vcmr prepare ({pr['n_videos']} videos {pr['resolution']}, {pr['window_s']} s windows, "
              f"CLIP ViT-B/32 shape)", "", "| decoding workers | seconds of video per second |", "|---|---:|"]
    lines += [f"| {k[7:]} | {v['video_s_per_s']:.1f} |" for k, v in pr.items() if k.startswith("workers")]
    ray = pr.get("ray", {})
    if "error" in ray:
        lines.append(f"| Ray engine | not run: {ray['error']} |")
    elif ray:
        lines.append(f"| Ray engine, start included (same rows / WAVs as local: "
                     f"{ray['same_rows_as_local']} / {ray['same_wavs_as_local']}) | {ray['video_s_per_s']:.1f} |")
    lines += [f"| bare decode (limit) | {pr['bare_decode_video_s_per_s']:.1f} |", "",
              "## Paper encoder embedding throughput", "", "| batch | clips/s | seconds of audio/s |",
              "|---:|---:|---:|"]
    lines += [f"| {k[5:]} | {v['clips_per_s']:.1f} | {v['audio_s_per_s']:.1f} |"
              for k, v in res["embedding"].items() if k.startswith("batch")]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="gpu_check", help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU: checks the script runs")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.cpu_smoke:
        device, sizes, tiny = torch.device("cpu"), SMOKE, TINY
        args.repeats = min(args.repeats, 2)
    elif torch.cuda.is_available():
        device, sizes, tiny = torch.device("cuda"), FULL, []
    else:
        print("gpu_check: no CUDA GPU visible to torch (torch.cuda.is_available() is False); "
              "install a CUDA build of torch, or run with --cpu-smoke", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vcmr_gpu_check_"))
    mus = load_config("music", None, tiny)
    vid = load_config("video", None, tiny + ["--feature_dim", "512", "--from_scratch", "true"])
    res = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu_smoke": args.cpu_smoke,
           "repeats": args.repeats, "sizes": sizes,
           "machine": {"device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "CPU",
                       "torch": torch.__version__, "cuda": torch.version.cuda, "cpus": os.cpu_count()}}
    res["stage1"] = stage1(args, sizes, device, mus, work)
    res["stage2"] = stage2(args, sizes, device, vid)
    res["embedding"] = embedding(args, sizes, device, mus)
    res["prepare"] = prepare(args, sizes, device, work)
    res["total_s"] = time.perf_counter() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    (out / "gpu_check.md").write_text(md)
    print(md)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
