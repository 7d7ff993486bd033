"""Music videos whose pictures follow the music, written as real files with PyAV.

What a viewer (or a video encoder) can learn from the pictures:

- palette from the mode and the dynamics: major -> warm hues (orange/yellow), minor -> cool hues
  (blue/violet); loud -> saturated, quiet/soft -> washed out and dimmer;
- motion from the tempo: every shape orbits its anchor once every two beats;
- shapes from the instruments: each instrument has its own shape and colour (piano: a row of
  keys, guitar: a ring, drums: a square, strings: a wave, violin: a triangle, flute: a dot,
  synth: a diamond, harpsichord: thin bars, cello: an ellipse, harp: fanned lines), which swells
  at each of that instrument's note onsets;
- flashes on the beats: the whole frame brightens a little on each beat and fades in 0.1 s.

At each time in ``scene_cuts`` the scene changes abruptly (new gradient direction, hue shift and
a light/dark swap of the background, new shape layout), so a content-based cut detector such
as PySceneDetect's ``ContentDetector`` finds it, while beat flashes and motion stay well below
its default threshold.

Example::

    from vcmr.demo.synth.music import render_music
    from vcmr.demo.synth.video import write_music_video
    clip = render_music(["piano", "fast"], duration=12, sample_rate=22050, seed=1)
    write_music_video("demo.mp4", clip, scene_cuts=[4.0, 8.5])
"""
from __future__ import annotations

import colorsys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vcmr.audio.io import resample
from vcmr.demo.synth.music import SynthClip
from vcmr.demo.synth.tags import INSTRUMENTS
from vcmr.errors import VcmrError
from vcmr.paths import atomic_output

CONTAINERS = {  # suffix -> (format, video codec, audio codec, audio rate or None for the clip's)
    ".mp4": ("mp4", "libx264", "aac", None),
    ".mkv": ("matroska", "libx264", "aac", None),
    ".webm": ("webm", "libvpx-vp9", "libopus", 48000),
}
MODE_HUES = {"major": (15.0, 55.0), "minor": (200.0, 260.0)}    # degrees
SATURATION = {"loud": 0.95, "normal": 0.75, "soft": 0.35, "quiet": 0.3}
BRIGHTNESS = {"loud": 1.0, "normal": 0.9, "soft": 0.7, "quiet": 0.65}
INSTRUMENT_COLOURS = {  # BGR
    "guitar": (40, 200, 255), "strings": (255, 255, 255), "drums": (30, 30, 230),
    "piano": (250, 250, 250), "violin": (60, 120, 200), "synth": (255, 80, 255),
    "harpsichord": (120, 220, 220), "flute": (255, 230, 160), "harp": (140, 255, 140),
    "cello": (40, 70, 140),
}
FLASH = 0.25          # relative brightening of the frame on a beat (decays in FLASH_DECAY s);
                      # multiplicative so hue and saturation stay put (no false scene cuts)
FLASH_DECAY = 0.1


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360.0, s, v)
    return np.array([b, g, r], dtype=np.float32) * 255


class _Scene:
    """Static background and shape layout of one scene."""

    def __init__(self, clip: SynthClip, index: int, size, rng):
        w, h = size
        lo, hi = MODE_HUES[clip.mode]
        hue = rng.uniform(lo, hi)
        sat, val = SATURATION[clip.dynamics], BRIGHTNESS[clip.dynamics]
        light = index % 2 == 0
        top = _hsv_to_bgr(hue, sat, val * (0.85 if light else 0.25))
        bottom = _hsv_to_bgr(hue + rng.uniform(-20, 20), sat, val * (0.6 if light else 0.1))
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        proj = (xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)
        a = ((proj - proj.min()) / (np.ptp(proj) + 1e-6))[..., None]
        bg = (1 - a) * top + a * bottom
        self.background = np.clip(bg / (1 + FLASH), 0, 255).astype(np.uint8)   # room to flash
        cells = rng.permutation(12)
        self.anchors = {}
        for k, inst in enumerate(clip.instruments):
            cx, cy = cells[k] % 4, cells[k] // 4
            self.anchors[inst] = (int((cx + 0.5) * w / 4 + rng.uniform(-8, 8)),
                                  int((cy + 0.5) * h / 3 + rng.uniform(-8, 8)))


def _activity(onsets: np.ndarray, t: float, tau: float = 0.2) -> float:
    """exp(-(t - last onset) / tau), 0 before the first onset."""
    i = np.searchsorted(onsets, t, side="right")
    return 0.0 if i == 0 else float(np.exp(-(t - onsets[i - 1]) / tau))


def _draw(img, inst: str, cx: int, cy: int, s: float, t: float):
    col = INSTRUMENT_COLOURS[inst]
    r = max(2, int(s))
    if inst == "guitar":
        cv2.circle(img, (cx, cy), r, col, 4, cv2.LINE_AA)
    elif inst == "drums":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), col, -1)
    elif inst == "flute":
        cv2.circle(img, (cx, cy), max(2, r // 2), col, -1, cv2.LINE_AA)
    elif inst == "cello":
        cv2.ellipse(img, (cx, cy), (r, max(2, int(r * 1.6))), 0, 0, 360, col, -1, cv2.LINE_AA)
    elif inst in ("violin", "synth"):
        pts = ([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)] if inst == "violin" else
               [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)])
        cv2.fillPoly(img, [np.array(pts, np.int32)], col, cv2.LINE_AA)
    elif inst == "piano":
        for k in range(5):
            x0 = cx - 2 * r + k * r * 4 // 5
            cv2.rectangle(img, (x0, cy - r // 2), (x0 + r * 3 // 5, cy + r), col, -1)
    elif inst == "harpsichord":
        for k in range(6):
            x0 = cx - r + k * r // 3
            cv2.line(img, (x0, cy - r), (x0, cy + r), col, 2)
    elif inst == "harp":
        for k in range(5):
            cv2.line(img, (cx, cy + r), (cx - r + k * r // 2, cy - r), col, 2, cv2.LINE_AA)
    elif inst == "strings":
        xs = np.arange(cx - 2 * r, cx + 2 * r, 3)
        ys = cy + (r / 3) * np.sin((xs - cx) / 6.0 + 8 * t)
        cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, col, 3, cv2.LINE_AA)


def render_frame(clip: SynthClip, scene: _Scene, t: float, size) -> np.ndarray:
    """One BGR uint8 frame at time ``t`` (seconds)."""
    w, h = size
    gain = 1.0 + FLASH * _activity(clip.beat_times, t, FLASH_DECAY)
    img = cv2.convertScaleAbs(scene.background, alpha=gain)
    orbit = 2 * np.pi * t * clip.tempo_bpm / 60.0 / 2.0    # one turn every two beats
    base = min(w, h) / 14
    for k, inst in enumerate(clip.instruments):
        ax, ay = scene.anchors[inst]
        ang = orbit + k * 1.3
        cx, cy = int(ax + 10 * np.cos(ang)), int(ay + 10 * np.sin(ang))
        act = _activity(clip.onsets.get(inst, np.zeros(0)), t)
        _draw(img, inst, cx, cy, base * (0.6 + 0.8 * act), t)
    return img


def scene_index(scene_cuts, t: float) -> int:
    return int(np.searchsorted(np.asarray(scene_cuts, dtype=np.float64), t, side="right"))


def check_size(size) -> tuple[int, int]:
    w, h = (int(size[0]), int(size[1]))
    if w % 2 or h % 2 or w < 16 or h < 16:
        raise VcmrError(f"video size {w}x{h} must be even and at least 16x16 (H.264 needs even sizes)")
    return w, h


def write_music_video(path, clip: SynthClip, scene_cuts, size=(320, 240), fps: int = 25,
                      with_audio: bool = True, seed: int = 0) -> Path:
    """Write ``clip`` with matching pictures to ``path`` (.mp4: H.264+AAC, .mkv: H.264+AAC,
    .webm: VP9+Opus). Scenes change abruptly at each time (seconds) in ``scene_cuts``."""
    path = Path(path)
    if path.suffix.lower() not in CONTAINERS:
        raise VcmrError(f"{path}: unsupported video container {path.suffix!r}; "
                        f"use one of {', '.join(CONTAINERS)}")
    w, h = check_size(size)
    fmt, vcodec, acodec, arate = CONTAINERS[path.suffix.lower()]
    cuts = sorted(float(c) for c in scene_cuts)
    rng = np.random.default_rng(seed)
    scenes = [_Scene(clip, k, (w, h), rng) for k in range(len(cuts) + 1)]
    n_frames = int(round(clip.duration * fps))
    with atomic_output(path) as tmp, av.open(str(tmp), "w", format=fmt) as container:
        vs = container.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.thread_count = 1      # deterministic bytes and no oversubscription in worker pools
        vs.options = ({"preset": "ultrafast", "crf": "23"} if vcodec == "libx264"
                      else {"deadline": "realtime", "cpu-used": "8", "crf": "35", "b": "0"})
        audio = _audio_writer(container, clip, acodec, arate) if with_audio else None
        for i in range(n_frames):
            t = i / fps
            frame = av.VideoFrame.from_ndarray(
                render_frame(clip, scenes[scene_index(cuts, t)], t, (w, h)), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(vs.encode(frame))
            if audio:
                audio.write_until((i + 1) / fps)
        container.mux(vs.encode(None))
        if audio:
            audio.finish()
    return path


class _audio_writer:
    """Feeds the clip's audio to the encoder in step with the video frames (interleaved)."""

    def __init__(self, container, clip: SynthClip, codec: str, rate: int | None):
        self.rate = rate or clip.sample_rate
        self.x = resample(clip.audio, clip.sample_rate, self.rate)
        self.container, self.pos = container, 0
        options = {"aac_coder": "fast"} if codec == "aac" else {}   # 4x faster than twoloop
        self.stream = container.add_stream(codec, rate=self.rate, layout="mono", options=options)
        self.stream.thread_count = 1

    def write_until(self, t: float):
        end = min(len(self.x), int(round(t * self.rate)))
        if end <= self.pos:
            return
        frame = av.AudioFrame.from_ndarray(self.x[None, self.pos:end].astype(np.float32),
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts = self.rate, self.pos
        frame.time_base = Fraction(1, self.rate)
        self.container.mux(self.stream.encode(frame))
        self.pos = end

    def finish(self):
        self.write_until(len(self.x) / self.rate)
        self.container.mux(self.stream.encode(None))


# ------------------------------------------------------------------- broken files on purpose
def truncate_file(path, keep: float = 0.5) -> Path:
    """Cut ``path`` to its first ``keep`` fraction of bytes, as an interrupted download would.
    An MP4 written by :func:`write_music_video` keeps its index (moov) at the end, so the
    result cannot be opened."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def corrupt_file(path, seed: int = 0, n_bytes: int = 4096) -> Path:
    """Overwrite the first ``n_bytes`` (container header) with random bytes."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    n = min(n_bytes, len(data))
    data[:n] = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def decode_frames(path, size=None) -> tuple[np.ndarray, float]:
    """All frames of a video file as a (n, h, w, 3) RGB uint8 array and the frame rate; a small
    helper for tests and for looking at what was written."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24", **({"width": size[0], "height": size[1]} if size else {}))
                  for f in container.decode(stream)]
    return np.stack(frames), fps


__all__ = ["write_music_video", "render_frame", "truncate_file", "corrupt_file", "decode_frames",
           "scene_index", "CONTAINERS", "INSTRUMENTS"]
