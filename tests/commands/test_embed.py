"""`vcmr embed`: folders of audio and video, every output format, per-file errors."""
import csv
import os
import stat

import numpy as np
import soundfile as sf
import pytest

import vcmr
from vcmr.audio.io import resample, write_wav
from vcmr.cli import main

from embed_helpers import SR, music, patch_wav_rate, stage1_checkpoint


@pytest.fixture(scope="session")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed_cli")
    ckpt = stage1_checkpoint(tmp_path_factory.mktemp("embed_models"))
    model_file = root / "model.safetensors"
    assert main(["export", str(ckpt), "--out", str(model_file)]) == 0
    music_dir = root / "music"
    write_wav(music_dir / "a.wav", resample(music(0.5, SR, seed=30), SR, 44100), 44100)
    write_wav(music_dir / "sub" / "b.wav", resample(music(0.3, SR, seed=31), SR, 22050), 22050)
    (music_dir / "broken.wav").write_bytes(b"RIFF....not audio")
    return root, model_file, music_dir


def _expected(model_file, path, song_level=False):
    return vcmr.embed_file(path, vcmr.load_model(model_file, "cpu"), song_level=song_level)


def test_segment_rows_npz(setup, capsys):
    root, model_file, music_dir = setup
    out = root / "emb.npz"
    assert main(["embed", str(music_dir), "--ckpt", str(model_file), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.wav" in err
    z = np.load(out)  # no pickle needed
    a = str(music_dir / "a.wav")
    assert set(z["path"]) == {a, str(music_dir / "sub" / "b.wav")}
    rows = z["path"] == a
    exp = _expected(model_file, music_dir / "a.wav")
    np.testing.assert_allclose(z["embedding"][rows], exp.embeddings, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z["start"][rows], exp.starts)
    np.testing.assert_allclose(z["end"][rows], exp.ends)


@pytest.mark.parametrize("fmt", ["npy", "parquet", "csv"])
def test_song_level_formats(setup, fmt):
    root, model_file, music_dir = setup
    out = root / f"songs.{fmt}"
    files = [str(music_dir / "a.wav"), str(music_dir / "sub" / "b.wav")]
    assert main(["embed", *files, "--ckpt", str(model_file), "--out", str(out), "--song-level", "--quiet"]) == 0
    if fmt == "npy":
        arr = np.load(out)
        paths, emb, n_seg = list(arr["path"]), arr["embedding"], list(arr["n_segments"])
    elif fmt == "parquet":
        import pyarrow.parquet as pq
        t = pq.read_table(out).to_pydict()
        paths, emb, n_seg = t["path"], np.array(t["embedding"]), t["n_segments"]
    else:
        with open(out) as f:
            rows = list(csv.DictReader(f))
        paths = [r["path"] for r in rows]
        emb = np.array([[float(r[f"e{i}"]) for i in range(64)] for r in rows])
        n_seg = [int(r["n_segments"]) for r in rows]
    assert paths == files and n_seg == [4, 3]  # ceil(8000 / 2187), ceil(4800 / 2187)
    for i, p in enumerate(files):
        np.testing.assert_allclose(emb[i], _expected(model_file, p, song_level=True), rtol=1e-5, atol=1e-6)


def test_video_input_uses_audio_track(setup):
    pytest.importorskip("av")
    from vcmr.demo.synth.music import render_music
    from vcmr.demo.synth.video import write_music_video
    root, model_file, _ = setup
    clip = render_music(["piano"], 1.0, SR, seed=33)
    video = write_music_video(root / "clip.mp4", clip, [0.5], size=(64, 48), fps=10)
    out = root / "video.npz"
    assert main(["embed", str(video), "--ckpt", str(model_file), "--out", str(out), "--quiet", "--song-level"]) == 0
    z = np.load(out)
    assert list(z["path"]) == [str(video)] and z["embedding"].shape == (1, 64)
    assert z["duration"][0] == pytest.approx(1.0, abs=0.1)


def test_overlap_and_joint_space_errors(setup, capsys):
    root, model_file, music_dir = setup
    args = ["embed", str(music_dir / "a.wav"), "--ckpt", str(model_file)]
    assert main(args + ["--out", str(root / "o.npz"), "--overlap", "0.5", "--quiet"]) == 0
    assert len(np.load(root / "o.npz")["path"]) == 7  # 8000 samples, hop 1094
    assert main(args + ["--out", str(root / "o.txt")]) == 1
    assert "cannot tell the output format" in capsys.readouterr().err
    assert main(args + ["--out", str(root / "j.npz"), "--space", "joint", "--quiet"]) == 1
    assert "stage-2" in capsys.readouterr().err


def test_nothing_embedded_is_an_error(setup, capsys):
    root, model_file, music_dir = setup
    out = root / "none.csv"
    assert main(["embed", str(music_dir / "broken.wav"), str(root / "missing"), "--ckpt", str(model_file),
                 "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "no file could be embedded" in err
    assert not out.exists()


def test_a_fifo_or_device_as_out_is_refused_and_left_as_it_was(setup, tmp_path, capsys):
    root, model_file, music_dir = setup
    fifo, dev = tmp_path / "fifo", tmp_path / "n"
    os.mkfifo(fifo)
    targets = [(fifo, "a FIFO (named pipe)", stat.S_ISFIFO)]
    try:  # the issue's `mknod n c 1 3`; needs root (CAP_MKNOD)
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        targets.append((dev, "a character device", stat.S_ISCHR))
    except PermissionError:
        pass
    for out, said, is_kind in targets:
        args = ["embed", str(music_dir / "a.wav"), "--ckpt", str(model_file), "--out", str(out),
                "--format", "npz", "--quiet"]
        assert main(args) == 1
        assert f"is {said}, not a regular file" in capsys.readouterr().err
        assert is_kind(os.lstat(out).st_mode)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p, _, _ in targets)


def test_the_longest_legal_out_name_works_and_a_longer_one_fails_before_the_work(setup, tmp_path, capsys, monkeypatch):
    root, model_file, music_dir = setup
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = tmp_path / ("e" * (name_max - 4) + ".npz")
    args = ["embed", str(music_dir / "a.wav"), "--ckpt", str(model_file), "--quiet", "--out"]
    assert main([*args, str(out)]) == 0
    assert os.listdir(tmp_path) == [out.name] and len(np.load(out)["path"]) > 0

    def no_work(*a, **k):
        raise AssertionError("embedded before the output name was checked")
    monkeypatch.setattr("vcmr.commands.embed.embed_paths", no_work)
    assert main([*args, str(tmp_path / ("e" * (name_max - 3) + ".npz"))]) == 1
    assert f"at most {name_max} bytes per name" in capsys.readouterr().err
    assert os.listdir(tmp_path) == [out.name]


def test_a_wav_header_saying_1_hz_is_skipped_and_the_other_files_kept(setup, tmp_path, capsys):
    root, model_file, music_dir = setup
    bad = tmp_path / "bad.wav"
    sf.write(bad, np.random.default_rng(0).uniform(-0.5, 0.5, 48000).astype(np.float32), 16000,
             subtype="PCM_16")  # 96 kB
    patch_wav_rate(bad, 1)
    good, out = music_dir / "a.wav", tmp_path / "x.npz"
    assert main(["embed", str(good), str(bad), "--ckpt", str(model_file), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "bad.wav" in err and "1 Hz" in err and "skipped" in err
    z = np.load(out)
    assert set(z["path"]) == {str(good)}
    np.testing.assert_allclose(z["embedding"], _expected(model_file, good).embeddings, rtol=1e-5, atol=1e-6)


def test_a_folder_input_follows_links_only_inside_it(setup, tmp_path, capsys):
    # issue 23 row 10: the same symlink rule as prepare and stage 1, reported once
    root, model_file, music_dir = setup
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    write_wav(folder / "sub" / "mine.wav", music(0.3, SR, seed=40), SR)
    os.symlink(music_dir, folder / "elsewhere")          # outside: not followed
    os.symlink("..", folder / "sub" / "loop")              # a loop: not followed
    os.symlink("sub/mine.wav", folder / "alias.wav")       # inside: followed, listed once
    out = tmp_path / "x.npz"
    assert main(["embed", str(folder), "--ckpt", str(model_file), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("symbolic link(s) not followed") == 1 and "2 symbolic link(s)" in err
    assert set(np.load(out)["path"]) == {str(folder / "sub" / "mine.wav")}
