"""Audio in blocks: a file or an array decoded, mixed to mono and resampled a block at a time.

Memory stays bounded whatever the duration: the decoder is asked for at most ``BLOCK_FRAMES``
frames per call (soundfile) or gives one codec frame at a time (PyAV, gathered into blocks of
``BLOCK_FRAMES``), and resampling is soxr's streaming resampler (the same HQ filter as
:func:`vcmr.audio.io.resample`; the output equals the whole-signal call up to float rounding).

The mono mix is that of :func:`vcmr.audio.io.read_audio`, peak limit included: a file whose
mix may exceed full scale (PyAV containers, soundfile files of more than 2 channels) is first
scanned for its peak in the same bounded blocks, so the one gain is known before the first
block is given out (decoding twice costs far less than the embedding that follows).
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from vcmr.audio.io import (VIDEO_EXTENSIONS, AudioReadError, av_frame_mono, check_length,
                           check_rate, soundfile_channel_names, to_mono)

BLOCK_FRAMES = 1 << 16  # frames per decoder call (1.5 s at 44.1 kHz)


def resample_blocks(blocks, sr_in: int, sr_out: int) -> Iterator[np.ndarray]:
    """Mono float32 ``blocks`` at ``sr_in`` -> blocks at ``sr_out`` (soxr streaming, HQ)."""
    if sr_in == sr_out:
        yield from blocks
        return
    import soxr
    rs = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
    for b in blocks:
        out = rs.resample_chunk(np.ascontiguousarray(b, dtype=np.float32), last=False)
        if len(out):
            yield out
    out = rs.resample_chunk(np.zeros(0, np.float32), last=True)
    if len(out):
        yield out


def array_blocks(x: np.ndarray, block: int | None = None) -> Iterator[np.ndarray]:
    """Views of mono ``x``, ``block`` (default ``BLOCK_FRAMES``) samples at a time."""
    block = int(block or BLOCK_FRAMES)
    for i in range(0, len(x), block):
        yield x[i:i + block]


class AudioStream:
    """Mono float32 blocks of ``path`` at ``sample_rate`` (or the file's own rate when None).

    Iterate once. Afterwards ``frames`` is the count of frames decoded at the file's rate
    ``source_rate`` (so ``frames / source_rate`` is the duration) and ``n_samples`` the count
    given out. Raises AudioReadError (never a bare decoder error), as ``read_audio`` does.
    """

    def __init__(self, path: str | Path, sample_rate: int | None = None, block: int | None = None):
        self.path, self.sample_rate = Path(path), sample_rate
        self.block = int(block or BLOCK_FRAMES)
        if not self.path.is_file():
            raise AudioReadError(f"{self.path}: no such file")
        self.frames = self.n_samples = 0
        self.use_av = self.path.suffix.lower() in VIDEO_EXTENSIONS
        self.source_rate = self._open_info()

    def _open_info(self) -> int:
        if not self.use_av:
            try:
                with sf.SoundFile(str(self.path)) as f:
                    check_rate(self.path, f.samplerate)
                    check_length(self.path, f.frames, f.samplerate, self.sample_rate)
                    self.channels = f.channels
                    return f.samplerate
            except AudioReadError:
                raise
            except Exception as e:  # noqa: BLE001 - not a soundfile format: try PyAV
                self.use_av, self._sf_error = True, e
        with self._av_container() as container:
            sr = container.streams.audio[0].codec_context.sample_rate
        check_rate(self.path, sr)
        return sr

    def __iter__(self) -> Iterator[np.ndarray]:
        gain = 1.0
        if self.use_av or self.channels > 2:
            peak = max((float(np.max(np.abs(b))) for b in self._mono_blocks() if len(b)), default=0.0)
            gain = 1.0 / peak if peak > 1.0 else 1.0
        self.frames = self.n_samples = 0
        blocks = (b * np.float32(gain) if gain != 1.0 else b for b in self._mono_blocks())
        rate = self.sample_rate or self.source_rate
        for out in resample_blocks(blocks, self.source_rate, rate):
            self.n_samples += len(out)
            yield out
        if self.frames == 0:
            raise AudioReadError(f"{self.path}: the file holds no samples")

    def _mono_blocks(self) -> Iterator[np.ndarray]:
        self.frames = 0
        source = self._av_blocks() if self.use_av else self._sf_blocks()
        for b in source:
            self.frames += len(b)
            check_length(self.path, self.frames, self.source_rate, self.sample_rate)
            yield b

    def _sf_blocks(self) -> Iterator[np.ndarray]:
        with sf.SoundFile(str(self.path)) as f:
            names = soundfile_channel_names(f.format, f.channels)
            while True:
                try:
                    x = f.read(self.block, dtype="float32", always_2d=True)
                except Exception as e:  # noqa: BLE001 - libsndfile errors on a damaged file
                    raise AudioReadError(f"{self.path}: cannot decode audio after {self.frames} "
                                         f"frames ({type(e).__name__}: {e})") from e
                if not len(x):
                    return
                yield to_mono(x, names, limit=False)

    def _av_container(self):
        try:
            import av
        except ImportError as e:  # core install: no PyAV
            raise AudioReadError(f"{self.path}: soundfile cannot read this format; install the video "
                                 f"extra (pip install 'vcmr[video]') to decode it with PyAV") from e
        try:
            container = av.open(str(self.path))
        except Exception as e:  # noqa: BLE001 - PyAV raises many error types for broken files
            cause = getattr(self, "_sf_error", e)
            raise AudioReadError(f"{self.path}: cannot decode audio ({type(cause).__name__}: {cause})") from e
        if not container.streams.audio:
            container.close()
            raise AudioReadError(f"{self.path}: the file has no audio stream")
        return container

    def _av_blocks(self) -> Iterator[np.ndarray]:
        import av
        pending, n = [], 0
        with self._av_container() as container:
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="fltp")  # keeps the channel layout
            try:
                for frame in itertools.chain(container.decode(stream), [None]):  # None: flush
                    for out in to_float.resample(frame):
                        pending.append(av_frame_mono(out))
                        n += len(pending[-1])
                        if n >= self.block:
                            yield np.concatenate(pending)
                            pending, n = [], 0
            except AudioReadError:
                raise
            except Exception as e:  # noqa: BLE001 - PyAV raises many error types for broken files
                raise AudioReadError(f"{self.path}: cannot decode audio ({type(e).__name__}: {e})") from e
        if pending:
            yield np.concatenate(pending)

