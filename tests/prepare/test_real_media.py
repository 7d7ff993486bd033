"""``vcmr prepare`` on real recordings (../shared/data/media, see shared/data/SOURCES.md).

Synthetic videos have still scenes, which hid a sampler that put earlier frames into the
features; these tests use the Big Buck Bunny trailer (H.264 720p, 24 fps, constant motion,
MP3 audio that stops at 52.2 s, 3 s before the video) and bigbuckbunny.mp4 (5.1 AAC).
"""
from __future__ import annotations

import numpy as np
import pytest

from vcmr.config import load_config
from vcmr.prepare.manifest import read_manifest
from vcmr.prepare.pipeline import prepare_videos

TRAILER = "trailer_bbb.mp4"
# the paper's geometry scaled down 10x (120 s -> 12 s window, 8 x 15 s -> 4 x 3 s segments)
SCALED = ["--window_seconds", "12", "--segment_seconds", "3", "--n_segments", "4",
          "--max_scene_seconds", "30", "--encoder_batch_size", "16"]


def _on_screen(path, times, crop):
    """Independent reference: a plain PyAV decode from the first frame (no seek, no
    threads); the frame on screen at time s is the last frame whose time is <= s. Converted
    with PyAV's own frame.reformat (same swscale area filter the pipeline uses)."""
    import av

    from vcmr.prepare.decode import _scaled_size
    shown = [None] * len(times)
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.video[0]):
            if frame.time > times[-1]:
                break
            hits = [j for j, s in enumerate(times) if frame.time <= s]
            if not hits:
                continue
            w, h = _scaled_size(frame.width, frame.height, crop)
            img = frame.reformat(width=w, height=h, format="rgb24",
                                 interpolation="AREA").to_ndarray()
            y, x = (h - crop) // 2, (w - crop) // 2
            for j in hits:
                shown[j] = img[y:y + crop, x:x + crop]
    return np.stack(shown)


def test_sampled_frames_are_the_frames_on_screen(real_media):
    """Pixel for pixel against an independent decode, across the trailer's cuts and motion
    (the id(frame) cache got 6 of these 30 samples wrong, by up to 220 grey levels)."""
    from vcmr.prepare.decode import decode_window
    start, dur, fps, crop = 20.0, 6.0, 5, 64
    win = decode_window(real_media / TRAILER, start, dur, sample_fps=fps, crop_size=crop)
    times = start + (np.arange(int(dur * fps)) + 0.5) / fps
    expected = _on_screen(real_media / TRAILER, times, crop)
    assert win.frames.shape == expected.shape
    wrong = [j for j in range(len(times)) if not np.array_equal(win.frames[j], expected[j])]
    assert not wrong, f"samples {wrong} are not the frame on screen at their time"
    # the window really moves: consecutive samples differ (a frozen sampler would pass above
    # only if the reference were frozen too)
    assert np.mean([not np.array_equal(a, b) for a, b in zip(win.frames, win.frames[1:])]) > 0.8


def _prepare(media, out, extra, tiny_clip_dir, workers=0):
    cfg = load_config("prepare", None, SCALED + extra + [
        "--frame_encoder_path", str(tiny_clip_dir), "--workers", str(workers)])
    summary = prepare_videos([media / TRAILER], out, cfg, progress=False)
    return summary, read_manifest(out)


@pytest.mark.slow
def test_features_identical_across_runs_and_workers(real_media, tiny_clip_dir, tmp_path):
    runs = {}
    for name, workers in (("a", 0), ("b", 0), ("w2", 2)):
        summary, rows = _prepare(real_media, tmp_path / name, [], tiny_clip_dir, workers)
        (row,) = rows.values()
        assert row["status"] == "kept", row
        runs[name] = (np.load(tmp_path / name / row["video_file"]),
                      [(tmp_path / name / f).read_bytes() for f in row["audio_files"]])
    feats, wavs = runs["a"]
    assert feats.shape == (12, 512) and np.isfinite(feats).all()
    for name in ("b", "w2"):
        assert np.array_equal(runs[name][0], feats), f"run {name}: features differ"
        assert runs[name][1] == wavs, f"run {name}: audio segments differ"


def test_trailer_keep_shorter(real_media, tiny_clip_dir, tmp_path):
    """The paper's 120 s window on a 55.1 s trailer: ``keep_shorter`` keeps 3 x 15 s from the
    middle 45 s (5.05 - 50.05 s, before the MP3 track stops at 52.2 s); ``drop`` drops it."""
    import soundfile as sf
    base = ["--window_seconds", "120", "--segment_seconds", "15", "--n_segments", "8",
            "--frames_per_second", "1"]
    _, rows = _prepare(real_media, tmp_path / "drop", base, tiny_clip_dir)
    (row,) = rows.values()
    assert (row["status"], row["reason"]) == ("dropped", "too_short")
    _, rows = _prepare(real_media, tmp_path / "keep", base + ["--too_short_rule", "keep_shorter"],
                       tiny_clip_dir)
    (row,) = rows.values()
    assert row["status"] == "kept", row
    assert (row["window_s"], row["n_segments"]) == (45.0, 3)
    assert abs(row["start_s"] - (row["duration_s"] - 45) / 2) < 1 / 24
    assert np.load(tmp_path / "keep" / row["video_file"]).shape == (45, 512)
    for f in row["audio_files"]:
        x, sr = sf.read(str(tmp_path / "keep" / f))
        assert (len(x), sr) == (15 * 16000, 16000)
        rms = np.sqrt(np.mean(x.reshape(15, -1) ** 2, axis=1))
        # the soundtrack is quiet in places (measured per-second RMS down to 7e-4) but never
        # digital silence inside 5-50 s; zero padding would show as exact zeros
        assert rms.min() > 1e-4, f"{f}: a silent second in the trailer's soundtrack"


def test_51_soundtrack_is_downmixed_by_its_layout(real_media):
    """bigbuckbunny.mp4 (5.1 AAC): the 16 kHz mono of the prepare path is the ITU-R BS.775
    mix (x 1/sqrt(2), LFE dropped) of an independent per-channel decode, not the average."""
    import av

    from vcmr.audio.io import resample
    from vcmr.prepare.decode import decode_window
    weights = {"FL": 0.5, "FR": 0.5, "FC": 0.5 ** 0.5, "LFE": 0.0, "BL": 0.5 ** 1.5, "BR": 0.5 ** 1.5}
    path = real_media / "bigbuckbunny.mp4"
    win = decode_window(path, 0.0, 5.0, sample_fps=1, crop_size=32, sample_rate=16000)
    planes = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            names = [ch.name for ch in frame.layout.channels]
            planes.append(frame.to_ndarray())
    x = np.concatenate(planes, 1)
    expected = resample(sum(weights[n] * ch for n, ch in zip(names, x)), 48000, 16000)[:len(win.audio)]
    assert len(win.audio) == 80000
    assert np.abs(win.audio[:len(expected)] - expected).max() < 1e-4
    averaged = resample(x.mean(0), 48000, 16000)[:len(expected)]
    assert np.std(win.audio) > 3 * np.std(averaged)  # averaging was 11.6 dB quieter (measured)
