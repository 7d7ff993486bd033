"""`vcmr synth ...`: generate synthetic music videos and tagging datasets.

    vcmr synth music-videos --out corpus --n 20 [--seed 0] [--duration 150] [--n_long_scene 1] ...
    vcmr synth magnatagatune --out mtat --n 64 [--seed 0] [--duration 29.1]
    vcmr synth mtg-jamendo --out jamendo --n 64 [--seed 0] [--category moodtheme]

The generators (:mod:`vcmr.demo.synth`) are imported when one runs: music videos need PyAV and
OpenCV (``video`` extra), the tagging datasets do not.
"""
from __future__ import annotations

import argparse
from collections import Counter

from vcmr.commands import flag_names
from vcmr.errors import VcmrError


def _common(p: argparse.ArgumentParser, duration: float, what: str):
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--n", type=int, required=True, help=f"number of {what}")
    p.add_argument("--seed", type=int, default=0, help="same seed -> same files (default 0)")
    p.add_argument("--duration", type=float, default=duration,
                   help=f"seconds per {what[:-1]} (default {duration})")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel processes (default min(2, cpu count)); results do not depend on it")
    p.add_argument("--no_progress", "--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="{music-videos,magnatagatune,mtg-jamendo}")
    mv = sub.add_parser("music-videos", help="music videos (H.264+AAC mp4) with metadata.jsonl and video_ids.txt")
    _common(mv, 150.0, "videos")
    mv.add_argument("--size", default="320x240", help="WxH (default 320x240)")
    mv.add_argument("--fps", type=int, default=25)
    mv.add_argument("--sample_rate", "--sample-rate", type=int, default=22050, help="audio sample rate (default 22050)")
    for fault, help_ in (("long_scene", "with a scene longer than 30 s"),
                         ("too_short", "shorter than 2 minutes"), ("no_audio", "without an audio stream"),
                         ("corrupt", "truncated (cannot be decoded)")):
        mv.add_argument(*flag_names(f"n_{fault}"), type=int, default=0,
                        help=f"how many of the N videos are {help_}")
    mt = sub.add_parser("magnatagatune", help="MagnaTagATune-format dataset (mp3 + annotations + both splits)")
    _common(mt, 29.1, "clips")
    mt.add_argument("--sample_rate", "--sample-rate", type=int, default=16000)
    mj = sub.add_parser("mtg-jamendo", help="MTG-Jamendo-format dataset (mp3 + split tsv + tag lists)")
    _common(mj, 30.0, "tracks")
    mj.add_argument("--sample_rate", "--sample-rate", type=int, default=22050)
    mj.add_argument("--category", default="moodtheme", choices=["moodtheme", "genre", "instrument"])


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise VcmrError(f"--size {text!r} must look like 320x240") from None
    return w, h


def run(args) -> int:
    progress = not args.no_progress
    if args.what == "music-videos":
        from vcmr.demo.synth.corpus import make_music_video_corpus
        rows = make_music_video_corpus(
            args.out, args.n, seed=args.seed, duration=args.duration, size=_size(args.size),
            fps=args.fps, n_long_scene=args.n_long_scene, n_too_short=args.n_too_short,
            n_no_audio=args.n_no_audio, n_corrupt=args.n_corrupt, workers=args.workers,
            sample_rate=args.sample_rate, progress=progress)
        counts = Counter(r["expected"] for r in rows)
        print(f"wrote {len(rows)} videos to {args.out}/videos, video_ids.txt, metadata.jsonl "
              f"(expected: {dict(sorted(counts.items()))})")
    elif args.what == "magnatagatune":
        from vcmr.demo.synth.formats import write_magnatagatune
        rows = write_magnatagatune(args.out, args.n, seed=args.seed, duration=args.duration,
                                   sample_rate=args.sample_rate, workers=args.workers, progress=progress)
        counts = Counter(r["split"] for r in rows)
        print(f"wrote {len(rows)} clips to {args.out} (splits: {dict(sorted(counts.items()))}; "
              f"annotations_final.csv, pons2017/, won2020/)")
    else:
        from vcmr.demo.synth.formats import write_mtg_jamendo
        rows = write_mtg_jamendo(args.out, args.n, seed=args.seed, duration=args.duration,
                                 category=args.category, sample_rate=args.sample_rate,
                                 workers=args.workers, progress=progress)
        counts = Counter(r["split"] for r in rows)
        print(f"wrote {len(rows)} tracks to {args.out} (splits: {dict(sorted(counts.items()))}; "
              f"data/autotagging_{args.category}.tsv, data/splits/split-0/, data/tags/)")
    return 0
