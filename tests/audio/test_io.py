import numpy as np
import pytest
import soundfile as sf

from vcmr.audio.io import AudioReadError, find_audio_files, read_audio, resample, write_wav


def _sine(freq, sr, seconds, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_read_formats_mono_resampled(tmp_path, fmt):
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(str(path), _sine(440, 44100, 1.0, channels=2), 44100, format=fmt)
    x, sr = read_audio(path, 16000)
    assert sr == 16000 and x.ndim == 1 and x.dtype == np.float32
    assert abs(len(x) - 16000) < 1200  # mp3 adds encoder padding
    spec = np.abs(np.fft.rfft(x[2000:14000]))
    assert abs(np.argmax(spec) * 16000 / 12000 - 440) < 5


def test_resample_keeps_frequency():
    y = resample(_sine(1000, 22050, 1.0), 22050, 16000)
    assert len(y) == 16000
    assert abs(np.argmax(np.abs(np.fft.rfft(y))) - 1000) <= 1


def test_unreadable_and_missing_files_are_clear(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioReadError, match="bad.wav"):
        read_audio(bad)
    with pytest.raises(AudioReadError, match="no such file"):
        read_audio(tmp_path / "missing.flac")


def test_write_wav_atomic_and_16bit(tmp_path):
    path = tmp_path / "sub" / "x.wav"
    write_wav(path, _sine(100, 16000, 0.5), 16000)
    info = sf.info(str(path))
    assert info.subtype == "PCM_16" and info.frames == 8000
    assert not list(tmp_path.rglob("*.tmp"))


def test_find_audio_files_recursive(tmp_path):
    for rel in ("a.wav", "d/b.mp3", "d/e/c.flac", "d/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [p.name for p in find_audio_files(tmp_path)] == ["a.wav", "b.mp3", "c.flac"]
