"""``vcmr prepare`` on hostile conditions: a full disk, a bad ``--out``, bad numbers, option
order, a rerun with other settings. Each case checks the exit status, a message naming the
thing and the fix, no traceback, no leftover temporary file and nothing lost."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from vcmr.cli import main
from vcmr.prepare.manifest import read_manifest


TINY = ["--window_seconds", "2", "--segment_seconds", "1", "--n_segments", "2",
        "--encoder_batch_size", "4", "--workers", "0"]


@pytest.fixture(scope="module")
def three_videos(tmp_path_factory, pyav_video_writer) -> Path:
    write_video = pyav_video_writer
    d = tmp_path_factory.mktemp("three")
    for name in ("a", "b", "c"):
        write_video(d / f"{name}.mp4", "mp4", "libx264", seconds=3.0, audio=True)
    return d


def _run(capsys, *argv):
    code = main(["prepare", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("target", ["audio/c/c_1.wav", "video/c.npy", "manifest.jsonl"])
def test_disk_full_stops_cleanly_and_resumes(three_videos, tiny_clip_dir, tmp_path, capsys,
                                             monkeypatch, target):
    """The OS refusing a write with ENOSPC (simulated at os.write, the lowest call every
    prepare output goes through) while video c is written: the run stops with a message, a
    and b stay finished, nothing of c is left, and the same command resumes."""
    out = tmp_path / "out"
    args = [str(three_videos), "--out", str(out), "--no-progress", *TINY,
            "--frame_encoder_path", str(tiny_clip_dir)]
    real_write = os.write

    def full_disk_write(fd, data):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.startswith(str(out)) and (name.endswith(target + ".tmp") or name.endswith(target)) \
                and (target != "manifest.jsonl" or b'"id": "c"' in bytes(data)):
            real_write(fd, bytes(data)[:7])  # the disk fills up part way through
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", full_disk_write)
    code, _, err = _run(capsys, *args)
    assert code == 1
    assert "no space left on the disk" in err and target.split("/")[-1] in err
    assert "2 finished videos are kept" in err and "run the same command again" in err
    rows = read_manifest(out)
    assert sorted(rows) == ["a", "b"] and all(r["status"] == "kept" for r in rows.values())
    files = _files(out)
    assert not [f for f in files if "c" in Path(f).stem.split("_")[0] or f.endswith(".tmp")], files
    assert (out / "manifest.jsonl").read_text().endswith("\n")  # no half row left behind
    monkeypatch.setattr(os, "write", real_write)
    code, stdout, _ = _run(capsys, *args)
    assert code == 0 and "1 kept" in stdout and "2 already done" in stdout
    assert read_manifest(out)["c"]["status"] == "kept"


def test_out_that_is_a_file_is_refused_before_work(three_videos, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        code, _, err = _run(capsys, str(three_videos), "--out", str(out), *TINY)
        assert code == 1 and "is a file, not a folder" in err, err
    assert (tmp_path / "f").read_text() == "x"


def test_option_values_before_the_inputs(three_videos, tiny_clip_dir, tmp_path, capsys):
    """``--window_seconds 2 a.mp4`` once read 2 as an input and the key as a bare flag
    ("expected float, got 'true'")."""
    code, stdout, err = _run(capsys, "--out", str(tmp_path), "--window_seconds", "2",
                             str(three_videos / "a.mp4"), "--segment_seconds", "1",
                             "--n_segments", "2", "--workers", "0", "--no-progress",
                             "--frame_encoder_path", str(tiny_clip_dir))
    assert code == 0, err
    assert "1 inputs: 1 kept" in stdout
    assert read_manifest(tmp_path)["a"]["window_s"] == 2.0


@pytest.mark.parametrize("key, value", [
    ("window_seconds", "nan"), ("window_seconds", "inf"), ("window_seconds", "-12"),
    ("max_scene_seconds", "nan"), ("scene_threshold", "-1"), ("segment_seconds", "0"),
    ("n_segments", "0"), ("frames_per_second", "0"), ("encoder_batch_size", "-1"),
])
def test_out_of_range_numbers_name_the_key(three_videos, tmp_path, capsys, key, value):
    code, _, err = _run(capsys, str(three_videos), "--out", str(tmp_path / "o"), f"--{key}", value)
    assert code == 1 and f"'{key}'" in err and value.lstrip("-") in err, err
    assert not (tmp_path / "o").exists()


def test_batch_size_is_not_a_prepare_key(three_videos, tmp_path, capsys):
    code, _, err = _run(capsys, str(three_videos), "--out", str(tmp_path), "--batch-size", "0")
    assert code == 1 and "batch_size" in err and "encoder_batch_size" in err


def test_rerun_with_other_settings_says_old_outputs_are_kept(three_videos, tiny_clip_dir,
                                                             tmp_path, capsys):
    base = [str(three_videos / "a.mp4"), "--out", str(tmp_path), "--no-progress",
            "--segment_seconds", "1", "--n_segments", "2", "--workers", "0",
            "--frame_encoder_path", str(tiny_clip_dir)]
    assert _run(capsys, *base, "--window_seconds", "2")[0] == 0
    first = np.load(tmp_path / "video" / "a.npy")
    code, stdout, _ = _run(capsys, *base, "--window_seconds", "3")
    assert code == 0 and "1 already done" in stdout
    assert "1 of the finished videos were prepared with other settings (window_seconds was 2.0)" \
        in stdout and "--redo" in stdout and "new --out" in stdout
    assert np.array_equal(np.load(tmp_path / "video" / "a.npy"), first)
    code, stdout, _ = _run(capsys, *base, "--window_seconds", "3", "--redo")
    assert code == 0 and "1 kept" in stdout and "0 already done" in stdout
    assert np.load(tmp_path / "video" / "a.npy").shape == (3, 512)
    code, stdout, _ = _run(capsys, *base, "--window_seconds", "3")
    assert "other settings" not in stdout
