"""`vcmr embed`'s work on a shared machine: before and after vcmr's thread defaults
(``vcmr.threads``), quiet and under one and two busy-loop processes, side by side in one run.

    python benchmarks/shared_machine.py --files 120 --work /tmp/shared_bench

Workload: the tiny SampleCNN of ``config/tiny.yaml`` (random weights, seed 0) embeds ``--files``
WAVs of 0.25 s (two windows each) with ``vcmr.embed_io.embed_paths``, the loop ``vcmr embed``
runs; each measurement is a fresh Python process (OpenMP reads its settings when torch is first
imported), and the time is the embedding loop alone (not the 2-5 s import of torch).

* before: ``VCMR_THREADS=torch``, vcmr changes nothing: torch's default threads and OpenMP's
  default wait policy (what vcmr did before ``vcmr.threads``);
* after: ``vcmr.threads.configure_threads()`` first, as ``vcmr.cli.main`` does;
* after-1: the same with ``VCMR_THREADS=1``: what a rule that lowered the thread count with the
  load would pick on this 2-core machine (measured to decide whether the rule needs a load term).

OMP_NUM_THREADS, OMP_WAIT_POLICY, KMP_BLOCKTIME and VCMR_THREADS are removed from the children's
environment so that both start from the defaults a user gets. Loads: 0, 1 and 2 processes
running ``while True: pass`` for the whole level; at each level the two variants alternate
(``--repeats`` rounds; the median is reported). Fair-share bound: with P usable cores and k busy
loops, a fair scheduler leaves a process with P threads at least P / (P + k) of the cores it had,
so its time may grow at most (P + k) / P times the same variant's quiet time. Load from other
users of the machine is not controlled: the 1-minute load average is printed for every level.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLEAN = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "VCMR_THREADS", "MKL_NUM_THREADS")
ROOT = Path(__file__).resolve().parents[1]


def make_inputs(work: Path, n_files: int) -> None:
    import numpy as np
    import soundfile as sf
    import torch
    from vcmr.config import config_to_dict, load_config
    from vcmr.inference import EmbeddingModel
    from vcmr.io.model_file import save_model_file
    from vcmr.models.stages import build
    shutil.rmtree(work / "audio", ignore_errors=True)
    (work / "audio").mkdir(parents=True)
    cfg = load_config("music", str(ROOT / "config" / "tiny.yaml"), [])
    torch.manual_seed(0)
    model = EmbeddingModel("music", config_to_dict(cfg), build("music", cfg).state_dict())
    save_model_file(model, work / "tiny.safetensors")
    rng = np.random.default_rng(0)
    for i in range(n_files):
        sf.write(work / "audio" / f"{i:05d}.wav", (0.1 * rng.standard_normal(4000)).astype(np.float32), 16000)


def child(variant: str, work: Path) -> None:
    """One measurement, in a fresh process: prints a JSON line."""
    if variant != "before":
        from vcmr.threads import configure_threads
        configure_threads()
    import torch
    from vcmr.embed_io import collect_inputs, embed_paths
    from vcmr.io.load import load_model
    model = load_model(str(work / "tiny.safetensors"), "cpu")
    files, _ = collect_inputs([str(work / "audio")])
    embed_paths(files[:1], model, progress=False)  # warm-up: first-call allocations
    t = time.perf_counter()
    embed_paths(files, model, progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t, "files": len(files),
                      "threads": torch.get_num_threads(),
                      "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")}))


def measure(variant: str, work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["VCMR_THREADS"] = {"before": "torch", "after": "", "after-1": "1"}[variant]
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--work", str(work)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_level(n_busy: int, work: Path, repeats: int) -> dict:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_busy)]
    try:
        time.sleep(1.0)
        load_start = os.getloadavg()[0]
        runs = {"before": [], "after": [], "after-1": []}
        for _ in range(repeats):
            for variant in runs:
                runs[variant].append(measure(variant, work))
        load_end = os.getloadavg()[0]
    finally:
        for p in busy:
            p.kill()
            p.wait()
    return {"busy": n_busy, "load": (load_start, load_end),
            **{v: {"seconds": statistics.median(r["seconds"] for r in rs), "threads": rs[0]["threads"],
                   "wait_policy": rs[0]["wait_policy"]} for v, rs in runs.items()}}


def table(levels: list[dict], cores: int, n_files: int) -> str:
    quiet = levels[0]
    lines = ["| busy loops | load (start-end) | before: s (ms/file) | after: s (ms/file) | after-1: s "
             "| before / after | slowdown before | slowdown after | fair-share bound |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for lv in levels:
        b, a = lv["before"]["seconds"], lv["after"]["seconds"]
        lines.append(f"| {lv['busy']} | {lv['load'][0]:.1f}-{lv['load'][1]:.1f} | {b:.2f} ({1000 * b / n_files:.1f}) "
                     f"| {a:.2f} ({1000 * a / n_files:.1f}) | {lv['after-1']['seconds']:.2f} | {b / a:.1f}x "
                     f"| {b / quiet['before']['seconds']:.1f}x | {a / quiet['after']['seconds']:.1f}x "
                     f"| {(cores + lv['busy']) / cores:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--busy", default="0,1,2", help="busy-loop counts, comma-separated (0 first)")
    ap.add_argument("--work", default="/tmp/vcmr_shared_machine")
    ap.add_argument("--child", choices=["before", "after", "after-1"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work)
    if args.child:
        return child(args.child, work)
    from vcmr.threads import available_cpus
    make_inputs(work, args.files)
    cores = available_cpus()
    started = time.perf_counter()
    levels = [run_level(int(k), work, args.repeats) for k in args.busy.split(",")]
    print(f"{os.cpu_count()} CPUs, {cores} usable physical cores; {args.files} files; "
          f"{args.repeats} round(s); {time.perf_counter() - started:.0f} s in all")
    for v in ("before", "after", "after-1"):
        print(f"{v}: {levels[0][v]['threads']} threads, OMP_WAIT_POLICY {levels[0][v]['wait_policy']}")
    print(table(levels, cores, args.files))


if __name__ == "__main__":
    main()
