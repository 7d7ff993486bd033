"""MTG-Jamendo loader: the real autotagging split files and synthetic trees."""
import numpy as np
import pytest

from vcmr.data.mtg_jamendo import load_mtg_jamendo, read_split_file, read_tags
from vcmr.data.tagging import DatasetFormatError
from vcmr.demo.synth.formats import write_mtg_jamendo


def test_real_split_files(shared_data):
    root = shared_data / "mtg-jamendo"
    d = root / "data" / "splits" / "split-0"
    sizes = [len(read_split_file(d / f"autotagging_moodtheme-{s}.tsv")) for s in ("train", "validation", "test")]
    assert sizes == [9949, 3802, 4231]
    rows = read_split_file(d / "autotagging_moodtheme-validation.tsv")
    assert rows[0] == ("track_0003346", "46/3346.mp3", ["mood/theme---calm", "mood/theme---melodic"])
    assert max(len(t) for _, _, t in rows) > 2  # variable number of tag fields
    tags = read_tags(root, "split-0", "moodtheme")
    assert tags == sorted((root / "data" / "tags" / "moodtheme_split.txt").read_text().split())
    assert len(tags) == 56
    with pytest.raises(DatasetFormatError, match="none of the listed tracks"):
        load_mtg_jamendo(root, "test")


@pytest.mark.parametrize("category", ["moodtheme", "instrument"])
def test_synthetic_tree(tmp_path, category):
    rows = write_mtg_jamendo(tmp_path, 9, seed=1, duration=0.4, category=category, sample_rate=16000, workers=1)
    by_id = {r["track_id"]: r for r in rows}
    seen = 0
    for subset in ("train", "valid", "test"):
        s = load_mtg_jamendo(tmp_path, subset, "split-0", category)
        assert s.tags == sorted({t for r in rows for t in r["tags"]})
        for item in s.items:
            r = by_id[item.key]
            assert r["split"] == {"valid": "validation"}.get(subset, subset)
            assert [s.tags[j] for j in np.flatnonzero(item.labels)] == r["tags"]
        seen += len(s.items)
    assert seen == len(rows)


def test_bad_inputs(tmp_path):
    with pytest.raises(DatasetFormatError, match="split-0 … split-4"):
        load_mtg_jamendo(tmp_path, "test", "fold-1")
    with pytest.raises(DatasetFormatError, match="category"):
        load_mtg_jamendo(tmp_path, "test", "split-0", "tempo")
    with pytest.raises(DatasetFormatError, match="not found"):
        load_mtg_jamendo(tmp_path, "test", "split-0", "genre")
    f = tmp_path / "x.tsv"
    f.write_text("TRACK\tX\n")
    with pytest.raises(DatasetFormatError, match="header"):
        read_split_file(f)
