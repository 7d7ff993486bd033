"""The written MagnaTagATune / MTG-Jamendo files parse with the same rules as the real files in
../shared/data (same columns, separators, line endings, encodings and dtypes)."""
import ast
import csv
import re

import numpy as np
import pytest

from vcmr.errors import VcmrError
from vcmr.demo.synth.formats import (MTAT_SPLIT_FOLDERS, write_magnatagatune, write_mtg_jamendo)
from vcmr.demo.synth.tags import MTAT_TOP50

# ------------------------------------------------ parsing rules shared by real and synthetic
MP3 = re.compile(r"^[0-9a-f]/[^\t/]+\.mp3$")
GT_LINE = re.compile(r"^\d+\t\[(?:[01]\.0, ){49}[01]\.0\]$")
JAMENDO_ROW = re.compile(r"^track_\d{7}\tartist_\d{6}\talbum_\d{6}\t(\d{2})/(\d+)\.mp3\t\d+\.\d"
                         r"(\t[a-z/]+---[a-z0-9]+)+$")


def _lines(path, sep, limit):
    raw = path.read_bytes().decode("utf-8")
    assert raw.endswith(sep)
    return raw.split(sep)[:-1][:limit]     # the real files are big: parse a prefix of them


def parse_index(path, limit=None):
    rows = []
    for line in _lines(path, "\n", limit):
        clip_id, mp3 = line.split("\t")
        assert MP3.match(mp3), line
        rows.append((int(clip_id), mp3))
    return rows


def parse_gt(path, limit=None):
    rows = {}
    for line in _lines(path, "\n", limit):
        assert GT_LINE.match(line), line
        clip_id, vec = line.split("\t")
        rows[int(clip_id)] = ast.literal_eval(vec)
    return rows


def parse_won_split(path):
    arr = np.load(path, allow_pickle=False)
    assert arr.dtype.kind == "U" and arr.dtype.byteorder in "<=" and arr.ndim == 1
    assert arr.dtype.str == f"<U{max(len(s) for s in arr)}"      # numpy's own sizing
    out = []
    for entry in arr:
        row, mp3 = entry.split("\t")
        assert MP3.match(mp3)
        out.append((int(row), mp3))
    return out


def parse_jamendo_tsv(path):
    raw = path.read_bytes().decode("utf-8")
    assert raw.endswith("\r\n") and "\n" not in raw.replace("\r\n", "")
    lines = raw.split("\r\n")[:-1]
    assert lines[0].split("\t") == ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]
    rows = []
    for line in lines[1:]:
        m = JAMENDO_ROW.match(line)
        assert m and int(m.group(2)) % 100 == int(m.group(1)), line
        f = line.split("\t")
        rows.append({"track": f[0], "artist": f[1], "path": f[3], "duration": float(f[4]), "tags": f[5:]})
    return rows


def parse_tag_list(path):
    raw = path.read_bytes().decode("utf-8")
    assert raw.endswith("\n") and "\r" not in raw
    return raw.split("\n")[:-1]


# ------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mtat(tmp_path_factory):
    out = tmp_path_factory.mktemp("mtat")
    return out, write_magnatagatune(out, 7, seed=1, duration=2.0, workers=2)


@pytest.fixture(scope="module")
def jamendo(tmp_path_factory):
    out = tmp_path_factory.mktemp("jamendo")
    return out, write_mtg_jamendo(out, 9, seed=2, duration=2.0, workers=1)


# ------------------------------------------------------------------------- MagnaTagATune
def test_pons2017_files_parse_like_the_real_ones(shared_data, mtat):
    out, rows = mtat
    real = shared_data / "mtat/pons2017"
    assert (real / "index_mtt.tsv").read_bytes().count(b"\n") == 25863
    assert len(parse_index(real / "index_mtt.tsv", limit=3000)) == 3000
    for name in ("val_gt_mtt.tsv", "test_gt_mtt.tsv"):
        assert all(len(v) == 50 for v in parse_gt(real / name, limit=300).values())
    index = parse_index(out / "pons2017/index_mtt.tsv")
    assert [c for c, _ in index] == sorted(r["clip_id"] for r in rows)
    split_of = {"train": "train", "val": "valid", "test": "test"}
    for name, split in split_of.items():
        gt = parse_gt(out / f"pons2017/{name}_gt_mtt.tsv")
        assert gt, f"empty {name} split"
        for r in rows:
            if r["clip_id"] in gt:
                assert r["split"] == split and r["mp3_path"][0] in MTAT_SPLIT_FOLDERS[split]
                assert gt[r["clip_id"]] == [float(t in r["tags"]) for t in MTAT_TOP50]
    assert (out / "pons2017/output_labels_mtt.txt").read_bytes() == \
        (real / "output_labels_mtt.txt").read_bytes()


def test_won2020_files_parse_like_the_real_ones(shared_data, mtat):
    out, rows = mtat
    real = shared_data / "mtat/won2020"
    for name in ("valid.npy", "test.npy"):
        assert parse_won_split(real / name)
    real_tags, tags = np.load(real / "tags.npy"), np.load(out / "won2020/tags.npy")
    assert tags.dtype == real_tags.dtype == np.dtype("<U16") and list(tags) == list(real_tags)
    binary = np.load(out / "won2020/binary.npy", allow_pickle=False)
    assert binary.dtype == np.float64 and binary.shape == (len(rows), 50)
    seen = 0
    for split, folders in MTAT_SPLIT_FOLDERS.items():
        entries = parse_won_split(out / f"won2020/{split}.npy")
        assert entries
        for i, mp3 in entries:
            assert rows[i]["mp3_path"] == mp3 and mp3[0] in folders
            assert list(binary[i]) == [float(t in rows[i]["tags"]) for t in MTAT_TOP50]
        seen += len(entries)
    assert seen == len(rows)


def test_annotations_final_csv(mtat):
    out, rows = mtat
    with open(out / "annotations_final.csv", newline="") as f:   # musicnn-training's reader
        table = list(csv.reader(f, delimiter="\t", quotechar='"'))
    assert len(table[0]) == 190 and table[0][0] == "clip_id" and table[0][-1] == "mp3_path"
    assert set(MTAT_TOP50) <= set(table[0][1:-1])
    for r, line in zip(rows, table[1:]):
        assert line[0] == str(r["clip_id"]) and line[-1] == r["mp3_path"]
        assert {t for t, v in zip(table[0][1:-1], line[1:-1]) if v == "1"} == set(r["tags"])
    import pandas as pd   # minzwon's preprocessing reads it with header=None, sep="\t"
    df = pd.read_csv(out / "annotations_final.csv", header=None, index_col=None, sep="\t")
    assert list(df.loc[0][1:-1]) == table[0][1:-1] and df.loc[1][189] == rows[0]["mp3_path"]
    for r in rows:
        assert (out / r["mp3_path"]).is_file()


def test_mtat_audio_and_determinism_across_workers(tmp_path, mtat):
    import soundfile as sf
    out, rows = mtat
    x, sr = sf.read(str(out / rows[0]["mp3_path"]))
    assert sr == 16000 and x.ndim == 1 and abs(len(x) / sr - 2.0) < 0.1
    again = write_magnatagatune(tmp_path, 7, seed=1, duration=2.0, workers=1)
    assert again == rows
    for name in ["annotations_final.csv", "won2020/binary.npy", "won2020/train.npy",
                 "pons2017/index_mtt.tsv"] + [r["mp3_path"] for r in rows]:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_too_few_clips_is_a_clear_error(tmp_path):
    with pytest.raises(VcmrError, match="at least 3"):
        write_magnatagatune(tmp_path, 2)


# ---------------------------------------------------------------------------- MTG-Jamendo
def test_jamendo_files_parse_like_the_real_ones(shared_data, jamendo):
    out, rows = jamendo
    real = shared_data / "mtg-jamendo/data"
    real_vocab = set(parse_tag_list(real / "tags/moodtheme.txt"))
    assert len(real_vocab) == 59
    for f in [real / "autotagging_moodtheme.tsv", *sorted((real / "splits/split-0").glob("*.tsv"))]:
        assert all(set(r["tags"]) <= real_vocab for r in parse_jamendo_tsv(f))
    data = out / "data"
    allrows = parse_jamendo_tsv(data / "autotagging_moodtheme.tsv")
    assert [r["track"] for r in allrows] == [r["track_id"] for r in rows]
    vocab = parse_tag_list(data / "tags/moodtheme.txt")
    assert set(vocab) <= real_vocab and vocab == sorted(vocab)
    artists = []
    for split in ("train", "validation", "test"):
        part = parse_jamendo_tsv(data / f"splits/split-0/autotagging_moodtheme-{split}.tsv")
        assert part, f"empty {split} split"
        artists.append({r["artist"] for r in part})
        for r in part:
            assert r["tags"] == sorted(r["tags"]) and set(r["tags"]) <= set(vocab)
            assert (out / r["path"]).is_file() and r["duration"] == 2.0
    assert not (artists[0] & artists[1] or artists[0] & artists[2] or artists[1] & artists[2])
    split_tags = parse_tag_list(data / "tags/moodtheme_split.txt")
    assert set(split_tags) <= set(vocab)


def test_jamendo_moods_follow_the_music(jamendo):
    _, rows = jamendo
    for r in rows:
        tags = {t.split("---")[1] for t in r["tags"]}
        if r["mode"] == "major" and "slow" not in r["mtat_tags"]:
            assert "happy" in tags
        if r["mode"] == "minor":
            assert tags & {"sad", "dark"}
        assert ("fast" in tags) == ("fast" in r["mtat_tags"])


def test_jamendo_other_categories_and_errors(tmp_path):
    rows = write_mtg_jamendo(tmp_path, 4, seed=0, duration=1.0, category="instrument", workers=1)
    assert all(t.startswith("instrument---") for r in rows for t in r["tags"])
    assert (tmp_path / "data/splits/split-0/autotagging_instrument-train.tsv").is_file()
    with pytest.raises(VcmrError, match="category"):
        write_mtg_jamendo(tmp_path, 4, category="moods")
