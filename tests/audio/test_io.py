import numpy as np
import pytest
import soundfile as sf

from embed_helpers import patch_wav_rate
from vcmr.audio import io as audio_io
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


# ---------------------------------------------------------------- multichannel downmix
# ITU-R BS.775 mono fold-down, M = 0.7071 (L + R) + C + 0.5 (Ls + Rs), LFE dropped, scaled by
# 1/sqrt(2) so that stereo is the mean (written out here, independently of vcmr's table)
BS775_51 = {"FL": 0.5, "FR": 0.5, "FC": 0.5 ** 0.5, "LFE": 0.0, "BL": 0.5 ** 1.5, "BR": 0.5 ** 1.5}


def _tone(n=16000, amp=0.5):
    return (amp * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)


@pytest.mark.parametrize("fmt, order", [
    ("WAV", ("FL", "FR", "FC", "LFE", "BL", "BR")),
    ("FLAC", ("FL", "FR", "FC", "LFE", "BL", "BR")),
    ("OGG", ("FL", "FC", "FR", "BL", "BR", "LFE")),  # Vorbis channel order
])
@pytest.mark.parametrize("channel", ["FC", "FL", "LFE", "BR"])
def test_51_downmix_weights_each_channel(tmp_path, fmt, order, channel):
    """A tone in one channel of a 5.1 file comes out at that channel's BS.775 weight: the
    centre 3 dB down (plain averaging: 15.6 dB down), the LFE not at all."""
    x = np.zeros((16000, 6), np.float32)
    x[:, order.index(channel)] = _tone()
    path = tmp_path / f"six.{fmt.lower()}"
    sf.write(str(path), x, 16000, format=fmt)
    y, _ = read_audio(path)
    src = sf.read(str(path), dtype="float32")[0][:, order.index(channel)]  # decoded (Vorbis: lossy)
    assert np.abs(y - BS775_51[channel] * src).max() < 1e-6
    if channel == "FC":
        assert 20 * np.log10(np.std(y) / np.std(src)) == pytest.approx(-3.01, abs=0.01)


def test_downmix_keeps_stereo_the_mean_and_never_clips(tmp_path):
    st = np.stack([_tone(), 0.2 * _tone()], 1)
    sf.write(str(tmp_path / "st.wav"), st, 16000, subtype="FLOAT")
    y, _ = read_audio(tmp_path / "st.wav")
    assert np.abs(y - st.mean(1)).max() < 1e-7
    loud = np.repeat(_tone(amp=0.9)[:, None], 6, 1)  # the same loud tone in every channel
    sf.write(str(tmp_path / "loud.wav"), loud, 16000, subtype="FLOAT")
    y, _ = read_audio(tmp_path / "loud.wav")
    assert np.abs(y).max() == pytest.approx(1.0, abs=1e-6)  # one gain for the whole file
    assert np.corrcoef(y, loud[:, 0])[0, 1] > 0.9999


def test_real_51_aac_downmix(real_media):
    """bigbuckbunny.mp4 (5.1 AAC): the mono equals the BS.775 mix of an independent
    per-channel PyAV decode, and stays near the centre channel's level (measured: 1.7 dB
    below it; the plain average was 13.4 dB below)."""
    import av
    path = real_media / "bigbuckbunny.mp4"
    planes, names = [], None
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            names = [ch.name for ch in frame.layout.channels]
            planes.append(frame.to_ndarray())
    x = np.concatenate(planes, 1)
    assert names == list(BS775_51)
    expected = sum(BS775_51[n] * ch for n, ch in zip(names, x))
    y, sr = read_audio(path)
    assert sr == 48000 and len(y) == len(expected)
    assert np.abs(y - expected).max() < 1e-5

    def db(v):
        return 20 * np.log10(np.sqrt(np.mean(np.square(v))))
    assert abs(db(y) - db(x[names.index("FC")])) < 3.0
    assert db(x.mean(0)) < db(x[names.index("FC")]) - 10  # what averaging did


def test_a_wav_header_saying_1_hz_is_refused_before_resampling(tmp_path):
    path = tmp_path / "one_hz.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 48000).astype(np.float32), 16000,
             subtype="PCM_16")
    patch_wav_rate(path, 1)
    assert sf.info(str(path)).samplerate == 1  # the header really says 1 Hz
    for rate in (None, 16000):
        with pytest.raises(AudioReadError, match=r"one_hz\.wav: the header says 1 Hz"):
            read_audio(path, rate)
    patch_wav_rate(path, 800_000)
    with pytest.raises(AudioReadError, match="800000 Hz"):
        read_audio(path)


def test_decoded_length_is_bounded_by_the_file_size(tmp_path, monkeypatch):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(8000, np.float32), 8000, subtype="PCM_16")  # 16 kB
    assert len(read_audio(path, 16000)[0]) == 16000
    monkeypatch.setattr(audio_io, "MAX_SAMPLES_PER_BYTE", 0.5)  # 16-bit PCM at its own rate fits
    assert len(read_audio(path)[0]) == 8000
    with pytest.raises(AudioReadError, match=r"a\.wav: 8000 frames at 8000 Hz \(16000 samples"):
        read_audio(path, 16000)
