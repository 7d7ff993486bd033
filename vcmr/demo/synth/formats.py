"""Tagging datasets in the on-disk formats of the real ones, filled with synthetic music.

MagnaTagATune (:func:`write_magnatagatune`)::

    out_dir/0 ... out_dir/f/<artist>-<album>-<NN>-<title>-<start>-<end>.mp3   16 kHz mono mp3
    out_dir/annotations_final.csv      tab-separated, every field double-quoted: clip_id, 188 tag
                                       columns (the real top-50 names + filler names), mp3_path
    out_dir/pons2017/index_mtt.tsv     clip_id<TAB>mp3_path (all clips, by clip_id)
    out_dir/pons2017/{train,val,test}_gt_mtt.tsv   clip_id<TAB>[0.0, 1.0, ...] (top-50 order)
    out_dir/pons2017/output_labels_mtt.txt         same bytes as musicnn-training's file
    out_dir/won2020/tags.npy           '<U16' (50,), the top-50 in the real order
    out_dir/won2020/binary.npy         float64 (n_clips, 50), one row per annotations row
    out_dir/won2020/{train,valid,test}.npy   '<U..' strings "ROW<TAB>SUBDIR/FILE.mp3"

Splits follow the folders like the real ones: train 0-b, valid c, test d-f (every split gets
clips as soon as n >= 3).

MTG-Jamendo (:func:`write_mtg_jamendo`)::

    out_dir/NN/ID.mp3                                   NN = ID % 100, two digits
    out_dir/data/autotagging_<category>.tsv             CRLF lines, header
    out_dir/data/splits/split-0/autotagging_<category>-{train,validation,test}.tsv
        TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS, tab-separated, one extra field per tag
    out_dir/data/tags/<category>.txt                    the category's synthesisable tags
    out_dir/data/tags/<category>_split.txt              the tags present in all three splits

Splits are artist-disjoint. Tags are derived from what the synthesiser rendered (see
:func:`jamendo_tags`), so they are audible.

Example (CLI): ``vcmr synth magnatagatune --out mtat --n 64`` and
``vcmr synth mtg-jamendo --out jamendo --n 64``.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

import soundfile as sf

from vcmr.demo.synth.music import render_music
from vcmr.demo.synth.parallel import run_parallel
from vcmr.demo.synth.tags import MTAT_TOP50, random_tags
from vcmr.errors import VcmrError
from vcmr.paths import atomic_output

HEX = "0123456789abcdef"
MTAT_SPLIT_FOLDERS = {"train": HEX[:12], "valid": "c", "test": "def"}
MTAT_N_TAGS = 188
JAMENDO_SPLITS = ("train", "validation", "test")
JAMENDO_HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS")
JAMENDO_CATEGORIES = ("moodtheme", "genre", "instrument")
JAMENDO_PREFIX = {"moodtheme": "mood/theme---", "genre": "genre---", "instrument": "instrument---"}
# tag names used per category (all moodtheme names exist in the real data/tags/moodtheme.txt)
JAMENDO_TAGS = {
    "moodtheme": ("calm", "energetic", "fast", "happy", "heavy", "meditative", "party",
                  "relaxing", "sad", "slow", "soft"),
    "genre": ("ambient", "classical", "electronic", "rock", "techno"),
    "instrument": ("cello", "drums", "flute", "guitar", "harp", "keyboard", "piano", "strings",
                   "synthesizer", "violin"),
}
# Which mood/theme tags the pictures ground (the demo's per-category groups).
MOOD_GROUNDING = {"visual": ("happy", "sad"),
                  "audible": ("calm", "energetic", "fast", "heavy", "meditative", "party",
                              "relaxing", "slow", "soft")}
_INSTRUMENT_NAMES = {"synth": "synthesizer", "harpsichord": "keyboard"}


# ------------------------------------------------------------------------------- shared
def _render_mp3(job: tuple) -> dict:
    """Render one clip and write it as mp3 (atomic). Returns the clip's MTAT tags and facts."""
    tags, seed, duration, sample_rate, path, mode_salience = job
    clip = render_music(tags, duration, sample_rate, seed, mode_salience=mode_salience)
    with atomic_output(path) as tmp:
        sf.write(str(tmp), clip.audio, sample_rate, format="MP3")
    return {"tags": clip.tags, "mode": clip.mode, "tempo_bpm": clip.tempo_bpm,
            "dynamics": clip.dynamics, "instruments": clip.instruments}


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Split ``n`` items by ``fractions`` with at least one item in each split (n >= 3)."""
    val = max(1, int(round(n * fractions[1])))
    test = max(1, int(round(n * fractions[2])))
    return [n - val - test, val, test]


def _check_n(n: int, what: str):
    if n < 3:
        raise VcmrError(f"{what}: --n must be at least 3 so that train, validation and test "
                        f"each get a clip; got {n}")


# -------------------------------------------------------------------------- MagnaTagATune
def mtat_columns() -> list[str]:
    """The 188 tag columns: the real top-50 names spread among filler names (fixed order)."""
    fillers = [f"synth filler {i:03d}" for i in range(MTAT_N_TAGS - len(MTAT_TOP50))]
    order = np.random.default_rng(188).permutation(MTAT_N_TAGS)
    cols: list[str] = [""] * MTAT_N_TAGS
    for name, pos in zip(list(MTAT_TOP50) + fillers, order):
        cols[pos] = name
    return cols


def _mtat_plan(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, 5301])
    sizes = _split_sizes(n, (12 / 16, 1 / 16, 3 / 16))
    splits = np.repeat(["train", "valid", "test"], sizes)[rng.permutation(n)]
    clip_ids = np.cumsum(rng.integers(1, 5, n)) + 1
    plan, per_folder = [], {}
    for cid, split in zip(clip_ids, splits):
        folders = MTAT_SPLIT_FOLDERS[split]
        folder = folders[per_folder.get(split, 0) % len(folders)]
        per_folder[split] = per_folder.get(split, 0) + 1
        artist = int(rng.integers(0, max(1, n // 4)))
        start = int(rng.integers(0, 10)) * 29
        name = (f"synth_artist_{artist:03d}-synth_album_{artist:03d}-{int(rng.integers(1, 13)):02d}"
                f"-take_{int(cid)}-{start}-{start + 29}.mp3")
        plan.append({"clip_id": int(cid), "mp3_path": f"{folder}/{name}", "split": str(split),
                     "tags": random_tags(rng), "seed": int(rng.integers(0, 2**31 - 1))})
    return plan


def write_magnatagatune(out_dir, n: int, seed: int = 0, duration: float = 29.1,
                        sample_rate: int = 16000, workers: int | None = None,
                        progress: bool = False, mode_salience: float = 0.0) -> list[dict]:
    """Write a MagnaTagATune-format dataset of ``n`` synthetic clips (layout in the module
    docstring). ``mode_salience``: see :func:`vcmr.demo.synth.music.render_music`. Returns one
    dict per clip: clip_id, mp3_path, split, tags, seed, mode, ..."""
    _check_n(n, "magnatagatune")
    out = Path(out_dir)
    plan = _mtat_plan(n, seed)
    jobs = [(p["tags"], p["seed"], duration, sample_rate, out / p["mp3_path"], mode_salience)
            for p in plan]
    facts = run_parallel(_render_mp3, jobs, workers, progress, desc="magnatagatune")
    rows = [{**p, **f} for p, f in zip(plan, facts)]
    _write_annotations(out / "annotations_final.csv", rows)
    _write_pons2017(out / "pons2017", rows)
    _write_won2020(out / "won2020", rows)
    return rows


def _top50_vector(tags) -> list[float]:
    return [1.0 if t in tags else 0.0 for t in MTAT_TOP50]


def _write_annotations(path: Path, rows: list[dict]):
    cols = mtat_columns()
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quotechar='"', quoting=csv.QUOTE_ALL, lineterminator="\n")
        w.writerow(["clip_id", *cols, "mp3_path"])
        for r in rows:
            w.writerow([str(r["clip_id"]), *("1" if c in r["tags"] else "0" for c in cols),
                        r["mp3_path"]])


def _write_pons2017(folder: Path, rows: list[dict]):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "index_mtt.tsv", "w", newline="\n") as f:
        f.writelines(f"{r['clip_id']}\t{r['mp3_path']}\n" for r in rows)
    for split, name in (("train", "train"), ("valid", "val"), ("test", "test")):
        with open(folder / f"{name}_gt_mtt.tsv", "w", newline="\n") as f:
            f.writelines(f"{r['clip_id']}\t{_top50_vector(r['tags'])}\n"
                         for r in rows if r["split"] == split)
    labels = "[" + ", ".join(f"'{t}'" for t in MTAT_TOP50) + "]"
    (folder / "output_labels_mtt.txt").write_text(f"# Output labels\nMTT_LABELS = {labels}\n")


def _write_won2020(folder: Path, rows: list[dict]):
    folder.mkdir(parents=True, exist_ok=True)
    binary = np.array([_top50_vector(r["tags"]) for r in rows], dtype=np.float64)
    np.save(folder / "tags.npy", np.array(MTAT_TOP50, dtype="<U16"))
    np.save(folder / "binary.npy", binary)
    for split in ("train", "valid", "test"):   # like the real split: clips with a top-50 tag
        entries = [f"{i}\t{r['mp3_path']}" for i, r in enumerate(rows)
                   if r["split"] == split and binary[i].sum() > 0]
        np.save(folder / f"{split}.npy", np.array(entries, dtype=str))


# ---------------------------------------------------------------------------- MTG-Jamendo
def jamendo_tags(facts: dict, category: str = "moodtheme") -> list[str]:
    """MTG-Jamendo tags (full names, sorted) for a rendered clip's facts (tags, mode,
    dynamics): mood from mode/tempo/dynamics, genre from the style, instruments by name."""
    if category not in JAMENDO_CATEGORIES:
        raise VcmrError(f"unknown MTG-Jamendo category {category!r}; use one of "
                        f"{', '.join(JAMENDO_CATEGORIES)}")
    tags = set(facts["tags"])
    if category == "moodtheme":
        names = _moods(tags, facts["mode"], facts["dynamics"])
    elif category == "genre":
        names = tags & set(JAMENDO_TAGS["genre"])
    else:
        names = {_INSTRUMENT_NAMES.get(i, i) for i in facts["instruments"]}
    return sorted(JAMENDO_PREFIX[category] + t for t in names)


def _moods(tags: set, mode: str, dynamics: str) -> set:
    """Mood/theme tags. ``happy`` / ``sad`` follow the mode only (visually grounded: the videos
    show it as their palette; the audio carries it only as the chord quality); the others
    follow audible attributes (tempo, dynamics, style). No tag mixes the two, so tempo alone
    says nothing about happy / sad (:data:`MOOD_GROUNDING`)."""
    slow, fast = "slow" in tags, "fast" in tags
    low, loud = dynamics in ("quiet", "soft"), dynamics == "loud"
    rules = {
        "happy": mode == "major", "sad": mode == "minor",
        "slow": slow, "fast": fast, "calm": slow and low, "energetic": fast and loud,
        "relaxing": (slow or "ambient" in tags) and not loud,
        "meditative": "ambient" in tags, "heavy": "rock" in tags and loud,
        "party": "beat" in tags, "soft": low,
    }
    return {k for k, v in rules.items() if v}


def _jamendo_plan(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, 4242])
    track_ids = np.sort(rng.choice(np.arange(1000, 1_400_000), size=n, replace=False))
    n_artists = max(3, n // 3)
    artist_of = rng.permutation(np.arange(n) % n_artists)
    artist_ids = np.sort(rng.choice(np.arange(1, 20000), size=n_artists, replace=False))
    sizes = _split_sizes(n_artists, (0.6, 0.2, 0.2))
    artist_split = np.repeat(JAMENDO_SPLITS, sizes)[rng.permutation(n_artists)]
    plan = []
    for tid, a in zip(track_ids, artist_of):
        plan.append({"track_id": f"track_{int(tid):07d}", "artist_id": f"artist_{int(artist_ids[a]):06d}",
                     "album_id": f"album_{int(artist_ids[a]) * 3 + 1:06d}",
                     "path": f"{int(tid) % 100:02d}/{int(tid)}.mp3", "split": str(artist_split[a]),
                     "mtat_tags": random_tags(rng), "seed": int(rng.integers(0, 2**31 - 1))})
    return plan


def write_mtg_jamendo(out_dir, n: int, seed: int = 0, duration: float = 30.0,
                      category: str = "moodtheme", sample_rate: int = 22050,
                      workers: int | None = None, progress: bool = False,
                      mode_salience: float = 0.0) -> list[dict]:
    """Write an MTG-Jamendo-format dataset of ``n`` synthetic tracks for one tag ``category``
    (layout in the module docstring). Returns one dict per track written to the category file:
    track_id, artist_id, album_id, path, duration, tags (full names), split, ..."""
    _check_n(n, "mtg-jamendo")
    jamendo_tags({"tags": [], "mode": "major", "dynamics": "normal", "instruments": []}, category)
    out = Path(out_dir)
    plan = _jamendo_plan(n, seed)
    jobs = [(p["mtat_tags"], p["seed"], duration, sample_rate, out / p["path"], mode_salience)
            for p in plan]
    facts = run_parallel(_render_mp3, jobs, workers, progress, desc="mtg-jamendo")
    rows = []
    for p, f in zip(plan, facts):
        tags = jamendo_tags(f, category)
        if tags:   # like the real files: a track is listed only with a tag of the category
            rows.append({**p, **f, "mtat_tags": f["tags"], "tags": tags, "duration": float(duration)})
    data = out / "data"
    _write_jamendo_tsv(data / f"autotagging_{category}.tsv", rows)
    for split in JAMENDO_SPLITS:
        _write_jamendo_tsv(data / "splits" / "split-0" / f"autotagging_{category}-{split}.tsv",
                           [r for r in rows if r["split"] == split])
    _write_jamendo_tag_lists(data / "tags", category, rows)
    return rows


def _write_jamendo_tsv(path: Path, rows: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(JAMENDO_HEADER)]
    lines += ["\t".join([r["track_id"], r["artist_id"], r["album_id"], r["path"],
                         f"{r['duration']:.1f}", *r["tags"]]) for r in rows]
    path.write_bytes("".join(line + "\r\n" for line in lines).encode("utf-8"))


def _write_jamendo_tag_lists(folder: Path, category: str, rows: list[dict]):
    folder.mkdir(parents=True, exist_ok=True)
    vocab = sorted(JAMENDO_PREFIX[category] + t for t in JAMENDO_TAGS[category])
    (folder / f"{category}.txt").write_text("".join(t + "\n" for t in vocab))
    per_split = [{t for r in rows if r["split"] == s for t in r["tags"]} for s in JAMENDO_SPLITS]
    common = sorted(set.intersection(*per_split))
    (folder / f"{category}_split.txt").write_text("".join(t + "\n" for t in common))
