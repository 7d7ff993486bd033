"""One PyAV pass over the window of a video: audio at 16 kHz mono (ITU-R BS.775 downmix), frames for scene detection
(downscaled BGR) and frames sampled at a fixed rate (resized + centre-cropped RGB).

Conversions are the costly part, not decoding (measured on 720p H.264, benchmarks/README.md):
scene frames are taken from the decoded YUV planes by pixel striding (as PySceneDetect's own
downscale does, with no full-size colour conversion), and sampled frames are resized with
swscale's area filter through one reusable reformatter.

    info = probe_video("clip.mp4")
    win = decode_window("clip.mp4", start=30.0, duration=120.0, sample_fps=5, crop_size=224,
                        scene_width=160, sample_rate=16000, on_scene_frame=scanner.feed)
    win.audio.shape        # (1920000,) float32
    win.frames.shape       # (600, 224, 224, 3) uint8, frame j shows time start + (j + 0.5) / 5

Only the window is decoded: the container is seeked to just before ``start`` and decoding
stops once both streams have passed ``start + duration``. PyAV (``av``) and OpenCV (``cv2``)
are imported on use: they belong to the optional ``video`` extra.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from vcmr.audio.io import av_frame_mono, limit_peak, resample
from vcmr.errors import VcmrError

__all__ = ["VideoInfo", "DecodedWindow", "DecodeError", "probe_video", "decode_window",
           "window_start"]

SEEK_MARGIN_S = 1.0  # seek this far before the window so interleaved audio is not missed


class DecodeError(VcmrError):
    """A video cannot be decoded. ``reason`` is the manifest reason (decode_error, no_audio...)."""

    def __init__(self, message: str, reason: str = "decode_error"):
        super().__init__(message)
        self.reason = reason


@dataclass
class VideoInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    has_audio: bool


@dataclass
class DecodedWindow:
    start_s: float
    duration_s: float
    audio: np.ndarray  # (duration * sample_rate,) float32 mono
    frames: np.ndarray  # (duration * sample_fps, crop, crop, 3) uint8 RGB
    n_window_frames: int  # video frames decoded inside the window
    stopped_early: bool = False  # on_scene_frame asked to stop (the clip will be dropped)
    fps: float = 0.0
    extra: dict = field(default_factory=dict)


def _open(path: Path):
    import av
    if not path.is_file():
        raise DecodeError(f"{path}: no such file", "decode_error")
    if path.stat().st_size == 0:
        raise DecodeError(f"{path}: the file is empty (0 bytes)", "decode_error")
    try:
        return av.open(str(path))
    except Exception as e:  # PyAV raises InvalidDataError, OSError, ... for broken files
        raise DecodeError(f"{path}: cannot open ({type(e).__name__}: {e})", "decode_error") from e


def _duration(container) -> float:
    if container.duration is not None:
        return container.duration / 1_000_000
    v = container.streams.video[0]
    if v.duration is not None and v.time_base is not None:
        return float(v.duration * v.time_base)
    return 0.0


def probe_video(path: str | Path) -> VideoInfo:
    """Duration, frame rate, size and audio presence from the container headers (no decoding)."""
    path = Path(path)
    with _open(path) as c:
        if not c.streams.video:
            raise DecodeError(f"{path}: the file has no video stream", "no_video")
        v = c.streams.video[0]
        fps = float(v.average_rate or v.guessed_rate or 0) or 25.0
        return VideoInfo(duration_s=_duration(c), fps=fps, width=v.codec_context.width,
                         height=v.codec_context.height, has_audio=bool(c.streams.audio))


def window_start(duration_s: float, window_s: float, fps: float) -> float:
    """Start of the middle ``window_s`` seconds, rounded down to a whole video frame."""
    start = max(0.0, (duration_s - window_s) / 2)
    return math.floor(start * fps + 1e-6) / fps


def _scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    if width <= height:
        return short_side, max(short_side, round(height * short_side / width))
    return max(short_side, round(width * short_side / height)), short_side


class _Sampler:
    """Picks, for each sample time start + (j + 0.5) / fps, the frame on screen at that time.

    A frame is on screen from its own time until the next frame's time, so the samples that
    fall in that interval are filled when the next frame arrives (or at ``finish``). The only
    state is the previous frame and its converted image, held together in one object: the
    image can never be taken for another frame (a cache keyed on ``id(frame)`` did that, as
    Python reuses the ids of freed frames).
    """

    def __init__(self, start: float, n: int, fps: int, crop: int):
        self.times = start + (np.arange(n) + 0.5) / fps
        self.crop = crop
        self.out = np.zeros((n, crop, crop, 3), np.uint8)
        self.j = 0
        self.prev: Optional[_Shown] = None
        # one reformatter for the whole window: FFmpeg then builds its scaling filter once
        # (frame.reformat makes a new one per call, measured ~2x slower here)
        from av.video.reformatter import VideoReformatter
        self._reformatter = VideoReformatter()

    def _rgb(self, frame) -> np.ndarray:
        w, h = _scaled_size(frame.width, frame.height, self.crop)
        img = self._reformatter.reformat(frame, width=w, height=h, format="rgb24",
                                         interpolation="AREA").to_ndarray()
        y, x = (h - self.crop) // 2, (w - self.crop) // 2
        return img[y:y + self.crop, x:x + self.crop]

    def _fill_until(self, shown: "_Shown", end: float) -> None:
        """Samples before ``end`` show ``shown`` (converted once, on first use)."""
        while self.j < len(self.times) and self.times[self.j] < end:
            if shown.image is None:
                shown.image = self._rgb(shown.frame)
            self.out[self.j] = shown.image
            self.j += 1

    def push(self, t: float, frame) -> None:
        # samples before the first decoded frame show that first frame
        self._fill_until(self.prev or _Shown(t, frame), t)
        self.prev = _Shown(t, frame)

    def finish(self) -> int:
        """Fill the remaining samples with the last frame; returns how many had a real frame."""
        filled = self.j
        if self.prev is not None:
            self._fill_until(self.prev, self.prev.time + 1.0)
        return max(filled, self.j)


@dataclass
class _Shown:
    """A decoded frame, the time it appears, and its sampled image once converted."""
    time: float
    frame: object
    image: Optional[np.ndarray] = None


_I420 = ("yuv420p", "yuvj420p")


def scene_step(width: int, scene_width: int) -> int:
    """Even pixel stride that brings ``width`` down to about ``scene_width``."""
    return max(2, 2 * int(round(width / max(1, scene_width) / 2)))


def scene_frame(frame, step: int, reformatter=None) -> np.ndarray:
    """Small BGR image of a decoded frame for scene detection: every ``step``-th pixel.

    For 8-bit 4:2:0 frames (nearly all H.264/VP9 video) the luma and chroma planes are read in
    place and only the small image is colour-converted; other formats go through swscale
    (``reformatter``: an ``av.video.reformatter.VideoReformatter`` kept for the whole video).
    """
    if frame.format.name not in _I420 or min(frame.width, frame.height) < 2 * step:
        from av.video.reformatter import VideoReformatter
        w = max(2, frame.width // step // 2 * 2)
        h = max(2, frame.height // step // 2 * 2)
        return (reformatter or VideoReformatter()).reformat(
            frame, width=w, height=h, format="bgr24", interpolation="FAST_BILINEAR").to_ndarray()
    import cv2
    y, u, v = (np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:p.height, :p.width]
               for p in frame.planes)
    ys = y[::step, ::step]
    h, w = ys.shape[0] // 2 * 2, ys.shape[1] // 2 * 2
    n = h * w
    flat = np.empty(n * 3 // 2, np.uint8)  # I420: Y plane, then U and V at half resolution
    flat[:n].reshape(h, w)[:] = ys[:h, :w]
    # every step-th chroma sample sits under every 2*step-th pixel (chroma is half resolution)
    flat[n:n + n // 4].reshape(h // 2, w // 2)[:] = u[::step, ::step][:h // 2, :w // 2]
    flat[n + n // 4:].reshape(h // 2, w // 2)[:] = v[::step, ::step][:h // 2, :w // 2]
    i420 = flat.reshape(h * 3 // 2, w)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


class _WindowPass:
    """The state of one demux pass over a window: video frames go to the sampler and the
    scene callback, audio frames are converted to mono float chunks."""

    def __init__(self, start: float, end: float, sampler: _Sampler, step: int,
                 on_scene_frame: Optional[Callable[[np.ndarray, int, float], bool]]):
        self.start, self.end, self.sampler, self.step = start, end, sampler, step
        import av
        from av.video.reformatter import VideoReformatter
        self.on_scene_frame = on_scene_frame
        self.scene_reformatter = VideoReformatter()  # used for non-4:2:0 video only
        # Only convert to float here (keeping the channel layout), mix to mono with the
        # layout's names (vcmr.audio.io.to_mono: ITU-R BS.775 weights, stereo = mean) and
        # resample the whole window once at the end with soxr: per-frame FFmpeg resampling cost
        # more than the audio decode, and FFmpeg's stereo->mono sums at -3 dB (can clip).
        self.to_float = av.AudioResampler(format="fltp")
        self.audio_chunks: list[np.ndarray] = []
        self.audio_t0: Optional[float] = None
        self.audio_rate = 0
        self.audio_done = self.video_done = self.stopped = False
        self.n_window = 0

    def run(self, container, vs, as_) -> None:
        if self.start > SEEK_MARGIN_S:
            container.seek(int((self.start - SEEK_MARGIN_S) * 1_000_000), backward=True)
        for packet in container.demux(vs, as_):
            if packet.stream is vs and self.video_done or packet.stream is as_ and self.audio_done:
                continue
            for frame in packet.decode():
                t = frame.time
                if t is None:
                    continue
                if packet.stream is vs:
                    if not self._video(frame, t):
                        break
                else:
                    self._audio(frame, t)
            if self.stopped or (self.video_done and self.audio_done):
                break

    def _video(self, frame, t: float) -> bool:
        """False once the window's video is complete."""
        if t >= self.end - 1e-6:
            self.video_done = True
            return False
        self.sampler.push(t, frame)
        if t >= self.start - 1e-6:
            if self.on_scene_frame is not None:
                small = scene_frame(frame, self.step, self.scene_reformatter)
                self.stopped = bool(self.on_scene_frame(small, self.n_window, t))
            self.n_window += 1
        return True

    def _audio(self, frame, t: float) -> None:
        if self.audio_t0 is None:
            self.audio_t0, self.audio_rate = t, frame.sample_rate
        for out in self.to_float.resample(frame):
            self.audio_chunks.append(av_frame_mono(out))
        if t + frame.samples / frame.sample_rate >= self.end + 0.1:
            self.audio_done = True


def _streams(container, path: Path, threads: bool):
    """(video stream, audio stream) of the container, or a DecodeError naming what lacks."""
    if not container.streams.video:
        raise DecodeError(f"{path}: the file has no video stream", "no_video")
    if not container.streams.audio:
        raise DecodeError(f"{path}: the file has no audio stream", "no_audio")
    vs = container.streams.video[0]
    if threads:
        vs.thread_type = "AUTO"
    return vs, container.streams.audio[0]


def decode_window(path: str | Path, start: float, duration: float, *, sample_fps: int,
                  crop_size: int, scene_width: int = 160, sample_rate: int = 16000,
                  on_scene_frame: Optional[Callable[[np.ndarray, int, float], bool]] = None,
                  threads: bool = True) -> DecodedWindow:
    """Decode ``[start, start + duration)`` of ``path`` once (see the module docstring).

    ``on_scene_frame(bgr, index, time)`` receives every video frame of the window downscaled
    to ``scene_width``; when it returns True decoding stops early (``stopped_early``).
    Raises DecodeError with a manifest reason when the file is broken or too short.
    """
    path = Path(path)
    end = start + duration
    sampler = _Sampler(start, int(round(duration * sample_fps)), sample_fps, crop_size)
    with _open(path) as c:
        vs, as_ = _streams(c, path, threads)
        fps = float(vs.average_rate or vs.guessed_rate or 25)
        win = _WindowPass(start, end, sampler, scene_step(vs.codec_context.width, scene_width),
                          on_scene_frame)
        try:
            win.run(c, vs, as_)
        except Exception as e:
            raise DecodeError(f"{path}: decoding failed ({type(e).__name__}: {e})", "decode_error") from e
    if win.stopped:
        return DecodedWindow(start, duration, np.zeros(0, np.float32), sampler.out[:0],
                             win.n_window, stopped_early=True, fps=fps)
    if win.n_window == 0:
        raise DecodeError(f"{path}: no video frame in the window {start:.1f}-{end:.1f} s "
                          f"(truncated file?)", "decode_error")
    got = sampler.finish()
    if got < len(sampler.times):
        raise DecodeError(f"{path}: video stream ends {(len(sampler.times) - got) / sample_fps:.1f} s "
                          f"before the end of the window (truncated file?)", "decode_error")
    audio = _trim_audio(_mono_resampled(win.audio_chunks, win.audio_rate, sample_rate), win.audio_t0,
                        start, int(round(duration * sample_rate)), sample_rate, path)
    return DecodedWindow(start, duration, audio, sampler.out, win.n_window, fps=fps)


def _mono_resampled(chunks: list[np.ndarray], rate_in: int, rate_out: int) -> Optional[np.ndarray]:
    """Mono float chunks at ``rate_in`` -> one float32 signal at ``rate_out`` (scaled down
    only if the multichannel downmix went above full scale)."""
    if not chunks:
        return None
    return resample(limit_peak(np.concatenate(chunks).astype(np.float32)), rate_in, rate_out)


def _trim_audio(audio: Optional[np.ndarray], t0, start, n_samples, sample_rate, path) -> np.ndarray:
    if t0 is None or audio is None or not len(audio):
        raise DecodeError(f"{path}: the audio stream has no samples in the window", "no_audio")
    skip = int(round((start - t0) * sample_rate))
    if skip < 0:  # audio starts after the window start: pad with silence
        audio = np.concatenate([np.zeros(-skip, np.float32), audio])
        skip = 0
    audio = audio[skip:skip + n_samples]
    missing = n_samples - len(audio)
    if missing > int(0.5 * sample_rate):
        raise DecodeError(f"{path}: audio ends {missing / sample_rate:.1f} s before the end of "
                          f"the window (truncated file?)", "decode_error")
    if missing > 0:  # codec padding / rounding: at most half a second of silence
        audio = np.concatenate([audio, np.zeros(missing, np.float32)])
    return np.ascontiguousarray(audio, dtype=np.float32)
