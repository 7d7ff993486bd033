"""Shared fixtures: a small corpus from the synthetic generator and a tiny CLIP saved to disk.

Scale: 160x120 at 10 fps, window 24 s = 8 segments of 3 s, scenes longer than 6 s dropped
(the paper's 120 s / 8 x 15 s / 30 s divided by 5), so the whole corpus prepares in seconds.

The videos are written by ``vcmr.demo.synth`` (music from ``render_music``, pictures that follow it
from ``write_music_video``: gradients, orbiting instrument shapes, beat flashes):

- ``make_music_video_corpus`` writes six videos with random tags and cuts and known truth in
  ``metadata.jsonl``: two normal ones, one with a too-long scene, one too short, one without
  audio and one truncated (``expected`` says what preparation must do with each);
- ``good.mp4`` is written with ``write_music_video`` and hand-picked cut times (whole seconds of
  the window, so the per-second feature check knows exactly which rows straddle a cut);
- ``empty.mp4`` is a zero-byte file.

Measured before switching to these videos (160x120, 10 fps, 40 random clips, the pipeline's
own decode + SceneScanner): every planted cut found within one frame and no false cut; the
highest ContentDetector score away from a cut was 16, the lowest at a cut 28.5 (threshold 27;
the weakest cuts are in quiet/soft clips).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SMALL = ["--window_seconds", "24", "--segment_seconds", "3", "--n_segments", "8",
         "--max_scene_seconds", "6", "--encoder_batch_size", "8", "--workers", "0"]
SIZE, FPS, SR = (160, 120), 10, 16000
WINDOW, MAX_SCENE = 24.0, 6.0
GOOD_CUTS = [2.0, 6.0, 10.5, 15.0, 19.0, 23.0, 27.0]  # window of a 30 s video: 3 .. 27 s
# seed 2 of the corpus plan: both normal videos have no cut within 0.5 s of the window edges,
# one of them is "quiet" (the weakest cuts), and the long scene (8.5 s) lies inside the window
CORPUS_SEED = 2
ROLE_OF_FAULT = {"long_scene": "long", "too_short": "short", "no_audio": "silent",
                 "corrupt": "truncated"}


def window_of(duration: float, window: float = WINDOW) -> tuple[float, float]:
    """The middle ``window`` seconds, as the pipeline takes them (start on a whole frame)."""
    from vcmr.prepare.decode import window_start
    start = window_start(duration, window, FPS)
    return start, start + window


def make_video(path: Path, duration: float, cuts, with_audio=True, seed=0,
               tags=("piano", "fast")):
    """A music video from the synthetic generator with scene cuts at ``cuts`` (seconds)."""
    from vcmr.demo.synth.music import render_music
    from vcmr.demo.synth.video import write_music_video
    clip = render_music(list(tags), duration=duration, sample_rate=SR, seed=seed)
    write_music_video(path, clip, cuts, size=SIZE, fps=FPS, with_audio=with_audio, seed=seed)
    return clip


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A randomly initialised CLIP vision tower + processor saved with save_pretrained, so the
    real loading code (from_pretrained of a local directory) is exercised."""
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)
    out = tmp_path_factory.mktemp("tiny_clip")
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4, image_size=32, patch_size=8, projection_dim=512)
    CLIPVisionModelWithProjection(cfg).save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict:
    """Folder of videos (see the module docstring) and what is known about each.

    Returns dir, meta (id -> metadata row of the generator, plus "good"), roles ("kept": the
    corpus' normal ids, "long"/"short"/"silent"/"truncated": one id each), clips ("good")."""
    from vcmr.demo.synth.corpus import make_music_video_corpus
    root = tmp_path_factory.mktemp("synth")
    rows = make_music_video_corpus(root, 6, seed=CORPUS_SEED, duration=30.0, size=SIZE, fps=FPS,
                                   n_long_scene=1, n_too_short=1, n_no_audio=1, n_corrupt=1,
                                   workers=0, sample_rate=SR, min_seconds=WINDOW,
                                   max_scene_seconds=MAX_SCENE)
    d = root / "videos"
    meta = {r["id"]: r for r in rows}
    roles: dict = {"kept": [r["id"] for r in rows if r["fault"] is None]}
    for r in rows:
        if r["fault"]:
            roles[ROLE_OF_FAULT[r["fault"]]] = r["id"]
    assert len(roles["kept"]) == 2 and len(roles) == 5
    # the generator places the long scene anywhere in the video; this seed has it inside the
    # window, so the pipeline (which only looks at the window) must drop the video
    long = meta[roles["long"]]
    lo, hi = window_of(long["duration"])
    inside = np.diff(np.clip([0.0, *long["scene_cuts"], long["duration"]], lo, hi))
    assert inside.max() > MAX_SCENE + 1.0, "corpus seed changed: long scene not in the window"
    clips = {"good": make_video(d / "good.mp4", 30, GOOD_CUTS, seed=1)}
    meta["good"] = {"id": "good", "duration": 30.0, "scene_cuts": GOOD_CUTS, "fault": None,
                    "expected": "kept"}
    (d / "empty.mp4").write_bytes(b"")
    return {"dir": d, "meta": meta, "roles": roles, "clips": clips}


@pytest.fixture(scope="session")
def prepared(corpus, tiny_clip_dir, tmp_path_factory) -> dict:
    """The corpus prepared once with the tiny CLIP (shared by several tests)."""
    from vcmr.config import load_config
    from vcmr.prepare.manifest import read_manifest
    from vcmr.prepare.pipeline import prepare_videos
    out = tmp_path_factory.mktemp("prepared")
    cfg = load_config("prepare", None, SMALL + ["--frame_encoder_path", str(tiny_clip_dir)])
    summary = prepare_videos([corpus["dir"]], out, cfg, progress=False)
    return {"out": out, "cfg": cfg, "summary": summary, "rows": read_manifest(out)}


@pytest.fixture(scope="session")
def small() -> list[str]:
    """Config overrides of the small scale (see the module docstring)."""
    return list(SMALL)


@pytest.fixture(scope="session")
def good_cuts() -> list[float]:
    return list(GOOD_CUTS)


@pytest.fixture(scope="session")
def video_maker():
    return make_video


def write_pyav_video(path: Path, fmt: str, codec: str, seconds: float = 3.0, audio: bool = False):
    """A moving gradient, 64x48 at 10 fps, optionally with a 440 Hz tone."""
    import av
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream(codec, rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("mp2" if fmt == "mpeg" else "aac", rate=44100) if audio else None
        for i in range(int(seconds * 10)):
            img = np.full((48, 64, 3), (i * 8) % 256, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            n = int(seconds * 44100)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)
            for k in range(0, n, 1152):
                fr = av.AudioFrame.from_ndarray(tone[None, k:k + 1152], format="flt", layout="mono")
                fr.sample_rate = 44100
                for p in a.encode(fr):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


@pytest.fixture(scope="session")
def pyav_video_writer():
    """``write(path, fmt, codec, seconds=3.0, audio=False)``: a 64x48 10 fps video written with
    PyAV in any container/codec (MPEG-2 in MPEG-PS, H.264 in MP4...)."""
    return write_pyav_video
