"""vcmr.paths: atomic outputs leave nothing behind, inputs are never outputs."""
import os

import numpy as np
import pytest

from vcmr.embed_io import EmbeddingTable, write_table
from vcmr.errors import VcmrError
from vcmr.paths import atomic_output, check_output_dir, check_output_file, same_file


def test_atomic_output_failure_keeps_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "emb.npz"
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert out.read_bytes() == b"previous result" and os.listdir(tmp_path) == ["emb.npz"]


def test_atomic_output_success_has_the_usual_mode(tmp_path):
    with atomic_output(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert os.listdir(tmp_path) == ["a.bin"]
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o666 & ~mask


def test_write_table_onto_a_folder_leaves_no_temporary(tmp_path):
    table = EmbeddingTable(False, ["a.wav"], [0.0], [1.0], [np.ones(3, np.float32)])
    (tmp_path / "existing").mkdir()
    with pytest.raises(OSError):
        write_table(table, tmp_path / "existing", "npz")
    assert os.listdir(tmp_path) == ["existing"] and os.listdir(tmp_path / "existing") == []


def test_output_checks(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(VcmrError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "f", "--out")
    with pytest.raises(VcmrError, match="because .* is a file"):
        check_output_dir(tmp_path / "f" / "sub" / "deeper", "--out")
    assert check_output_dir(tmp_path / "new" / "deeper", "--out") and not (tmp_path / "new").exists()
    os.symlink(tmp_path / "f", tmp_path / "link")
    assert same_file(tmp_path / "link", tmp_path / "f") and same_file(tmp_path / "x" / ".." / "f", tmp_path / "f")
    with pytest.raises(VcmrError, match="also an input"):
        check_output_file(tmp_path / "link", "--out", [tmp_path / "f"])
