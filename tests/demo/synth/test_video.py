"""Music videos: real containers, cuts found by PySceneDetect, pictures that follow the music."""
import hashlib

import cv2
import numpy as np
import pytest

av = pytest.importorskip("av")

from vcmr.errors import VcmrError
from vcmr.demo.synth.music import render_music
from vcmr.demo.synth.video import (_Scene, corrupt_file, decode_frames, render_frame, truncate_file,
                              write_music_video)

SIZE = (160, 120)


@pytest.fixture(scope="module")
def clip():
    return render_music(["piano", "drums", "beat"], 8.0, 16000, 1)


def streams(path):
    with av.open(str(path)) as c:
        return {s.type: s.codec_context.name for s in c.streams}, float(c.duration / 1e6)


@pytest.mark.parametrize("suffix, codecs", [(".mp4", {"video": "h264", "audio": "aac"}),
                                            (".mkv", {"video": "h264", "audio": "aac"}),
                                            (".webm", {"video": "vp9", "audio": "opus"})])
def test_containers_and_codecs(tmp_path, clip, suffix, codecs):
    path = write_music_video(tmp_path / f"v{suffix}", clip, [3.0], size=SIZE, fps=10)
    found, duration = streams(path)
    assert found == codecs and abs(duration - 8.0) < 0.3
    frames, fps = decode_frames(path)
    assert frames.shape == (80, 120, 160, 3) and fps == 10


def test_same_inputs_same_bytes_and_audio_roundtrip(tmp_path, clip):
    a = write_music_video(tmp_path / "a.mp4", clip, [3.0], size=SIZE, fps=10)
    b = write_music_video(tmp_path / "b.mp4", clip, [3.0], size=SIZE, fps=10)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    from vcmr.audio.io import read_audio
    x, sr = read_audio(a)
    assert sr == 16000 and abs(len(x) - len(clip.audio)) < 2048
    ref = clip.audio[8000:16000]
    lags = range(-2048, 2049)
    corr = [np.corrcoef(x[8000 + k: 16000 + k], ref)[0, 1] for k in lags]   # AAC adds a delay
    assert max(corr) > 0.9


def test_faulty_files(tmp_path, clip):
    silent = write_music_video(tmp_path / "s.mp4", clip, [], size=SIZE, fps=10, with_audio=False)
    assert streams(silent)[0] == {"video": "h264"}
    broken = truncate_file(write_music_video(tmp_path / "t.mp4", clip, [], size=SIZE, fps=10), 0.4)
    with pytest.raises(av.error.FFmpegError):
        decode_frames(broken)
    garbage = corrupt_file(write_music_video(tmp_path / "g.mp4", clip, [], size=SIZE, fps=10))
    with pytest.raises(av.error.FFmpegError):
        decode_frames(garbage)
    with pytest.raises(VcmrError, match="container"):
        write_music_video(tmp_path / "x.avi", clip, [])
    with pytest.raises(VcmrError, match="even"):
        write_music_video(tmp_path / "x.mp4", clip, [], size=(161, 120))


def test_pyscenedetect_finds_the_requested_cuts(tmp_path):
    from scenedetect import ContentDetector, detect
    cuts = [2.5, 6.0, 9.3]
    for tags in (["strings", "slow", "soft"], ["guitar", "drums", "rock", "fast", "loud"]):
        clip = render_music(tags, 12.0, 16000, 4)
        path = write_music_video(tmp_path / "c.mp4", clip, cuts, size=SIZE, fps=25)
        found = [s.seconds for s, _ in detect(str(path), ContentDetector())][1:]
        assert np.allclose(found, np.ceil(np.array(cuts) * 25) / 25), (tags, found)


def _frames(clip, times, index=0):
    scene = _Scene(clip, index, SIZE, np.random.default_rng(0))
    return [render_frame(clip, scene, t, SIZE).astype(np.float32) for t in times]


def test_palette_follows_the_mode():
    hues = {}
    for seed in range(12):
        clip = render_music(["flute"], 1.0, 8000, seed)
        hsv = cv2.cvtColor(_frames(clip, [0.3])[0].astype(np.uint8), cv2.COLOR_BGR2HSV)
        hues.setdefault(clip.mode, []).append(np.median(hsv[..., 0]) * 2)   # degrees
    assert max(hues["major"]) < 70 and min(hues["minor"]) > 180


def test_flashes_on_beats_and_motion_follows_tempo():
    clip = render_music(["cello", "fast"], 4.0, 8000, 2)
    beat = 60 / clip.tempo_bpm
    on = [f.mean() for f in _frames(clip, clip.beat_times[1:5] + 0.005)]
    off = [f.mean() for f in _frames(clip, clip.beat_times[1:5] + beat / 2)]
    assert min(on) > 1.1 * max(off)

    def motion(tags):
        c = render_music(tags, 4.0, 8000, 3)
        c.beat_times = np.zeros(0)
        c.onsets = {k: np.zeros(0) for k in c.onsets}   # isolate the orbit motion
        f = _frames(c, np.arange(0.5, 2.5, 0.04))
        return np.mean([np.abs(a - b).mean() for a, b in zip(f, f[1:])])
    assert motion(["cello", "fast"]) > 1.5 * motion(["cello", "slow"])


def test_shapes_follow_the_instruments():
    clip = render_music(["drums"], 2.0, 8000, 0)
    red = np.array([30, 30, 230], np.float32)   # the drums colour (BGR)
    frame = _frames(clip, [0.5])[0]
    with_drums = (np.abs(frame - red).sum(-1) < 30).sum()
    clip2 = render_music(["flute"], 2.0, 8000, 0)
    without = (np.abs(_frames(clip2, [0.5])[0] - red).sum(-1) < 30).sum()
    assert with_drums > 50 and without == 0
    # a shape swells right after its instrument's onsets and shrinks before the next one
    ons = clip.onsets["drums"]
    k = int(np.argmax(np.diff(ons)))
    big, small = _frames(clip, [ons[k] + 0.005, ons[k + 1] - 0.005])
    assert (np.abs(big - red).sum(-1) < 30).sum() > 1.5 * (np.abs(small - red).sum(-1) < 30).sum()
