"""Shared fixtures: a small synthetic music-video corpus and a tiny CLIP saved to disk.

Scale: 160x120 at 10 fps, window 24 s = 8 segments of 3 s, scenes longer than 6 s dropped
(the paper's 120 s / 8 x 15 s / 30 s divided by 5), so the whole corpus prepares in seconds.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

SMALL = ["--window_seconds", "24", "--segment_seconds", "3", "--n_segments", "8",
         "--max_scene_seconds", "6", "--encoder_batch_size", "8", "--workers", "0"]
SIZE, FPS = (160, 120), 10
GOOD_CUTS = [2.0, 6.0, 10.5, 15.0, 19.0, 23.0, 27.0]  # window of a 30 s video: 3 .. 27 s


def make_video(path: Path, duration: float, cuts, with_audio=True, seed=0, tags=("piano", "fast")):
    """A music video: audio from ``vcmr.synth.music``; pictures are flat per-scene colours with a
    moving bar, written with PyAV (H.264 + AAC; .mkv or .mp4).

    Why not ``vcmr.synth.video.write_music_video``: at this size its beat flashes on dark
    backgrounds score up to ~49 in ContentDetector (threshold 27), so PySceneDetect finds
    false cuts in it (reported to the lead); switch back once the generator is tuned.
    """
    import av
    from vcmr.synth.music import render_music
    clip = render_music(list(tags), duration=duration, sample_rate=16000, seed=seed)
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (len(cuts) + 1, 3)).astype(np.uint8)
    colours[1::2] //= 3  # alternate light and dark scenes: every cut is a clear change
    w, h = SIZE
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast"}
        if with_audio:
            aus = c.add_stream("aac", rate=16000, layout="mono")
        for i in range(int(round(duration * FPS))):
            t = i / FPS
            k = int(np.searchsorted(cuts, t + 1e-9, side="right"))
            img = np.empty((h, w, 3), np.uint8)
            img[:] = colours[k]
            x = int(t * 16) % (w - 8)
            img[:, x:x + 8] = 255 - colours[k]
            c.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(vs.encode(None))
        if with_audio:
            x = clip.audio.astype(np.float32)
            for i in range(0, len(x), 1024):
                fr = av.AudioFrame.from_ndarray(x[None, i:i + 1024].copy(), format="fltp", layout="mono")
                fr.sample_rate = 16000
                c.mux(aus.encode(fr))
            c.mux(aus.encode(None))
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
    """Folder of videos: two good ones, a long scene, too short, no audio, truncated, empty."""
    from vcmr.synth.video import truncate_file
    d = tmp_path_factory.mktemp("videos")
    clips = {"good": make_video(d / "good.mp4", 30, GOOD_CUTS, seed=1)}
    make_video(d / "other.mkv", 31, [3.0, 8.0, 12.0, 17.0, 22.0, 26.5], seed=2, tags=("guitar", "slow"))
    make_video(d / "long.mp4", 30, [2.0, 6.0, 10.0, 18.5, 23.0], seed=3)  # 8.5 s scene
    make_video(d / "short.mp4", 12, [5.0], seed=4)
    make_video(d / "silent.mp4", 30, GOOD_CUTS, with_audio=False, seed=5)
    shutil.copyfile(d / "good.mp4", d / "truncated.mp4")
    truncate_file(d / "truncated.mp4", keep=0.5)
    (d / "empty.mp4").write_bytes(b"")
    return {"dir": d, "clips": clips}


@pytest.fixture(scope="session")
def prepared(corpus, tiny_clip_dir, tmp_path_factory) -> dict:
    """The corpus prepared once with the tiny CLIP (shared by several tests)."""
    from vcmr.config import load_config
    from vcmr.prepare.pipeline import prepare_videos, read_manifest
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
