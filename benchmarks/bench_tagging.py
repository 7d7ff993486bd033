"""Tagging benchmarks: stage-4 evaluation throughput and `vcmr probe` vs end-to-end head training.

    python benchmarks/bench_tagging.py --songs 8 --repeats 3           # throughput only
    python benchmarks/bench_tagging.py --probe --n 96 --epochs 10       # + probe vs end-to-end

1. Evaluation throughput of the paper's SampleCNN (98415 samples, 9 blocks) + tagging head on
   CPU: synthetic 29.1 s songs (MagnaTagATune clip length), overlap ratios [0] and [0, 0.5],
   segment batch sizes 1 and 16; after a warm-up, median of ``--repeats`` runs.
2. For one stage-1 checkpoint (a tiny SampleCNN pre-trained for one epoch on the synthetic
   train clips), wall time and test metrics of ``vcmr train tagging`` + ``vcmr evaluate`` (overlap
   0) against ``vcmr probe`` (linear head, embedding extraction included).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n_blocks", "6", "--n_channels", "16,16,32,32,32,64", "--audio_length", "2187",
        "--first_block_params.conv_size", "3", "--first_block_params.out_channels", "16", "--output_size", "64"]


def throughput(n_songs: int, repeats: int) -> None:
    from vcmr.config import EncoderConfig, config_to_dict
    from vcmr.data.tagging import TaggingItem, TaggingSplit
    from vcmr.evaluate.tagging import run_segments
    from vcmr.models.stages import build

    cfg = EncoderConfig()
    model = build("tagging", config_to_dict(cfg), [f"tag{i}" for i in range(50)]).eval()
    tmp = Path(tempfile.mkdtemp())
    from vcmr.audio.io import write_wav
    rng = np.random.default_rng(0)
    items = []
    for i in range(n_songs):
        write_wav(tmp / f"{i}.wav", 0.1 * rng.standard_normal(int(29.1 * 16000)).astype(np.float32), 16000)
        items.append(TaggingItem(str(i), tmp / f"{i}.wav", np.zeros(50, np.float32), f"{i}.wav"))
    split = TaggingSplit("bench", "test", [str(i) for i in range(50)], items, tmp)
    print(f"torch threads: {torch.get_num_threads()}; songs: {n_songs} x 29.1 s; paper SampleCNN")
    print("| overlaps | segment batch | segments/song | songs/s | audio s/s |")
    print("|---|---|---|---|---|")
    for overlaps in ([0.0], [0.0, 0.5]):
        for bs in (1, 16):
            run = lambda: run_segments(split, model, 16000, cfg.audio_length, overlaps, bs, 0)
            out = run()  # warm-up
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                run()
                times.append(time.perf_counter() - t)
            med = statistics.median(times)
            segs = sum(len(o) for _, o, _ in out) / n_songs
            print(f"| {overlaps} | {bs} | {segs:.0f} | {n_songs / med:.2f} | {n_songs * 29.1 / med:.1f} |")


def probe_vs_end_to_end(n: int, epochs: int) -> None:
    from vcmr.config import load_config
    from vcmr.evaluate.probe import probe
    from vcmr.evaluate.tagging import evaluate_checkpoints
    from vcmr.demo.synth.formats import write_magnatagatune
    from vcmr.train.music import train_music
    from vcmr.train.tagging import train_tagging

    tmp = Path(tempfile.mkdtemp())
    data = tmp / "mtat"
    write_magnatagatune(data, n, seed=0, duration=3.0, sample_rate=16000)
    common = ["--log_dir", str(tmp / "runs"), "--workers", "0", "--progress_bar", "false",
              "--accelerator", "cpu", "--devices", "1"]
    s1 = train_music(load_config("music", overrides=TINY + common + [
        "--dataset_dir", str(data / "0"), "--m_epochs", "1", "--batch_size", "16"]))["last"]
    sup = TINY + common + ["--dataset_dir", str(data), "--pretrained_ckpt_path", s1, "--batch_size", "16",
                           "--cache_dir", str(tmp / "cache"), "--results_dir", str(tmp / "res")]
    from vcmr.data.cache import cache_audio
    from vcmr.data.tagging import load_split
    t = time.perf_counter()
    for subset in ("train", "valid", "test"):
        cache_audio(load_split("magnatagatune", data, subset).items, tmp / "cache", 16000, 2, progress=False)
    t_cache = time.perf_counter() - t
    t = time.perf_counter()
    paths = train_tagging(load_config("tagging", overrides=sup + ["--m_epochs", str(epochs)]))
    t_fit = time.perf_counter() - t
    ecfg = load_config("evaluate", overrides=["--dataset_dir", str(data), "--results_dir", str(tmp / "res"),
                                          "--workers", "0", "--accelerator", "cpu", "--overlap_ratios", "0",
                                          "--cache_dir", str(tmp / "cache")])
    t = time.perf_counter()
    e2e = next(iter(evaluate_checkpoints(ecfg, [paths["best"]], ["e2e"]).values()))["overlaps"]["0.0"]
    t_eval = time.perf_counter() - t
    t = time.perf_counter()
    pr = probe(load_config("tagging", overrides=sup + ["--model_name", "probe"]))
    t_probe = time.perf_counter() - t
    print(f"\nsynthetic MagnaTagATune: {n} clips x 3 s; tiny SampleCNN; cache {t_cache:.1f} s (shared)")
    print("| method | wall time (s) | test ROC-AUC | test PR-AUC |")
    print("|---|---|---|---|")
    print(f"| train tagging ({epochs} epochs) + evaluate | {t_fit:.1f} + {t_eval:.1f} | {e2e['roc_auc']:.3f} | {e2e['pr_auc']:.3f} |")
    print(f"| probe (linear, {pr['epochs']} epochs) | {t_probe:.1f} (embed {pr['timing']['extract_s']:.1f}, "
          f"fit {pr['timing']['fit_s']:.1f}) | {pr['test']['roc_auc']:.3f} | {pr['test']['pr_auc']:.3f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--probe", action="store_true", help="also time probe vs end-to-end")
    ap.add_argument("--skip_throughput", action="store_true")
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args(argv)
    if not args.skip_throughput:
        throughput(args.songs, args.repeats)
    if args.probe:
        probe_vs_end_to_end(args.n, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
