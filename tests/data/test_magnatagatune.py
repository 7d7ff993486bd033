"""MagnaTagATune loader: the real split files and synthetic trees from vcmr.demo.synth.formats."""
import shutil

import numpy as np
import pytest

from vcmr.data.magnatagatune import (MTAT_TOP50, load_magnatagatune, read_annotations, read_pons_gt,
                                     read_pons_index, read_won_entries, read_won_tags)
from vcmr.data.tagging import DatasetFormatError
from vcmr.demo.synth.formats import write_magnatagatune


@pytest.fixture(scope="module")
def mtat(tmp_path_factory):
    out = tmp_path_factory.mktemp("mtat")
    rows = write_magnatagatune(out, 16, seed=3, duration=0.5, sample_rate=16000, workers=1)
    return out, rows


def test_real_pons2017_files(shared_data):
    d = shared_data / "mtat" / "pons2017"
    index = read_pons_index(d / "index_mtt.tsv")
    val, test = read_pons_gt(d / "val_gt_mtt.tsv"), read_pons_gt(d / "test_gt_mtt.tsv")
    assert (len(index), len(val), len(test)) == (25863, 1825, 5329)
    assert all(index[k].startswith("c/") for k in val)
    assert all(index[k][0] in "def" for k in test)
    assert test["2"].shape == (50,) and test["2"][[1, 4, 12, 17]].tolist() == [1, 1, 1, 1]
    labels = (d / "output_labels_mtt.txt").read_text()
    assert str(MTAT_TOP50) in labels  # the standard order, as the repository lists it
    # 0-b minus the three dropped ids: what the missing train_gt_mtt.tsv holds
    assert sum(v[0] in "0123456789ab" for v in index.values()) - 3 == 18706


def test_real_won2020_files(shared_data):
    d = shared_data / "mtat" / "won2020"
    assert read_won_tags(d / "tags.npy") == MTAT_TOP50
    valid, test = read_won_entries(d / "valid.npy"), read_won_entries(d / "test.npy")
    assert (len(valid), len(test)) == (1529, 4332)
    assert valid[0] == (5, "c/lvx_nova-lvx_nova-01-contimune-30-59.mp3")


def test_real_split_without_audio_is_a_clear_error(shared_data):
    with pytest.raises(DatasetFormatError, match="none of the 5329 listed clips"):
        load_magnatagatune(shared_data / "mtat", "test", "pons2017")


@pytest.mark.parametrize("split", ["pons2017", "won2020"])
def test_synthetic_tree_both_splits(mtat, split):
    root, rows = mtat
    by_path = {r["mp3_path"]: r for r in rows}
    total = 0
    for subset in ("train", "valid", "test"):
        s = load_magnatagatune(root, subset, split)
        assert s.tags == MTAT_TOP50 and not s.missing
        for item in s.items:
            r = by_path[item.relpath]
            assert r["split"] == subset and item.path.is_file()
            assert [MTAT_TOP50[j] for j in np.flatnonzero(item.labels)] == [t for t in MTAT_TOP50 if t in r["tags"]]
        total += len(s.items)
    assert total == (len(rows) if split == "pons2017" else sum(any(t in MTAT_TOP50 for t in r["tags"]) for r in rows))


def test_annotations_fallback_equals_gt_file(mtat, tmp_path):
    root, rows = mtat
    ann = read_annotations(root / "annotations_final.csv")
    assert len(ann) == len(rows)
    copy = tmp_path / "m"
    shutil.copytree(root, copy)
    (copy / "pons2017" / "train_gt_mtt.tsv").unlink()
    from_ann = load_magnatagatune(copy, "train", "pons2017")
    from_gt = load_magnatagatune(root, "train", "pons2017")
    assert [i.key for i in from_ann.items] == [i.key for i in from_gt.items]
    np.testing.assert_array_equal(from_ann.labels(), from_gt.labels())


def test_missing_clips_reported_once_and_left_out(mtat, tmp_path):
    root, _ = mtat
    copy = tmp_path / "m"
    shutil.copytree(root, copy)
    full = load_magnatagatune(root, "train", "pons2017")
    for item in full.items[:2]:
        (copy / item.relpath).unlink()
    with pytest.warns(UserWarning, match=r"2 of \d+ clips .* missing") as rec:
        s = load_magnatagatune(copy, "train", "pons2017")
    assert len([w for w in rec if "missing" in str(w.message)]) == 1
    assert len(s.items) == len(full.items) - 2 and len(s.missing) == 2


def test_bad_inputs_are_clear(tmp_path, mtat):
    with pytest.raises(DatasetFormatError, match="not a folder"):
        load_magnatagatune(tmp_path / "nope", "test")
    with pytest.raises(DatasetFormatError, match="index_mtt.tsv not found"):
        load_magnatagatune(tmp_path, "test", "pons2017")
    with pytest.raises(DatasetFormatError, match="unknown MagnaTagATune split"):
        load_magnatagatune(mtat[0], "test", "split-0")
    bad = tmp_path / "gt.tsv"
    bad.write_text("1\t__import__('os')\n")
    with pytest.raises(DatasetFormatError, match="line 1"):
        read_pons_gt(bad)
