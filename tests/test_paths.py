"""vcmr.paths: atomic outputs leave nothing behind, inputs are never outputs."""
import os
import stat

import numpy as np
import pytest

from vcmr.embed_io import EmbeddingTable, write_table
from vcmr.errors import VcmrError
from vcmr.paths import atomic_output, check_output_dir, check_output_file, same_file, walk_files


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


def _special(tmp_path, kind):
    """A real FIFO, symlink to a file outside the folder, or character device (1, 3 = null)."""
    path = tmp_path / "out" / f"{kind}.npz"
    path.parent.mkdir(exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "outside.npz").write_bytes(b"someone else's file")
        os.symlink(tmp_path / "outside.npz", path)
    else:
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("os.mknod of a character device needs root (CAP_MKNOD)")
    return path


SPECIAL = {"fifo": ("a FIFO", stat.S_ISFIFO), "symlink": ("a symbolic link", stat.S_ISLNK),
           "chardev": ("a character device", stat.S_ISCHR)}


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_files_and_symlinks_are_refused_as_outputs(tmp_path, kind):
    path = _special(tmp_path, kind)
    said, is_kind = SPECIAL[kind]
    with pytest.raises(VcmrError, match=f"is {said}"):
        check_output_file(path, "--out")
    with pytest.raises(VcmrError, match=f"is {said}"):  # the final rename never replaces it either
        with atomic_output(path) as tmp:
            tmp.write_bytes(b"result")
    assert is_kind(os.lstat(path).st_mode) and os.listdir(path.parent) == [path.name]
    if kind == "symlink":
        assert (tmp_path / "outside.npz").read_bytes() == b"someone else's file"


def test_a_special_file_appearing_during_the_work_is_not_replaced(tmp_path):
    out = tmp_path / "emb.npz"
    with pytest.raises(VcmrError, match="is a FIFO"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"result")
            os.mkfifo(out)
    assert stat.S_ISFIFO(os.lstat(out).st_mode) and os.listdir(tmp_path) == ["emb.npz"]


def test_the_longest_legal_name_is_written_and_a_longer_one_refused_before_the_work(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    legal = tmp_path / ("e" * (name_max - 4) + ".npz")
    assert check_output_file(legal, "--out") == legal
    with atomic_output(legal) as tmp:  # the temporary name is short whatever the final one is
        tmp.write_bytes(b"x")
    assert os.listdir(tmp_path) == [legal.name] and legal.read_bytes() == b"x"
    for too_long in (tmp_path / ("e" * (name_max - 3) + ".npz"),
                     tmp_path / ("d" * (name_max + 1)) / "emb.npz"):
        with pytest.raises(VcmrError, match=f"is {name_max + 1} bytes; .* at most {name_max} bytes"):
            check_output_file(too_long, "--out")
    with pytest.raises(VcmrError, match="is 256 bytes"):  # bytes, not characters
        check_output_file(tmp_path / ("é" * 128), "--out")


def symlink_tree(tmp_path):
    """root/ with real files, and links of every kind: inside (to a folder and to a file),
    `..` at the top (outside), `..` in a sub-folder (a loop), absolute outside, broken."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for p in (root / "a.wav", root / "sub" / "b.wav", elsewhere / "x.wav"):
        p.write_bytes(b"RIFF")
    os.symlink("..", root / "up")                          # outside: the parent with `elsewhere`
    os.symlink("..", root / "sub" / "loop")                # a loop: leads back to root
    os.symlink(elsewhere / "x.wav", root / "far.wav")      # absolute path outside
    os.symlink("sub", root / "inner")                      # inside, to a folder
    os.symlink("sub/b.wav", root / "c.wav")                # inside, to a file
    os.symlink("nowhere.wav", root / "broken.wav")
    return root


def test_walk_files_follows_links_only_inside_and_lists_each_file_once(tmp_path):
    root = symlink_tree(tmp_path)
    walk = walk_files(root)
    assert walk.files == [root / "a.wav", root / "sub" / "b.wav"]
    reasons = dict(walk.skipped)
    assert set(reasons) == {str(root / n) for n in ("up", "sub/loop", "far.wav", "broken.wav")}
    assert "outside" in reasons[str(root / "up")] and "outside" in reasons[str(root / "far.wav")]
    assert "loop" in reasons[str(root / "sub" / "loop")]
    assert "broken" in reasons[str(root / "broken.wav")]
    note = walk.skipped_note(root)
    assert "4 symbolic link(s) not followed" in note and "inside the folder given" in note


def test_a_root_given_through_a_link_is_walked(tmp_path):
    root = symlink_tree(tmp_path)
    os.symlink(root, tmp_path / "alias")
    walk = walk_files(tmp_path / "alias")
    assert walk.files == [tmp_path / "alias" / "a.wav", tmp_path / "alias" / "sub" / "b.wav"]
    assert len(walk.skipped) == 4
