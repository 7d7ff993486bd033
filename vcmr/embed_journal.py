"""The journal of finished files that makes ``vcmr embed`` resumable.

``vcmr embed`` appends each file's embeddings to a journal next to ``--out`` as soon as that
file is done (``.vcmr-embed-<hash of the out name>.journal``), and writes ``--out`` from it at the
end; the journal is then removed. A run that is killed (SIGKILL, out of memory, power cut) or
stopped by a bad file loses at most the file it was working on: the same command run again reads
the journal and embeds only the files that are not in it.

A journal entry is trusted only for the same source file: its absolute path, size and
modification time (ns) must match the file's ``os.stat`` now, else the file is embedded again.
The first entry holds the settings (model file with its size and mtime, overlap, song level,
space); a journal written with other settings is discarded with a note.

Format: records ``<u64 length><payload><u32 crc32 of payload>``; the payload of the first is
JSON, of the others an ``.npz`` (no pickle). Each record is one ``write`` call, so a killed process
leaves whole records (the kernel has them); a record torn by a power cut fails its length or CRC
check and it and everything after it are dropped (the file is cut back to the last good record).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np

_HEAD, _TAIL = struct.Struct("<Q"), struct.Struct("<I")
_MAX_RECORD = 1 << 34  # a length above 16 GiB is a torn or foreign file, not a record

SourceKey = tuple[str, int, int]


def journal_path(out: str | Path) -> Path:
    """The journal of output ``out``: a short hidden name next to it (any legal --out name fits)."""
    out = Path(out)
    digest = hashlib.sha1(os.fsencode(out.name)).hexdigest()[:16]
    return out.parent / f".vcmr-embed-{digest}.journal"


def source_key(path: str | Path) -> SourceKey:
    """(absolute path, size, mtime in ns) of a file: what a journal entry must match."""
    st = os.stat(path)
    return os.path.abspath(os.fspath(path)), int(st.st_size), int(st.st_mtime_ns)


def model_identity(spec: str) -> dict:
    """A model argument as the settings record stores it (a local file with its size and mtime)."""
    if os.path.isfile(spec):
        _, size, mtime = source_key(spec)
        return {"model": os.path.abspath(spec), "size": size, "mtime_ns": mtime}
    return {"model": spec}


def _pack(payload: bytes) -> bytes:
    return _HEAD.pack(len(payload)) + payload + _TAIL.pack(zlib.crc32(payload))


def _records(data: bytes):
    """(payload, end offset) of each whole, intact record from the start of ``data``."""
    pos = 0
    while pos + _HEAD.size <= len(data):
        (n,) = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + n + _TAIL.size
        if n > _MAX_RECORD or end > len(data):
            return
        payload = data[pos + _HEAD.size: pos + _HEAD.size + n]
        if _TAIL.unpack_from(data, end - _TAIL.size)[0] != zlib.crc32(payload):
            return
        yield payload, end
        pos = end


def _entry(payload: bytes) -> tuple[SourceKey, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        key = (str(z["source"]), int(z["size"]), int(z["mtime_ns"]))
        return key, (z["a"], z["b"], z["embedding"])


class EmbedJournal:
    """Open with :meth:`resume` (fills ``done``), :meth:`add` per finished file,
    :meth:`remove` once ``--out`` is written."""

    def __init__(self, out: str | Path, settings: dict):
        self.path = journal_path(out)
        self.settings = json.dumps(settings, sort_keys=True).encode()
        self._f = None
        self.done: dict[SourceKey, tuple] = {}
        self.reused = 0  # entries of `done` taken instead of embedding again (counted by the caller)

    def resume(self) -> str | None:
        """Read the finished entries of an earlier run with these settings into ``done``; returns
        a note for the user (None when there was no journal). The journal is then open for
        appending."""
        done, note, good_end = {}, None, 0
        if self.path.exists():
            data = self.path.read_bytes()
            records = _records(data)
            first = next(records, None)
            if first is not None and first[0] == self.settings:
                good_end = first[1]
                for payload, end in records:
                    try:
                        key, rows = _entry(payload)
                    except (ValueError, KeyError, OSError, zlib.error):
                        break
                    done[key], good_end = rows, end
                note = (f"resuming an interrupted run from {self.path}: "
                        f"{len(done)} file(s) already embedded")
            else:
                note = (f"an interrupted run's journal {self.path} was written with other "
                        f"settings (model, --overlap, --song_level or --space): starting afresh")
        self._f = open(self.path, "r+b" if good_end else "wb")
        if good_end:
            self._f.truncate(good_end)
            self._f.seek(good_end)
        else:
            self._f.write(_pack(self.settings))
            self._f.flush()
        self.done = done
        return note

    def add(self, key: SourceKey, a, b, emb: np.ndarray) -> None:
        """Record one finished file (one ``write`` call, flushed to the kernel at once)."""
        buf = io.BytesIO()
        np.savez(buf, source=np.array(key[0]), size=np.int64(key[1]), mtime_ns=np.int64(key[2]),
                 a=np.asarray(a, np.float64), b=np.asarray(b, np.float64),
                 embedding=np.asarray(emb, np.float32))
        self._f.write(_pack(buf.getvalue()))
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
