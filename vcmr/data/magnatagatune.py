"""MagnaTagATune (top-50 tags) as distributed: mp3 clips in folders ``0`` … ``f``.

Two standard splits, chosen by the config key ``split``:

* ``pons2017`` (musicnn-training; the VCMR reference code's default): ``index_mtt.tsv``
  (``clip_id<TAB>folder/file.mp3``) and ``train_gt_mtt.tsv``, ``val_gt_mtt.tsv``,
  ``test_gt_mtt.tsv`` (``clip_id<TAB>[0.0, 1.0, …]``, 50 values). When a ``*_gt_mtt.tsv`` file
  is absent but ``annotations_final.csv`` is there, the subset is rebuilt from the annotations
  with the split's own rule (train = folders 0–b, valid = c, test = d–f; clips 35644, 55753
  and 57881 dropped).
* ``won2020`` (sota-music-tagging-models): ``tags.npy`` (50 names), ``binary.npy`` (clips x 50),
  ``train.npy`` / ``valid.npy`` / ``test.npy`` whose entries are ``"ROW<TAB>folder/file.mp3"``
  (ROW indexes ``binary.npy``).

Split files are looked for in the dataset folder and in the usual sub-folders (``pons2017/``,
``won2020/``, ``split/``, ``split/mtat/``, ``index/mtt/``); audio in the folder itself, ``mp3/``
or ``audio/``. Files are parsed as data (JSON / numpy without pickles), never evaluated.

    split = load_magnatagatune("data/mtat", "test", "pons2017")
    split.tags[:3], len(split.items)     # ['guitar', 'classical', 'slow'], 5329
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from vcmr.data.splits import DatasetFormatError, TaggingSplit, add_item, check_subset, report_missing

# The standard top-50 order (musicnn's output_labels_mtt.txt == sota's tags.npy).
MTAT_TOP50 = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral"]

SPLITS = ("pons2017", "won2020")
PONS_GT = {"train": "train_gt_mtt.tsv", "valid": "val_gt_mtt.tsv", "test": "test_gt_mtt.tsv"}
PONS_FOLDERS = {"train": set("0123456789ab"), "valid": {"c"}, "test": set("def")}
PONS_DROPPED = {"35644", "55753", "57881"}  # missing or corrupt audio (musicnn partition_gt.py)
WON_FILES = {"train": "train.npy", "valid": "valid.npy", "test": "test.npy"}
_SPLIT_DIRS = {"pons2017": ["", "pons2017", "split", "split/pons2017", "index/mtt", "data/index/mtt"],
               "won2020": ["", "won2020", "split", "split/mtat", "split/won2020"]}
_AUDIO_DIRS = ["", "mp3", "audio"]


def find_split_dir(root: Path, split: str, marker: str) -> Path:
    for sub in _SPLIT_DIRS[split]:
        if (root / sub / marker).is_file():
            return root / sub
    raise DatasetFormatError(
        f"MagnaTagATune split {split!r}: {marker} not found in {root} or its sub-folders "
        f"{', '.join(s for s in _SPLIT_DIRS[split] if s)}. Put the split files there, or choose "
        f"the other split with --split {'won2020' if split == 'pons2017' else 'pons2017'}")


# ---------------------------------------------------------------------------- file parsers
def _tsv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f, delimiter="\t") if row and any(c.strip() for c in row)]


def read_pons_index(path: str | Path) -> dict[str, str]:
    """``index_mtt.tsv`` -> {clip_id: "folder/file.mp3"}."""
    out = {}
    for i, row in enumerate(_tsv_rows(Path(path)), 1):
        if len(row) < 2:
            raise DatasetFormatError(f"{path}, line {i}: expected 'clip_id<TAB>path', got {row!r}")
        out[row[0].strip()] = row[1].strip()
    return out


def read_pons_gt(path: str | Path, n_tags: int = 50) -> dict[str, np.ndarray]:
    """``*_gt_mtt.tsv`` -> {clip_id: labels (n_tags,) float32}; the list is read as JSON."""
    out = {}
    for i, row in enumerate(_tsv_rows(Path(path)), 1):
        try:
            labels = np.asarray(json.loads(row[1]), dtype=np.float32)
        except (IndexError, ValueError, TypeError):
            raise DatasetFormatError(f"{path}, line {i}: expected 'clip_id<TAB>[0.0, 1.0, ...]'") from None
        if labels.shape != (n_tags,):
            raise DatasetFormatError(f"{path}, line {i}: {labels.size} label values, expected {n_tags}")
        out[row[0].strip()] = labels
    return out


def read_won_entries(path: str | Path) -> list[tuple[int, str]]:
    """``train/valid/test.npy`` -> [(row of binary.npy, "folder/file.mp3")]."""
    arr = np.load(str(path), allow_pickle=False)
    out = []
    for i, entry in enumerate(arr.tolist()):
        row, sep, rel = str(entry).partition("\t")
        if not sep or not row.strip().isdigit():
            raise DatasetFormatError(f"{path}, entry {i}: expected 'ROW<TAB>folder/file.mp3', got {entry!r}")
        out.append((int(row), rel.strip()))
    return out


def read_won_tags(path: str | Path) -> list[str]:
    return [str(t) for t in np.load(str(path), allow_pickle=False).tolist()]


def read_annotations(path: str | Path, tags: list[str] = MTAT_TOP50) -> dict[str, tuple[str, np.ndarray]]:
    """``annotations_final.csv`` (tab-separated, quoted; clip_id, 188 tags, mp3_path) ->
    {clip_id: ("folder/file.mp3", labels over ``tags``)}."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar='"'))
    if not rows or rows[0][0].strip() != "clip_id" or rows[0][-1].strip() != "mp3_path":
        raise DatasetFormatError(f"{path}: expected a header 'clip_id<TAB>tag…<TAB>mp3_path'")
    header = [h.strip() for h in rows[0]]
    absent = [t for t in tags if t not in header]
    if absent:
        raise DatasetFormatError(f"{path}: the header has no column for tags {absent}")
    cols = [header.index(t) for t in tags]
    out = {}
    for i, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise DatasetFormatError(f"{path}, line {i}: {len(row)} fields, the header has {len(header)}")
        try:
            out[row[0].strip()] = (row[-1].strip(), np.array([float(row[c]) for c in cols], dtype=np.float32))
        except ValueError:
            raise DatasetFormatError(f"{path}, line {i}: tag values must be 0 or 1") from None
    return out


# ---------------------------------------------------------------------------- subsets
def _pons_entries(root: Path, subset: str) -> list[tuple[str, str, np.ndarray]]:
    d = find_split_dir(root, "pons2017", "index_mtt.tsv")
    index = read_pons_index(d / "index_mtt.tsv")
    gt_path = d / PONS_GT[subset]
    if gt_path.is_file():
        gt = read_pons_gt(gt_path)
        unknown = [k for k in gt if k not in index]
        if unknown:
            raise DatasetFormatError(f"{gt_path}: clip ids {unknown[:3]} are not in {d / 'index_mtt.tsv'}")
        return [(k, index[k], y) for k, y in gt.items()]
    ann = next((p for p in (d / "annotations_final.csv", root / "annotations_final.csv") if p.is_file()), None)
    if ann is None:
        raise DatasetFormatError(
            f"MagnaTagATune pons2017 {subset}: neither {gt_path} nor annotations_final.csv found; "
            f"add one of them (or use --split won2020)")
    labels = read_annotations(ann)
    folders = PONS_FOLDERS[subset]
    return [(k, rel, labels[k][1]) for k, rel in index.items()
            if rel.split("/")[0] in folders and k not in PONS_DROPPED and k in labels]


def _won_entries(root: Path, subset: str) -> list[tuple[str, str, np.ndarray]]:
    d = find_split_dir(root, "won2020", "tags.npy")
    tags = read_won_tags(d / "tags.npy")
    if tags != MTAT_TOP50:
        raise DatasetFormatError(f"{d / 'tags.npy'}: the tags are not the standard top-50 list in order")
    for name in ("binary.npy", WON_FILES[subset]):
        if not (d / name).is_file():
            raise DatasetFormatError(f"MagnaTagATune won2020: {d / name} not found; add it next to tags.npy")
    binary = np.load(str(d / "binary.npy"), allow_pickle=False)
    if binary.ndim != 2 or binary.shape[1] != len(tags):
        raise DatasetFormatError(f"{d / 'binary.npy'}: shape {binary.shape}, expected (clips, {len(tags)})")
    out = []
    for row, rel in read_won_entries(d / WON_FILES[subset]):
        if row >= len(binary):
            raise DatasetFormatError(f"{d / WON_FILES[subset]}: row {row} is beyond binary.npy ({len(binary)} rows)")
        out.append((str(row), rel, binary[row].astype(np.float32)))
    return out


def _audio_path(root: Path, rel: str) -> Path | None:
    for sub in _AUDIO_DIRS:
        p = root / sub / rel
        if p.is_file():
            return p
    return None


def load_magnatagatune(root: str | Path, subset: str, split: str = "pons2017") -> TaggingSplit:
    """Items (clip id, mp3 path, top-50 labels) of ``subset`` in the chosen ``split``."""
    root = Path(root)
    check_subset(subset)
    if not root.is_dir():
        raise DatasetFormatError(f"dataset_dir {str(root)!r} is not a folder: point --dataset_dir "
                                 f"at the MagnaTagATune folder (mp3 folders 0 … f and the split files)")
    if split not in SPLITS:
        raise DatasetFormatError(f"unknown MagnaTagATune split {split!r}: choose pons2017 or won2020")
    entries = _pons_entries(root, subset) if split == "pons2017" else _won_entries(root, subset)
    out = TaggingSplit("magnatagatune", subset, list(MTAT_TOP50), [], root)
    for key, rel, labels in entries:
        add_item(out, key, _audio_path(root, rel), labels, rel)
    if not out.items:
        raise DatasetFormatError(f"MagnaTagATune {split} {subset}: none of the {len(entries)} listed "
                                 f"clips was found under {root} (looked in ., mp3/, audio/)")
    report_missing(out, f"MagnaTagATune {split}")
    return out
