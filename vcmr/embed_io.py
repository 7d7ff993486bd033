"""Embedding many files and writing the table (what ``vcmr embed`` runs).

Rows are keyed by the input path (as found: a given file, or a file under a given folder):

* per segment: ``path``, ``start``, ``end`` (seconds; ``end`` clipped to the file's duration),
  ``embedding`` (D floats);
* ``--song_level``: ``path``, ``duration`` (seconds), ``n_segments``, ``embedding``.

Formats (never pickled): ``npz`` arrays ``path`` (unicode), ``start``/``end`` or
``duration``/``n_segments``, ``embedding`` (n, D); ``npy`` one structured array with those fields;
``parquet`` (pyarrow) an ``embedding`` list<float32> column; ``csv`` columns ``e0..e{D-1}``.

File names that are not valid UTF-8 (possible on Linux) are kept losslessly: in ``npz``/``npy``
the ``path`` string is Python's own (``os.fsdecode``) form, so ``os.fsencode(path)`` gives the
exact bytes; ``parquet`` and ``csv`` must hold UTF-8 text, so there ``path`` shows each
undecodable byte as ``\\xNN`` and an extra column ``path_bytes`` (parquet: binary; csv: hex) holds
every row's exact name bytes. The column is present only when at least one name needs it.

The output is written to a temporary name next to ``--out`` and renamed when complete; on any
failure the temporary is removed and an existing ``--out`` is left untouched.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm

from vcmr.audio.io import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, AudioReadError, find_audio_files
from vcmr.audio.stream import AudioStream
from vcmr.embed_journal import EmbedJournal, source_key
from vcmr.errors import VcmrError
from vcmr.paths import atomic_output, unreadable_folders

FORMATS = ("npy", "npz", "parquet", "csv")


@dataclass
class EmbeddingTable:
    song_level: bool
    paths: list[str] = field(default_factory=list)
    a: list[float] = field(default_factory=list)   # start (segments) or duration (songs)
    b: list[float] = field(default_factory=list)   # end (segments) or n_segments (songs)
    rows: list[np.ndarray] = field(default_factory=list)

    @property
    def columns(self) -> tuple[str, str]:
        return ("duration", "n_segments") if self.song_level else ("start", "end")

    def embeddings(self) -> np.ndarray:
        return np.stack(self.rows).astype(np.float32) if self.rows else np.zeros((0, 0), np.float32)


def collect_inputs(inputs: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to embed (folders searched recursively for audio and video) and input errors."""
    files, errors = [], []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            blocked = unreadable_folders(p)
            found = find_audio_files(p, AUDIO_EXTENSIONS + VIDEO_EXTENSIONS,  # skips `blocked`
                                     on_note=lambda note: errors.append((str(p), note)))
            if blocked:
                errors.append((str(p), "cannot read folder(s) " + ", ".join(blocked)
                               + ": fix the permissions (chmod u+rx) or run as a user who can read them"))
            if not found and not blocked:
                errors.append((str(p), "no audio or video files in this folder"))
            files += found
        elif p.is_file():
            files.append(p)
        else:
            errors.append((str(p), "no such file or folder"))
    return files, errors


def embed_paths(files: list[Path], model, overlap: float = 0.0, song_level: bool = False,
                space: str = "encoder", progress: bool = True,
                on_error: Callable[[str, str], None] | None = None,
                journal: EmbedJournal | None = None) -> tuple[EmbeddingTable, list[tuple[str, str]]]:
    """Embed every file; a file that fails is reported (``on_error``) and skipped. With a
    ``journal`` (opened by ``resume``), files it holds for the same source are taken from it
    and each newly finished file is appended to it at once."""
    table, errors = EmbeddingTable(song_level), []
    done = journal.done if journal is not None else {}
    for path in tqdm(files, desc="embedding", unit="file", disable=not progress):
        try:
            key = source_key(path)
            if key in done:
                _add(table, str(path), *done[key])
                journal.reused += 1
                continue
            stream = AudioStream(path, model.sample_rate)  # decoded a block at a time
            emb = model.embed_blocks(stream, overlap, space)
        except (AudioReadError, VcmrError, OSError) as e:
            msg = str(e).removeprefix(f"{path}: ")
            errors.append((str(path), msg))
            if on_error:
                on_error(str(path), msg)
            continue
        if song_level:
            rows = ([stream.frames / stream.source_rate], [len(emb.embeddings)],
                    emb.embeddings.mean(0, keepdims=True))
        else:
            rows = (emb.starts, emb.ends, emb.embeddings)
        if journal is not None:
            journal.add(key, *rows)
        _add(table, str(path), *rows)
    return table, errors


def _add(table: EmbeddingTable, path: str, a, b, emb: np.ndarray) -> None:
    table.paths += [path] * len(emb)
    table.a += [float(v) for v in a]
    table.b += [float(v) for v in b]
    table.rows += list(emb)


def format_of(out: str | Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise VcmrError(f"cannot tell the output format from {str(out)!r}: name it .npy, .npz, "
                    f".parquet or .csv, or give --format")


def write_table(table: EmbeddingTable, out: str | Path, fmt: str) -> Path:
    """Write atomically (temporary name, then rename; the temporary never stays behind)."""
    out = Path(out)
    writer = {"npz": _write_npz, "npy": _write_npy, "parquet": _write_parquet, "csv": _write_csv}[fmt]
    with atomic_output(out) as tmp:
        writer(table, tmp)
    return out


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:  # a surrogate-escaped byte from a non-UTF-8 file name
        return False


def _text_paths(paths: list[str]) -> tuple[list[str], list[bytes] | None]:
    """UTF-8-safe ``path`` values and, if any name is not UTF-8, every name's exact bytes."""
    if all(_is_utf8(p) for p in paths):
        return paths, None
    raw = [os.fsencode(p) for p in paths]
    return [b.decode("utf-8", "backslashreplace") for b in raw], raw


def _write_npz(table: EmbeddingTable, path: Path) -> None:
    c1, c2 = table.columns
    with open(path, "wb") as f:
        np.savez(f, path=np.array(table.paths, dtype=str), embedding=table.embeddings(),
                 **{c1: np.array(table.a), c2: np.array(table.b, dtype=np.int64 if table.song_level else np.float64)})


def _write_npy(table: EmbeddingTable, path: Path) -> None:
    emb = table.embeddings()
    c1, c2 = table.columns
    width = max([len(p) for p in table.paths] + [1])
    dtype = [("path", f"<U{width}"), (c1, "f8"), (c2, "i8" if table.song_level else "f8"),
             ("embedding", "f4", (emb.shape[1] if emb.size else 0,))]
    arr = np.zeros(len(table.paths), dtype=dtype)
    arr["path"], arr[c1], arr[c2] = table.paths, table.a, table.b
    if len(arr):
        arr["embedding"] = emb
    with open(path, "wb") as f:
        np.save(f, arr)


def _write_parquet(table: EmbeddingTable, path: Path) -> None:
    try:  # pyarrow is the optional `parquet` extra: imported only for --format parquet
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise VcmrError("--format parquet needs pyarrow: pip install 'vcmr[parquet]' "
                        "(or write .npz / .csv)") from None
    emb = table.embeddings()
    c1, c2 = table.columns
    values = pa.array(emb.reshape(-1), type=pa.float32())
    col = pa.FixedSizeListArray.from_arrays(values, emb.shape[1]) if emb.size else pa.array([], pa.list_(pa.float32()))
    names, raw = _text_paths(table.paths)
    columns = {"path": names}
    if raw is not None:
        columns["path_bytes"] = pa.array(raw, type=pa.binary())
    columns.update({c1: table.a, c2: [int(v) for v in table.b] if table.song_level else table.b,
                    "embedding": col})
    with open(path, "wb") as f:  # a Python file: the output name itself may be non-UTF-8
        pq.write_table(pa.table(columns), f)


def _write_csv(table: EmbeddingTable, path: Path) -> None:
    emb = table.embeddings()
    c1, c2 = table.columns
    names, raw = _text_paths(table.paths)
    extra = ["path_bytes"] if raw is not None else []
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path"] + extra + [c1, c2] + [f"e{i}" for i in range(emb.shape[1] if emb.size else 0)])
        for i, (p, a, b, row) in enumerate(zip(names, table.a, table.b, emb)):
            w.writerow([p] + ([raw[i].hex()] if raw is not None else [])
                       + [repr(a), int(b) if table.song_level else repr(b)] + [repr(float(v)) for v in row])
