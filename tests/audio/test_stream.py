"""Audio decoded and windowed a block at a time (issue 24 item 3): the same embeddings as the
whole-file path, and memory bounded by construction (the decoder is asked for bounded blocks)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from embed_helpers import SR, music, tiny_model
from vcmr.audio import stream as stream_mod
from vcmr.audio.io import read_audio, resample
from vcmr.audio.stream import AudioStream, array_blocks, resample_blocks
from vcmr.audio.windows import WindowStream
from vcmr.inference import embed_file, segment_audio

MINUTES = 3


@pytest.fixture(scope="module")
def long_song():
    """MINUTES of synthetic music at 44.1 kHz, stereo (left and right differ)."""
    x = resample(music(30.0, SR, seed=7), SR, 44100)
    x = np.tile(x, MINUTES * 2)
    return np.stack([x, 0.5 * np.roll(x, 1000)], axis=1)


def _whole_file(model, path):
    """The old way: the whole file decoded and resampled, then every window in one array."""
    x, _ = read_audio(path, sample_rate=model.sample_rate)
    windows, starts = segment_audio(x, model.segment_samples)
    with torch.no_grad():
        return model.embed_segments(windows).numpy(), starts


@pytest.mark.parametrize("overlap,pad_last", [(0.0, True), (0.5, True), (0.37, False), (0.9, True)])
def test_window_stream_equals_segment_audio_for_any_blocks(overlap, pad_last):
    rng = np.random.default_rng(0)
    for n in [1, 9, 10, 11, 57, 100, 1003]:
        x = rng.standard_normal(n).astype(np.float32)
        windows, starts = segment_audio(x, 10, overlap, pad_last)
        cuts = np.sort(rng.choice(np.arange(1, n + 1), size=min(n, 5), replace=False))
        blocks = np.split(x, cuts)
        got = list(WindowStream(blocks, 10, 3, overlap=overlap, pad_last=pad_last))
        assert all(len(s) <= 3 for s, _ in got)
        np.testing.assert_array_equal(np.concatenate([s for s, _ in got]), starts)
        np.testing.assert_array_equal(np.concatenate([w for _, w in got]), windows)


def test_streaming_resampler_equals_the_whole_signal_call():
    x = resample(music(20.0, SR, seed=3), SR, 44100)
    whole = resample(x, 44100, SR)
    streamed = np.concatenate(list(resample_blocks(array_blocks(x, 4096), 44100, SR)))
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_a_long_wav_streams_in_bounded_blocks_and_embeds_like_the_whole_file(long_song, tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, long_song, 44100, subtype="FLOAT")
    model = tiny_model("music")
    expected, starts = _whole_file(model, path)

    asked = []
    real_read = sf.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):  # the real reader, calls recorded
        asked.append(frames)
        return real_read(self, frames, *args, **kwargs)
    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    monkeypatch.setattr(stream_mod, "BLOCK_FRAMES", 1 << 14)
    tracemalloc.start()
    emb = embed_file(path, model)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert asked and all(0 < f <= 1 << 14 for f in asked)  # never "the whole file" (-1)
    assert sum(asked) >= len(long_song)
    decoded_bytes = long_song.nbytes  # what reading the whole file would hold (float32 stereo)
    assert peak < decoded_bytes / 8, (peak, decoded_bytes)
    np.testing.assert_array_equal(np.round(emb.starts * model.sample_rate).astype(int), starts)
    np.testing.assert_allclose(emb.embeddings, expected, rtol=1e-4, atol=1e-5)


def test_a_long_aac_file_through_pyav_streams_and_embeds_like_the_whole_file(long_song, tmp_path, monkeypatch):
    av = pytest.importorskip("av")
    path = tmp_path / "long.m4a"
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=44100, layout="stereo")
        pcm = (long_song * 0.9).astype(np.float32)
        for i in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[i:i + 1024].T), format="fltp",
                                               layout="stereo")
            frame.sample_rate = 44100
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)
    model = tiny_model("music")
    expected, _ = _whole_file(model, path)
    monkeypatch.setattr(stream_mod, "BLOCK_FRAMES", 1 << 14)
    stream = AudioStream(path, model.sample_rate)
    sizes = [len(b) for b in stream._av_blocks()]
    assert max(sizes) <= (1 << 14) + 2048  # one block plus at most one codec frame
    tracemalloc.start()
    emb = embed_file(path, model)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < long_song.nbytes / 8, peak
    np.testing.assert_allclose(emb.embeddings, expected, rtol=1e-4, atol=1e-5)
