"""``vcmr.prepare.manifest``: the one reader and writer of ``manifest.jsonl``."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vcmr.config import PrepareConfig
from vcmr.prepare.manifest import (MANIFEST, OUTPUT_KEYS, ManifestError, append_row, is_done,
                                   kept_ids, new_row, read_manifest, read_rows, row_files,
                                   write_rows)


def _lines(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def test_last_row_of_an_id_wins_and_a_torn_line_is_skipped(tmp_path):
    (tmp_path / MANIFEST).write_text(
        _lines({"id": "a", "status": "kept"}, {"id": "b", "status": "failed"},
               {"id": "a", "status": "dropped"}, {"id": "b", "status": "kept"}, "")
        + '{"id": "c", "sta')  # a run killed while appending
    assert [r["id"] for r in read_rows(tmp_path)] == ["a", "b", "a", "b"]
    assert {k: r["status"] for k, r in read_manifest(tmp_path).items()} == {"a": "dropped", "b": "kept"}
    assert kept_ids(tmp_path) == ["b"]
    assert read_manifest(tmp_path / "none") == {} and kept_ids(tmp_path / "none") == []


@pytest.mark.parametrize("bad, says", [('{"id": "c", "sta', "line 2 is not valid JSON"),
                                       ('["c"]', "line 2 is not a row"),
                                       ('{"status": "kept"}', "line 2 is not a row")])
def test_strict_reading_names_the_bad_line(tmp_path, bad, says):
    (tmp_path / MANIFEST).write_text(_lines({"id": "a", "status": "kept"}, bad))
    with pytest.raises(ManifestError, match=says):
        kept_ids(tmp_path, strict=True)
    assert kept_ids(tmp_path) == ["a"]


def test_append_after_a_torn_line_starts_a_new_one_and_write_rows_compacts(tmp_path):
    (tmp_path / MANIFEST).write_text(_lines({"id": "a", "status": "kept"}) + '{"id": "b", "st')
    append_row(tmp_path, {"id": "b", "status": "dropped"})
    append_row(tmp_path, {"id": "a", "status": "failed"})
    text = (tmp_path / MANIFEST).read_text()
    assert text.endswith('{"id": "a", "status": "failed"}\n') and text.count("\n") == 4
    assert {k: r["status"] for k, r in read_manifest(tmp_path).items()} == {"a": "failed", "b": "dropped"}
    write_rows(tmp_path, read_manifest(tmp_path).values())
    assert (tmp_path / MANIFEST).read_text() == _lines({"id": "a", "status": "failed"},
                                                       {"id": "b", "status": "dropped"})
    assert not list(tmp_path.glob("*.tmp"))


def test_a_row_is_done_when_kept_or_dropped_and_its_files_exist(tmp_path):
    row = new_row("v", "v.mp4", PrepareConfig())
    assert row["status"] == "failed" and set(row["settings"]) == set(OUTPUT_KEYS)
    assert not is_done(row, tmp_path) and not is_done(None, tmp_path)
    row.update(status="kept", audio_files=["audio/v/v_0.wav"], video_file="video/v.npy")
    assert row_files(row) == ["audio/v/v_0.wav", "video/v.npy"]
    assert not is_done(row, tmp_path)
    for f in row_files(row):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"x")
    assert is_done(row, tmp_path)
    assert is_done(dict(new_row("w", "w.mp4", PrepareConfig()), status="dropped"), tmp_path)


def test_reading_the_manifest_imports_no_video_stack():
    """``vcmr.data`` reads manifests through this module: it must stay light."""
    code = ("import sys, vcmr.prepare.manifest; "
            "print(sorted(m for m in ('torch', 'av', 'scenedetect', 'cv2', 'transformers', 'ray') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_stage_2_dataset_reads_strictly(tmp_path):
    """Training data is read strictly: a bad line is a PreparedDataError naming it."""
    from vcmr.data.audio_visual import PreparedDataError, kept_ids as dataset_ids
    with pytest.raises(PreparedDataError, match="manifest.jsonl is missing"):
        dataset_ids(tmp_path)
    (tmp_path / MANIFEST).write_text(_lines({"id": "b", "status": "kept"}, {"id": "a", "status": "kept"}))
    assert dataset_ids(tmp_path) == ["a", "b"]
    (tmp_path / MANIFEST).write_text(_lines({"id": "a", "status": "kept"}, "not json"))
    with pytest.raises(PreparedDataError, match="line 2 is not valid JSON"):
        dataset_ids(tmp_path)
