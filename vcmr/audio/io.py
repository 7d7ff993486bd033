"""Audio reading and resampling (soundfile + soxr; PyAV for video containers when installed)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4a", ".aac")


class AudioReadError(RuntimeError):
    """A file could not be decoded; the message names the file and the cause."""


def to_mono(x: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) float32 by averaging channels."""
    x = np.asarray(x, dtype=np.float32)
    return x.mean(axis=1) if x.ndim == 2 else x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling along the first axis (soxr, 'HQ'); no-op when rates match."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    import soxr
    return soxr.resample(np.asarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def _read_with_av(path: Path) -> tuple[np.ndarray, int]:
    try:
        import av
    except ImportError as e:  # core install: no PyAV
        raise AudioReadError(
            f"{path}: soundfile cannot read this format; install the video extra "
            f"(pip install 'vcmr[video]') to decode it with PyAV") from e
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioReadError(f"{path}: the file has no audio stream")
            stream = container.streams.audio[0]
            sr = stream.codec_context.sample_rate
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=sr)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray()[0])
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray()[0])
    except AudioReadError:
        raise
    except Exception as e:  # PyAV raises many error types for broken files
        raise AudioReadError(f"{path}: cannot decode audio ({type(e).__name__}: {e})") from e
    if not chunks:
        raise AudioReadError(f"{path}: the audio stream is empty")
    return np.concatenate(chunks).astype(np.float32), sr


def read_audio(path: str | Path, sample_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 in [-1, 1]; mono (samples,) by default; resampled if asked.

    Returns ``(audio, sample_rate)``. Raises AudioReadError (never a bare decoder error).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        x, sr = _read_with_av(path)
    else:
        try:
            x, sr = sf.read(str(path), dtype="float32", always_2d=False)
        except Exception as e:
            try:
                x, sr = _read_with_av(path)
            except AudioReadError:
                raise AudioReadError(f"{path}: cannot decode audio ({type(e).__name__}: {e})") from e
    if mono:
        x = to_mono(x)
    if x.shape[0] == 0:
        raise AudioReadError(f"{path}: the file holds no samples")
    if sample_rate is not None and sample_rate != sr:
        x, sr = resample(x, sr, sample_rate), sample_rate
    return x, sr


def audio_info(path: str | Path) -> tuple[int, int]:
    """(frames, sample_rate) without decoding the whole file (soundfile formats only)."""
    info = sf.info(str(path))
    return info.frames, info.samplerate


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name, then rename (never half-written).

    Plain ``os.write`` calls, so a full disk surfaces as ``OSError(ENOSPC)`` naming the file
    (libsndfile reports it as "System error."), and the temporary is removed on any failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)
        raise


def write_wav(path: str | Path, x: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV, encoded in memory and written with :func:`write_bytes_atomic`."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(x, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")
    write_bytes_atomic(path, buf.getvalue())


def find_audio_files(root: str | Path, extensions=AUDIO_EXTENSIONS) -> list[Path]:
    """All files under ``root`` (recursively) with one of ``extensions``, sorted."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
