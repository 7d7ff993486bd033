"""What ``vcmr prepare`` takes as input: any container PyAV opens is a video, a text file of
YouTube ids/URLs is a list, anything else is refused with a message (never guessed).

Videos here are written with PyAV in the test (``pyav_video_writer``: MPEG-2 in MPEG-PS,
H.264 in MP4...)."""
from __future__ import annotations

import errno
import json
import os
import shutil
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


# ------------------------------------------------------------------------------ ids (issue 23)
def _prepare(inputs, out, tiny_clip_dir, **kw):
    from vcmr.config import load_config
    from vcmr.prepare.pipeline import prepare_videos
    cfg = load_config("prepare", None, TINY + ["--frame_encoder_path", str(tiny_clip_dir)])
    return prepare_videos(inputs, out, cfg, progress=False, **kw)


def _sources(out) -> dict:
    from vcmr.prepare.manifest import read_manifest
    return {vid: r["source"] for vid, r in read_manifest(out).items()
            if r["status"] == "kept" and all((out / f).is_file() for f in r["audio_files"])}


def test_non_ascii_names_get_distinct_ids(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    for name in ("愛.mp4", "一.mp4", "夢.mp4", "video.mp4", "a b.mp4", "a_b.mp4"):
        (d / name).write_bytes(b"")
    ids = [it.id for it in collect_inputs([d])]
    assert len(set(ids)) == 6 and "video" in ids and "a_b" in ids, ids


def test_adding_a_non_ascii_video_prepares_it(tmp_path, tiny_clip_dir, pyav_video_writer):
    """Issue 23 row 3: 一.mp4 added after 愛.mp4 was skipped as done; 愛 was prepared again."""
    d = tmp_path / "in"
    d.mkdir()
    pyav_video_writer(d / "愛.mp4", "mp4", "libx264", audio=True)
    _prepare([d], tmp_path / "out", tiny_clip_dir)
    first = _sources(tmp_path / "out")
    assert list(first.values()) == [str(d / "愛.mp4")]
    pyav_video_writer(d / "一.mp4", "mp4", "libx264", seconds=4.0, audio=True)
    summary = _prepare([d], tmp_path / "out", tiny_clip_dir)
    assert summary["skipped_done"] == 1 and summary["counts"] == {"kept": 1}
    second = _sources(tmp_path / "out")
    assert sorted(second.values()) == [str(d / "一.mp4"), str(d / "愛.mp4")]
    assert first.items() <= second.items()  # 愛 keeps its id and outputs


def test_same_id_from_another_file_is_prepared_not_skipped(tmp_path, tiny_clip_dir,
                                                           pyav_video_writer):
    """An id of the manifest is trusted only with its file: another file of the same stem gets
    a new id, and a changed file (size, mtime) is prepared again."""
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        pyav_video_writer(tmp_path / sub / "clip.mp4", "mp4", "libx264", audio=True)
    out = tmp_path / "out"
    _prepare([tmp_path / "a"], out, tiny_clip_dir)
    summary = _prepare([tmp_path / "b"], out, tiny_clip_dir)
    assert summary["skipped_done"] == 0 and summary["counts"] == {"kept": 1}
    ids = _sources(out)
    assert len(ids) == 2 and ids["clip"] == str(tmp_path / "a" / "clip.mp4")
    again = _prepare([tmp_path / "b", tmp_path / "a"], out, tiny_clip_dir)  # ids follow the files
    assert again["skipped_done"] == 2 and _sources(out) == ids
    pyav_video_writer(tmp_path / "a" / "clip.mp4", "mp4", "libx264", seconds=4.0, audio=True)
    changed = _prepare([tmp_path / "a", tmp_path / "b"], out, tiny_clip_dir)
    assert changed["skipped_done"] == 1 and changed["changed_sources"] == 1
    assert changed["counts"] == {"kept": 1} and _sources(out) == ids


def test_merge_keeps_every_video(tmp_path, tiny_clip_dir, pyav_video_writer, capsys):
    """Issue 23 row 3: merging folders holding 愛.mp4 and 夢.mp4 kept one of them; the same
    stem prepared in two folders is two videos too."""
    from vcmr.prepare.manifest import read_manifest
    from vcmr.prepare.merge import merge_outputs
    parts = []
    for i, (sub, name) in enumerate((("a", "愛.mp4"), ("b", "夢.mp4"))):
        (tmp_path / sub).mkdir()
        pyav_video_writer(tmp_path / sub / name, "mp4", "libx264", seconds=3 + i, audio=True)
        pyav_video_writer(tmp_path / sub / "clip.mp4", "mp4", "libx264", seconds=5 + i, audio=True)
        parts.append(tmp_path / f"out_{sub}")
        _prepare([tmp_path / sub], parts[-1], tiny_clip_dir)
    capsys.readouterr()
    assert merge_outputs(parts, tmp_path / "merged") == {"kept": 4}
    notes = capsys.readouterr().err.splitlines()
    rows = read_manifest(tmp_path / "merged")
    assert sorted(Path(r["source"]).name for r in rows.values()) == [
        "clip.mp4", "clip.mp4", "夢.mp4", "愛.mp4"]
    assert len({r["source_path"] for r in rows.values()}) == 4
    assert len(notes) == 1 and "clip" in notes[0], notes
    for part in parts:  # every merged row's files are the ones its run wrote
        for vid, r in read_manifest(part).items():
            (twin,) = [m for m in rows.values() if m["source_path"] == r["source_path"]]
            assert np.array_equal(np.load(part / r["video_file"]),
                                  np.load(tmp_path / "merged" / twin["video_file"]))
    assert merge_outputs(parts, tmp_path / "merged") == {"kept": 4}  # merging again adds nothing


def test_youtube_ids_ending_in_underscore_match_the_corpus(tmp_path, tiny_clip_dir):
    """Issue 23 row 3b: ``8WTklr4r7s_`` became ``8WTklr4r7s``, so the manifest's ids and the
    corpus' metadata.jsonl disagreed. Seed 96 of the generator gives 'mEwf4Q-a33_'."""
    from vcmr.demo.synth.corpus import make_music_video_corpus
    rows = make_music_video_corpus(tmp_path / "corpus", 2, seed=96, duration=4.0, size=(64, 48),
                                   fps=10, workers=0, sample_rate=16000, min_seconds=2.0,
                                   max_scene_seconds=6.0)
    assert any(r["id"].endswith("_") for r in rows)
    videos, more = tmp_path / "corpus" / "videos", tmp_path / "more"
    more.mkdir()
    shutil.copyfile(videos / f"{rows[0]['id']}.mp4", more / "8WTklr4r7s_.mp4")
    _prepare([videos, more], tmp_path / "out", tiny_clip_dir)
    meta = [json.loads(line)["id"] for line in
            (tmp_path / "corpus" / "metadata.jsonl").read_text().splitlines()]
    assert set(_sources(tmp_path / "out")) == {*meta, "8WTklr4r7s_"}


def test_a_dotdot_link_in_the_input_folder_is_not_followed(tmp_path, pyav_video_writer):
    # issue 23 row 10: prepare followed a `..` link and prepared the sibling folders' videos
    (tmp_path / "in").mkdir()
    (tmp_path / "other").mkdir()
    pyav_video_writer(tmp_path / "in" / "mine.mp4", "mp4", "libx264")
    pyav_video_writer(tmp_path / "other" / "theirs.mp4", "mp4", "libx264")
    os.symlink("..", tmp_path / "in" / "up")
    notes = []
    items = collect_inputs([tmp_path / "in"], on_note=notes.append)
    assert [it.id for it in items] == ["mine"]
    said = [n for n in notes if "symbolic link(s) not followed" in n]
    assert len(said) == 1 and "1 symbolic link(s)" in said[0] and "outside" in said[0], notes
