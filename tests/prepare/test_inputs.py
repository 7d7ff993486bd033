"""What ``vcmr prepare`` takes as input: any container PyAV opens is a video, a text file of
YouTube ids/URLs is a list, anything else is refused with a message (never guessed).

Videos here are written with PyAV in the test (``pyav_video_writer``: MPEG-2 in MPEG-PS,
H.264 in MP4...)."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from vcmr.errors import VcmrError
from vcmr.prepare.download import collect_inputs

TINY = ["--window_seconds", "2", "--segment_seconds", "1", "--n_segments", "2",
        "--encoder_batch_size", "4", "--workers", "0"]


@pytest.fixture(scope="module")
def odd_videos(tmp_path_factory, pyav_video_writer) -> Path:
    write_video = pyav_video_writer
    d = tmp_path_factory.mktemp("odd")
    write_video(d / "mpeg2.mpg", "mpeg", "mpeg2video")
    write_video(d / "apple.m4v", "mp4", "libx264")
    write_video(d / "stream.ts", "mpegts", "mpeg2video")
    write_video(d / "unknown.xyz", "mp4", "libx264")  # no known extension: found by probing
    (d / "notes.json").write_text("{}")
    (d / "junk.bin").write_bytes(os.urandom(4096))
    return d


def test_folder_scan_finds_every_container(odd_videos):
    notes = []
    items = collect_inputs([odd_videos], on_note=notes.append)
    assert sorted(it.id for it in items) == ["apple", "mpeg2", "stream", "unknown"]
    assert all(it.url is None for it in items)
    assert any("2 files that are not videos" in n for n in notes), notes


def test_video_with_unlisted_extension_is_never_a_list(odd_videos):
    """The issue's case: a real .mpg gave 11,000 yt-dlp calls when read as a list of ids."""
    for name in ("mpeg2.mpg", "apple.m4v", "unknown.xyz"):
        (item,) = collect_inputs([odd_videos / name])
        assert item.path == str(odd_videos / name) and item.url is None


@pytest.mark.parametrize("name, content, says", [
    ("junk.bin", os.urandom(2048), "neither a video"),
    ("binary.txt", b"\xff\xfe\x00abc" * 50, "not UTF-8"),
    ("prose.txt", b"Q4GlK9o8yIU\nthis is not an id\n", "line 2"),
    ("empty.list", b"# nothing\n\n", "lists no YouTube id"),
    ("cover.jpg", b"\xff\xd8\xff\xe0" + os.urandom(500), "neither a video"),
])
def test_other_files_are_refused_with_a_message(tmp_path, name, content, says):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(VcmrError, match=says) as e:
        collect_inputs([tmp_path / name])
    assert name in str(e.value) and "YouTube id" in str(e.value)


def test_list_without_extension_and_urls(tmp_path):
    (tmp_path / "ids").write_text("Q4GlK9o8yIU\n# c\nhttps://example.org/v/1\n")
    items = collect_inputs([tmp_path / "ids"])
    assert [it.url for it in items] == ["https://www.youtube.com/watch?v=Q4GlK9o8yIU",
                                        "https://example.org/v/1"]


def test_folder_named_like_a_video_is_reported(tmp_path, pyav_video_writer):
    write_video = pyav_video_writer
    (tmp_path / "x.mp4").mkdir()
    write_video(tmp_path / "x.mp4" / "inner.mpg", "mpeg", "mpeg2video")
    notes = []
    items = collect_inputs([tmp_path], on_note=notes.append)
    assert [it.id for it in items] == ["inner"]
    assert any("x.mp4" in n and "is a folder, not a video file" in n for n in notes), notes


def test_folder_without_videos_and_unreadable_folder(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VcmrError, match="holds no video"):
        collect_inputs([tmp_path / "empty"])
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):  # the OS refusing to list a folder (we run as root here)
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(VcmrError, match="cannot read folder .*locked.*Permission denied"):
        collect_inputs([tmp_path])


def test_mpg_without_audio_says_no_audio_stream(odd_videos, tiny_clip_dir, tmp_path):
    from vcmr.config import load_config
    from vcmr.prepare.manifest import read_manifest
    from vcmr.prepare.pipeline import prepare_videos
    cfg = load_config("prepare", None, TINY + ["--frame_encoder_path", str(tiny_clip_dir)])
    prepare_videos([odd_videos / "mpeg2.mpg"], tmp_path, cfg, progress=False)
    row = read_manifest(tmp_path)["mpeg2"]
    assert (row["status"], row["reason"]) == ("failed", "no_audio")
    assert "no audio stream" in row["error"]


def test_mpg_with_audio_is_prepared(tmp_path, tiny_clip_dir, pyav_video_writer):
    write_video = pyav_video_writer
    from vcmr.config import load_config
    from vcmr.prepare.manifest import read_manifest
    from vcmr.prepare.pipeline import prepare_videos
    video = write_video(tmp_path / "clip.mpg", "mpeg", "mpeg2video", audio=True)
    cfg = load_config("prepare", None, TINY + ["--frame_encoder_path", str(tiny_clip_dir)])
    prepare_videos([video], tmp_path / "out", cfg, progress=False)
    row = read_manifest(tmp_path / "out")["clip"]
    assert row["status"] == "kept", row
    assert np.load(tmp_path / "out" / row["video_file"]).shape == (2, 512)
