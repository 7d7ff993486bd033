"""MTG-Jamendo autotagging splits (``split-0`` … ``split-4``) of any category.

Metadata as in the MTG/mtg-jamendo-dataset repository:
``data/splits/split-N/autotagging_<category>-{train,validation,test}.tsv`` with the header
``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS``; a row holds one or more tags, each an extra
tab-separated field. Categories: ``moodtheme``, ``genre``, ``instrument``, ``top50tags``.
The tag list is read from the data: the sorted union of the tags in the split's three files
(for moodtheme split-0 these are the 56 tags of ``moodtheme_split.txt``).

Audio is looked for at ``<dataset_dir>/<PATH>``, under ``audio/`` or ``mp3/``, and as the
low-quality variant ``NN/ID.low.mp3`` that the download script also offers.

    split = load_mtg_jamendo("data/jamendo", "test", "split-0", "moodtheme")
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vcmr.data.splits import DatasetFormatError, TaggingSplit, add_item, check_subset, report_missing

CATEGORIES = ("moodtheme", "genre", "instrument", "top50tags")
SUBSET_FILES = {"train": "train", "valid": "validation", "test": "test"}
HEADER = ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]
_META_DIRS = ["data/splits", "splits", ""]
_AUDIO_DIRS = ["", "audio", "mp3"]


def split_file(root: Path, split: str, category: str, subset: str) -> Path:
    if not re.fullmatch(r"split-\d+", split):
        raise DatasetFormatError(f"unknown MTG-Jamendo split {split!r}: use split-0 … split-4 (--split split-0)")
    if category not in CATEGORIES:
        raise DatasetFormatError(f"unknown MTG-Jamendo category {category!r}: choose one of "
                                 f"{', '.join(CATEGORIES)} (--subset_category)")
    name = f"autotagging_{category}-{SUBSET_FILES[subset]}.tsv"
    for sub in _META_DIRS:
        p = root / sub / split / name
        if p.is_file():
            return p
    raise DatasetFormatError(f"MTG-Jamendo: {name} not found under {root}/data/splits/{split}/ "
                             f"(or {root}/splits/{split}/); copy the repository's data/splits folder there")


def read_split_file(path: str | Path) -> list[tuple[str, str, list[str]]]:
    """Rows of an autotagging TSV -> [(track_id, relative audio path, [tags])]."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t")[:len(HEADER)] != HEADER:
        raise DatasetFormatError(f"{path}: expected the header {' '.join(HEADER)} (tab-separated)")
    rows = []
    for i, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        tags = [t.strip() for t in fields[5:] if t.strip()]
        if len(fields) < 6 or not tags:
            raise DatasetFormatError(f"{path}, line {i}: expected 5 fields and at least one tag")
        rows.append((fields[0].strip(), fields[3].strip(), tags))
    return rows


def read_tags(root: Path, split: str, category: str) -> list[str]:
    """Sorted union of the tags in the split's train, validation and test files."""
    tags: set[str] = set()
    for subset in SUBSET_FILES:
        for _, _, row_tags in read_split_file(split_file(root, split, category, subset)):
            tags.update(row_tags)
    return sorted(tags)


def _audio_path(root: Path, rel: str) -> Path | None:
    low = re.sub(r"\.mp3$", ".low.mp3", rel)
    for sub in _AUDIO_DIRS:
        for name in (rel, low):
            p = root / sub / name
            if p.is_file():
                return p
    return None


def load_mtg_jamendo(root: str | Path, subset: str, split: str = "split-0",
                     category: str = "moodtheme") -> TaggingSplit:
    """Items (track id, audio path, multi-hot labels) of ``subset`` of a split and category."""
    root = Path(root)
    check_subset(subset)
    if not root.is_dir():
        raise DatasetFormatError(f"dataset_dir {str(root)!r} is not a folder: point --dataset_dir at the "
                                 f"MTG-Jamendo folder (data/splits/… and the audio folders 00 … 99)")
    tags = read_tags(root, split, category)
    index = {t: i for i, t in enumerate(tags)}
    out = TaggingSplit("mtg-jamendo", subset, tags, [], root)
    for track, rel, row_tags in read_split_file(split_file(root, split, category, subset)):
        labels = np.zeros(len(tags), dtype=np.float32)
        labels[[index[t] for t in row_tags]] = 1.0
        add_item(out, track, _audio_path(root, rel), labels, rel)
    if not out.items:
        raise DatasetFormatError(f"MTG-Jamendo {split} {category} {subset}: none of the listed tracks "
                                 f"was found under {root} (looked for PATH in ., audio/, mp3/)")
    report_missing(out, f"MTG-Jamendo {split} {category}")
    return out
