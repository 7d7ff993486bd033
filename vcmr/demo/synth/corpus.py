"""A folder of synthetic music videos with known truth, including the faulty cases the
preparation filter must handle.

Layout written by :func:`make_music_video_corpus`::

    out_dir/videos/<id>.mp4     H.264 + AAC (or no audio / truncated, on purpose)
    out_dir/video_ids.txt       one id per line (like the paper's video_list.txt)
    out_dir/metadata.jsonl      per video: id, file, tags, tempo_bpm, mode, instruments,
                                scene_cuts, duration, expected, ...

``expected`` is what a correct preparation stage should do with the video:
``kept``, ``dropped:too_short`` (shorter than MIN_VIDEO_SECONDS), ``dropped:long_scene`` (a scene
longer than MAX_SCENE_SECONDS), ``failed:no_audio`` or ``failed:decode_error``. It is computed
from the video actually written, in that order of precedence.

Example (CLI): ``vcmr synth music-videos --out corpus --n 20 --duration 150``
"""
from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np

from vcmr.demo.synth.music import render_music
from vcmr.demo.synth.parallel import run_parallel
from vcmr.demo.synth.tags import random_tags
from vcmr.demo.synth.video import check_size, truncate_file, write_music_video
from vcmr.errors import VcmrError

MIN_VIDEO_SECONDS = 120.0     # the paper keeps videos of at least 2 minutes
MAX_SCENE_SECONDS = 30.0      # ... whose scenes all last at most 30 s
SCENE_RANGE = (4.0, 12.0)     # normal scene lengths
FAULTS = ("long_scene", "too_short", "no_audio", "corrupt")
_ID_CHARS = string.ascii_letters + string.digits + "-_"


def youtube_like_id(rng: np.random.Generator) -> str:
    """11 characters from YouTube's alphabet; the first is alphanumeric (ids starting with '-'
    read like command-line options)."""
    first = _ID_CHARS[int(rng.integers(0, 62))]
    return first + "".join(_ID_CHARS[i] for i in rng.integers(0, 64, 10))


def normal_cuts(duration: float, rng, scene_range=SCENE_RANGE) -> list[float]:
    """Cut times with every scene in ``scene_range`` seconds (the last one may be shorter, or
    up to 1 s longer)."""
    cuts, t = [], 0.0
    while True:
        t += float(rng.uniform(*scene_range))
        if t >= duration - 1.0:
            return cuts
        cuts.append(round(t, 3))


def scene_range_for(max_scene_seconds: float) -> tuple[float, float]:
    """Normal scene lengths: SCENE_RANGE, shrunk for a scaled-down filter (demo geometry)."""
    if max_scene_seconds >= 2 * SCENE_RANGE[1]:
        return SCENE_RANGE
    return (0.3 * max_scene_seconds, 0.75 * max_scene_seconds)


def long_scene_cuts(duration: float, rng, max_scene_seconds: float = MAX_SCENE_SECONDS) -> list[float]:
    """Normal cuts except one scene of 1.15-1.65 x the longest allowed scene (35-50 s for the
    paper's 30 s), or the whole video when it is shorter."""
    length = float(rng.uniform(1.15, 1.65)) * max_scene_seconds
    if duration <= length + 1.0:
        return []
    scenes = scene_range_for(max_scene_seconds)
    start = float(rng.uniform(0.0, duration - length))
    before = [c for c in normal_cuts(start, rng, scenes)] if start > 1.0 else []
    after = [round(start + length + c, 3) for c in normal_cuts(duration - start - length, rng, scenes)]
    bounds = ([round(start, 3)] if start > 0.5 else []) + [round(start + length, 3)]
    return sorted(before + bounds + after)


def expected_outcome(spec: dict, min_seconds: float = MIN_VIDEO_SECONDS,
                     max_scene_seconds: float = MAX_SCENE_SECONDS) -> str:
    scenes = np.diff([0.0, *spec["scene_cuts"], spec["duration"]])
    if spec["fault"] == "corrupt":
        return "failed:decode_error"
    if spec["fault"] == "no_audio":
        return "failed:no_audio"
    if spec["duration"] < min_seconds:
        return "dropped:too_short"
    if scenes.max() > max_scene_seconds:
        return "dropped:long_scene"
    return "kept"


def plan_corpus(n: int, seed: int, duration: float, counts: dict, min_seconds: float = MIN_VIDEO_SECONDS,
                max_scene_seconds: float = MAX_SCENE_SECONDS) -> list[dict]:
    """Deterministic per-video specs (id, tags, seed, cuts, fault) drawn in the parent process.

    ``min_seconds`` / ``max_scene_seconds``: the preparation filter the corpus is made for (the
    paper's 120 s and 30 s by default; the demo scales them down)."""
    n_faulty = sum(counts.values())
    if n_faulty > n:
        raise VcmrError(f"{n_faulty} faulty videos were asked for but --n is only {n}; "
                        f"raise --n or lower the n_* counts")
    rng = np.random.default_rng([seed, 7001])
    faults = [f for f in FAULTS for _ in range(counts.get(f, 0))] + [None] * (n - n_faulty)
    faults = [faults[i] for i in rng.permutation(n)]
    specs, ids = [], set()
    for i, fault in enumerate(faults):
        vid = youtube_like_id(rng)
        while vid in ids:
            vid = youtube_like_id(rng)
        ids.add(vid)
        short = float(round(rng.uniform(1 / 3, 3 / 4) * min_seconds, 2))  # 40-90 s for the paper
        dur = min(short if fault == "too_short" else float(duration), float(duration))
        cuts = (long_scene_cuts(dur, rng, max_scene_seconds) if fault == "long_scene"
                else normal_cuts(dur, rng, scene_range_for(max_scene_seconds)))
        spec = {"id": vid, "file": f"videos/{vid}.mp4", "tags": random_tags(rng),
                "seed": int(rng.integers(0, 2**31 - 1)), "duration": dur, "scene_cuts": cuts,
                "fault": fault}
        spec["expected"] = expected_outcome(spec, min_seconds, max_scene_seconds)
        specs.append(spec)
    return specs


def _render_video(job: tuple) -> dict:
    spec, out_dir, size, fps, sample_rate = job
    clip = render_music(spec["tags"], spec["duration"], sample_rate, spec["seed"])
    path = Path(out_dir) / spec["file"]
    write_music_video(path, clip, spec["scene_cuts"], size=size, fps=fps,
                      with_audio=spec["fault"] != "no_audio", seed=spec["seed"])
    if spec["fault"] == "corrupt":
        truncate_file(path, keep=0.4)
    return {**spec, "tags": clip.tags, "tempo_bpm": clip.tempo_bpm, "mode": clip.mode,
            "key": clip.key, "instruments": clip.instruments, "dynamics": clip.dynamics,
            "sample_rate": sample_rate, "size": list(size), "fps": fps,
            "has_audio": spec["fault"] != "no_audio"}


def make_music_video_corpus(out_dir, n: int, seed: int = 0, duration: float = 150.0,
                            size=(320, 240), fps: int = 25, n_long_scene: int = 0,
                            n_too_short: int = 0, n_no_audio: int = 0, n_corrupt: int = 0,
                            workers: int | None = None, sample_rate: int = 22050,
                            progress: bool = False, min_seconds: float = MIN_VIDEO_SECONDS,
                            max_scene_seconds: float = MAX_SCENE_SECONDS) -> list[dict]:
    """Write ``n`` music videos (some faulty on purpose) and their metadata; returns the rows of
    metadata.jsonl. Same seed -> same ids, tags, cuts and audio, whatever ``workers`` is."""
    if n < 1:
        raise VcmrError(f"--n must be at least 1, got {n}")
    if duration < 2.0:
        raise VcmrError(f"--duration must be at least 2 seconds, got {duration}")
    size = check_size(size)
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    counts = {"long_scene": n_long_scene, "too_short": n_too_short, "no_audio": n_no_audio,
              "corrupt": n_corrupt}
    specs = plan_corpus(n, seed, duration, counts, min_seconds, max_scene_seconds)
    jobs = [(s, str(out_dir), tuple(size), fps, sample_rate) for s in specs]
    rows = run_parallel(_render_video, jobs, workers, progress, desc="music videos")
    (out_dir / "video_ids.txt").write_text("".join(r["id"] + "\n" for r in rows))
    with open(out_dir / "metadata.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows
