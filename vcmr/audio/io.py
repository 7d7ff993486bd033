"""Audio reading and resampling (soundfile + soxr; PyAV for video containers when installed)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from vcmr.paths import walk_files, write_bytes_atomic

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4a", ".aac")


class AudioReadError(RuntimeError):
    """A file could not be decoded; the message names the file and the cause."""


# Header checks before any large allocation (a lying header must not cost gigabytes): the sample
# rate of real audio lies in [1 kHz, 768 kHz], and the decoded (then resampled) signal holds at
# most MAX_SAMPLES_PER_BYTE samples per byte of the file (16-bit PCM: 0.5; FLAC of silence at
# its largest block: a few thousand).
MIN_RATE, MAX_RATE = 1_000, 768_000
MAX_SAMPLES_PER_BYTE = 4096


def check_rate(path: Path, sr: int) -> None:
    """AudioReadError unless the header's sample rate ``sr`` is in [MIN_RATE, MAX_RATE]."""
    if not MIN_RATE <= sr <= MAX_RATE:
        raise AudioReadError(f"{path}: the header says {sr} Hz, outside {MIN_RATE} Hz to "
                             f"{MAX_RATE} Hz; the file is damaged or not audio (re-encode it)")


def check_length(path: Path, n_frames: int, sr: int, sample_rate: int | None) -> None:
    """AudioReadError when ``n_frames`` at ``sr`` (resampled to ``sample_rate``) holds more
    samples than the file's size allows."""
    n_out = n_frames if sample_rate is None else -(-n_frames * sample_rate // sr)
    size = path.stat().st_size
    if n_out > MAX_SAMPLES_PER_BYTE * max(size, 1):
        raise AudioReadError(f"{path}: {n_frames} frames at {sr} Hz ({n_out} samples after "
                             f"resampling) is more than a {size}-byte file can hold; the header "
                             f"is damaged (re-encode the file)")


# Mono downmix, ITU-R BS.775's fold-down to one channel: M = 0.7071 (L + R) + C + 0.5 (Ls + Rs),
# LFE dropped (surround pairs of 7.1 at 0.5 each). Every coefficient is then scaled by 1/sqrt(2)
# so that stereo stays the mean of its two channels (the usual mono of music, never above full
# scale): 5.1 -> 0.5 L + 0.5 R + 0.707 C + 0.354 Ls + 0.354 Rs. A voice in the centre channel
# thus comes out 3 dB down, exactly as loud as the same voice mixed to the phantom centre of a
# stereo track (L = R = 0.707 x, equal power); plain averaging of 5.1 put it 15.6 dB down.
_SQRT1_2 = 0.7071067811865476
_DOWNMIX = {"FL": 0.5, "FR": 0.5, "FC": _SQRT1_2, "LFE": 0.0, "LFE2": 0.0, "BC": 0.5,
            "FLC": 0.5, "FRC": 0.5}
_SURROUND = 0.5 * _SQRT1_2  # any other named channel: side, back, top, wide
# channel order of a file that does not name its channels: WAV/FLAC (SMPTE) and Vorbis/Opus
WAV_ORDER = {3: ("FL", "FR", "FC"), 4: ("FL", "FR", "BL", "BR"), 5: ("FL", "FR", "FC", "BL", "BR"),
             6: ("FL", "FR", "FC", "LFE", "BL", "BR"), 7: ("FL", "FR", "FC", "LFE", "BC", "SL", "SR"),
             8: ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR")}
VORBIS_ORDER = {3: ("FL", "FC", "FR"), 4: ("FL", "FR", "BL", "BR"), 5: ("FL", "FC", "FR", "BL", "BR"),
                6: ("FL", "FC", "FR", "BL", "BR", "LFE"), 7: ("FL", "FC", "FR", "SL", "SR", "BC", "LFE"),
                8: ("FL", "FC", "FR", "SL", "SR", "BL", "BR", "LFE")}


def downmix_weights(n_channels: int, names=None) -> np.ndarray:
    """Per-channel weights of the mono downmix (see above). ``names``: FFmpeg channel names
    (FL, FR, FC, LFE, BL, SL...); None or unnamed ("NONE") channels take the WAV order."""
    if n_channels == 1:
        return np.ones(1, np.float32)
    if n_channels == 2:
        return np.full(2, 0.5, np.float32)
    if names is None or len(names) != n_channels or any(n in ("NONE", "", None) for n in names):
        names = WAV_ORDER.get(n_channels)
    if names is None:  # no standard layout for this count: plain average
        return np.full(n_channels, 1.0 / n_channels, np.float32)
    return np.array([_DOWNMIX.get(n, _SURROUND) for n in names], np.float32)


def to_mono(x: np.ndarray, names=None, limit: bool = True) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) float32 with the downmix above.

    ``limit``: a multichannel downmix can exceed full scale when several channels are loud at
    once; the whole signal is then scaled to peak at 1 (one gain, never per sample).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x
    mono = x @ downmix_weights(x.shape[1], names)
    return limit_peak(mono) if limit and x.shape[1] > 2 else mono


def limit_peak(x: np.ndarray) -> np.ndarray:
    """``x`` scaled down to peak at 1 when it peaks above (full scale); else unchanged."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return x / peak if peak > 1.0 else x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling along the first axis (soxr, 'HQ'); no-op when rates match."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    import soxr
    return soxr.resample(np.asarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def _read_with_av(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 from the first audio stream of any container PyAV opens; channels are
    mixed by :func:`to_mono` with the layout FFmpeg reports (not FFmpeg's own downmix)."""
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
            to_float = av.AudioResampler(format="fltp")  # keeps the channel layout
            chunks = []
            for frame in container.decode(stream):
                for out in to_float.resample(frame):
                    chunks.append(av_frame_mono(out))
            for out in to_float.resample(None):
                chunks.append(av_frame_mono(out))
    except AudioReadError:
        raise
    except Exception as e:  # PyAV raises many error types for broken files
        raise AudioReadError(f"{path}: cannot decode audio ({type(e).__name__}: {e})") from e
    if not chunks:
        raise AudioReadError(f"{path}: the audio stream is empty")
    return limit_peak(np.concatenate(chunks).astype(np.float32)), sr


def av_frame_mono(frame) -> np.ndarray:
    """A planar float PyAV audio frame -> mono (downmix weights from its channel names; the
    peak limit is left to the caller, who sees the whole signal)."""
    names = [ch.name for ch in frame.layout.channels]
    return to_mono(frame.to_ndarray().T, names, limit=False)


def soundfile_channel_names(fmt: str, n_channels: int):
    """Channel names of an ``n_channels`` file that soundfile reads as format ``fmt`` (its
    ``.format``): libsndfile keeps the Vorbis/Opus order for Ogg (checked: 6-channel Ogg,
    channel 2 is FR) and the WAV order otherwise; None where no standard layout exists."""
    return (VORBIS_ORDER if fmt == "OGG" else WAV_ORDER).get(n_channels)


def _read_soundfile(path: Path, mono: bool, sample_rate: int | None) -> tuple[np.ndarray, int]:
    with sf.SoundFile(str(path)) as f:
        sr, fmt = f.samplerate, f.format
        check_rate(path, sr)
        check_length(path, f.frames, sr, sample_rate)
        x = f.read(dtype="float32", always_2d=True)
    if not mono:
        return (x[:, 0] if x.shape[1] == 1 else x), sr
    return to_mono(x, soundfile_channel_names(fmt, x.shape[1])), sr


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
            x, sr = _read_soundfile(path, mono, sample_rate)
        except AudioReadError:
            raise
        except Exception as e:
            try:
                x, sr = _read_with_av(path)
            except AudioReadError:
                raise AudioReadError(f"{path}: cannot decode audio ({type(e).__name__}: {e})") from e
    if x.shape[0] == 0:
        raise AudioReadError(f"{path}: the file holds no samples")
    check_rate(path, sr)
    check_length(path, x.shape[0], sr, sample_rate)
    if sample_rate is not None and sample_rate != sr:
        x, sr = resample(x, sr, sample_rate), sample_rate
    return x, sr


def audio_info(path: str | Path) -> tuple[int, int]:
    """(frames, sample_rate) without decoding the whole file (soundfile formats only)."""
    info = sf.info(str(path))
    return info.frames, info.samplerate


def write_wav(path: str | Path, x: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV, encoded in memory and written with :func:`write_bytes_atomic`."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(x, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")
    write_bytes_atomic(path, buf.getvalue())


def find_audio_files(root: str | Path, extensions=AUDIO_EXTENSIONS,
                     on_note: Callable[[str], None] | None = None) -> list[Path]:
    """All files under ``root`` (recursively) with one of ``extensions``, sorted, by the one
    symlink rule (``vcmr.paths.walk_files``: links followed only inside ``root``, each real file
    once). Links not followed are reported once, through ``on_note`` (default: a warning)."""
    walk = walk_files(root)
    note = walk.skipped_note(root)
    if note:
        if on_note is None:
            warnings.warn(note, stacklevel=2)
        else:
            on_note(note)
    return [p for p in walk.files if p.suffix.lower() in extensions]
