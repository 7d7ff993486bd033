"""Prepared music-video data (the layout written by ``vcmr prepare``) for stage 2.

    DATA_DIR/manifest.jsonl            one JSON object per video; status "kept" = usable
    DATA_DIR/audio/<id>/<id>_<k>.wav   k = 0..n_segments-1, mono, segment_seconds each
    DATA_DIR/video/<id>.npy            (n_segments * segment_seconds, feature_dim) float

Each item is one audio segment and its rows of per-second features. Training takes a random
audio crop of ``audio_length`` samples and the ``round(audio_length / sample_rate)`` seconds
of video starting at the second in which the audio crop starts; validation takes the crop at
the start of the segment. The train/valid split hashes the video id, so no video is in both.

Opening a dataset checks every video of the split once: its audio segments must be readable
and equally long, and its feature file a 2-D float array with the common width, enough rows
for its audio and only finite values. A video that fails is skipped with a warning naming it
and the reason (the run goes on); when no video is left the error says why.

``derange_pairs`` (the negative control of stage 2) pairs every video's audio with the features
of another video of the split: a derangement of the usable ids drawn from ``seed`` alone (the
same in every process and every epoch). Audio segment i of a video gets the features of segment
``i mod n`` of its partner (``n`` = the partner's segments), at the same second as always.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from vcmr.audio.io import resample, to_mono
from vcmr.data.splits import hashed_split
from vcmr.errors import VcmrError
from vcmr.models.video import video_seconds
from vcmr.paths import check_input_dir
from vcmr.prepare import manifest
from vcmr.prepare.manifest import MANIFEST, ManifestError


class PreparedDataError(VcmrError):
    """The folder is not a prepared dataset, or its audio and features disagree."""


@dataclass(frozen=True)
class Segment:
    video_id: str
    index: int
    audio_path: Path
    feature_path: Path


def kept_ids(root: Path) -> list[str]:
    """Ids with status 'kept' (the last manifest row of an id wins), sorted."""
    if not (root / MANIFEST).is_file():
        raise PreparedDataError(
            f"{str(root)!r} is not a prepared dataset: {MANIFEST} is missing. Create it with "
            f"`vcmr prepare VIDEOS... --out {root}`")
    try:
        return manifest.kept_ids(root, strict=True)
    except ManifestError as e:
        raise PreparedDataError(str(e)) from None


def video_split(video_id: str, valid_fraction: float) -> str:
    return hashed_split(video_id, valid_fraction)


def split_ids(ids: list[str], split: str, valid_fraction: float) -> list[str]:
    valid = [i for i in ids if video_split(i, valid_fraction) == "valid"]
    if not valid and len(ids) > 1 and valid_fraction > 0:
        valid = ids[-1:]  # tiny datasets: keep one validation video
    if split == "all":
        return ids
    return valid if split == "valid" else [i for i in ids if i not in valid]


def list_segments(root: Path, ids: list[str]) -> list[Segment]:
    segs = []
    for vid in ids:
        wavs = sorted((root / "audio" / vid).glob(f"{vid}_*.wav"),
                      key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        feat = root / "video" / f"{vid}.npy"
        if not wavs or not feat.is_file():
            raise PreparedDataError(f"video {vid!r} is 'kept' in the manifest but its audio "
                                    f"segments or {feat.name} are missing; re-run `vcmr prepare`")
        segs += [Segment(vid, int(w.stem.rsplit('_', 1)[1]), w, feat) for w in wavs]
    return segs


def _feature_header(path: Path):
    """The memory-mapped array (only the header is read), or the reason it cannot be."""
    try:
        f = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # truncated, not .npy, object arrays (pickles are refused)
        return None, f"{path.name} cannot be read as a .npy array ({type(e).__name__}: {e})"
    if f.ndim != 2 or not (np.issubdtype(f.dtype, np.floating) or np.issubdtype(f.dtype, np.integer)):
        return None, f"{path.name} has shape {f.shape} and dtype {f.dtype}; expected (seconds, feature_dim) floats"
    return f, None


def common_feature_width(root: Path, ids: list[str]) -> int | None:
    """The feature width most kept videos share (the train and valid splits agree on it)."""
    widths = Counter()
    for vid in ids:
        f, _ = _feature_header(root / "video" / f"{vid}.npy")
        if f is not None:
            widths[int(f.shape[1])] += 1
    return widths.most_common(1)[0][0] if widths else None


def _audio_segments(root: Path, vid: str) -> list[Path]:
    wavs = []
    for w in (root / "audio" / vid).glob(f"{vid}_*.wav"):
        k = w.stem.rsplit("_", 1)[1]
        if k.isdigit():
            wavs.append((int(k), w))
    return [w for _, w in sorted(wavs)]


def check_video(root: Path, vid: str, width: int | None, segment_seconds: int | None):
    """``(segments, segment_seconds)`` of one video, or ``(None, reason)`` when it is unusable."""
    wavs = _audio_segments(root, vid)
    feat = root / "video" / f"{vid}.npy"
    if not wavs:
        return None, "no audio segments (audio/<id>/<id>_<k>.wav)"
    if not feat.is_file():
        return None, f"{feat.name} is missing"
    lengths = set()
    for w in wavs:
        try:
            info = sf.info(os.fsencode(w))
        except Exception as e:
            return None, f"{w.name} cannot be read ({type(e).__name__}: {e})"
        lengths.add(round(info.frames / info.samplerate))
    if len(lengths) != 1 or (segment_seconds is not None and lengths != {segment_seconds}):
        return None, (f"its audio segments last {sorted(lengths)} s; the dataset's last "
                      f"{segment_seconds} s")
    seg_s = lengths.pop()
    f, why = _feature_header(feat)
    if f is None:
        return None, why
    if width is not None and f.shape[1] != width:
        return None, f"{feat.name} has {f.shape[1]}-D features; the other videos have {width}-D"
    need = len(wavs) * seg_s
    if f.shape[0] < need:
        return None, (f"{feat.name} has {f.shape[0]} rows of features but the audio covers "
                      f"{len(wavs)} x {seg_s} s; audio and features disagree in length")
    finite = np.isfinite(np.asarray(f[:need], dtype=np.float64)).all(axis=1)
    if not finite.all():
        return None, (f"{feat.name} holds NaN or infinite values in {int((~finite).sum())} of "
                      f"{need} rows (first at second {int(np.argmin(finite))})")
    return [Segment(vid, int(w.stem.rsplit("_", 1)[1]), w, feat) for w in wavs], seg_s


def derangement(ids: list[str], seed: int) -> dict[str, str]:
    """``{video id: the id whose features it gets}``: a uniformly drawn permutation of the
    sorted ``ids`` with no fixed point, the same for the same ids and seed."""
    ids = sorted(ids)
    if len(ids) < 2:
        raise PreparedDataError(f"derange_pairs needs at least 2 videos to swap features between, "
                                f"got {len(ids)}; add videos or set derange_pairs false")
    rng = np.random.default_rng([seed, 0xDE7A])  # its own stream, apart from the crop draws
    while True:  # rejection: about e tries on average
        perm = rng.permutation(len(ids))
        if (perm != np.arange(len(ids))).all():
            return {v: ids[int(j)] for v, j in zip(ids, perm)}


def usable_segments(root: Path, ids: list[str], width: int | None) -> tuple[list[Segment], dict[str, str]]:
    """Segments of the usable videos of ``ids`` and ``{video id: why it was skipped}``."""
    segments, skipped, seg_s = [], {}, None
    for vid in ids:
        found, info = check_video(root, vid, width, seg_s)
        if found is None:
            skipped[vid] = info
            continue
        segments += found
        seg_s = info
    return segments, skipped


class AudioVisualDataset(Dataset):
    """Items: ``(audio (audio_length,), video (n_seconds, feature_dim), segment index)``."""

    def __init__(self, root: str | Path, split: str, sample_rate: int, audio_length: int,
                 valid_fraction: float = 0.1, seed: int = 0, derange_pairs: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise PreparedDataError(f"dataset_dir {str(self.root)!r} does not exist; prepare one "
                                    f"with `vcmr prepare VIDEOS... --out {self.root}`")
        check_input_dir(self.root, "dataset_dir")  # unreadable is not "manifest missing"
        ids = kept_ids(self.root)
        if not ids:
            raise PreparedDataError(f"{str(self.root)!r}: the manifest lists no 'kept' video")
        self.split, self.sample_rate, self.audio_length = split, sample_rate, audio_length
        self._open_videos(split_ids(ids, split, valid_fraction), common_feature_width(self.root, ids))
        self.seed, self.epoch = seed, 0
        self.n_seconds = video_seconds(audio_length, sample_rate)
        self._check_geometry()
        self.partner = derangement(self.ids, seed) if derange_pairs else {v: v for v in self.ids}
        self.feature_of = self._feature_sources()

    def _feature_sources(self) -> list[tuple[Path, int]]:
        """Per segment: the feature file and segment index its video rows come from."""
        by_video: dict[str, list[Segment]] = {}
        for seg in self.segments:
            by_video.setdefault(seg.video_id, []).append(seg)
        out, position = [], Counter()
        for seg in self.segments:
            other = by_video[self.partner[seg.video_id]]
            source = other[position[seg.video_id] % len(other)]
            position[seg.video_id] += 1
            out.append((source.feature_path, source.index))
        return out

    def _open_videos(self, ids: list[str], width: int | None) -> None:
        """Keep the usable videos of the split; warn for each skipped one; fail if none is left."""
        self.segments, self.skipped = usable_segments(self.root, ids, width)
        for vid, why in self.skipped.items():
            warnings.warn(f"{self.root}: skipping video {vid!r} ({self.split} split): {why}. "
                          f"Re-run `vcmr prepare` for it or remove it from the dataset", stacklevel=3)
        self.ids = [i for i in ids if i not in self.skipped]
        if ids and not self.ids:
            reasons = "; ".join(f"{v}: {w}" for v, w in list(self.skipped.items())[:3])
            raise PreparedDataError(
                f"{str(self.root)!r}: none of the {len(ids)} video(s) of the {self.split!r} split is "
                f"usable ({reasons}{' ...' if len(self.skipped) > 3 else ''}); re-run `vcmr prepare`")

    def _check_geometry(self) -> None:
        first = self.segments[0] if self.segments else None
        if first is None:
            raise PreparedDataError(f"{self.root}: no audio segments for split {self.split!r}")
        info = sf.info(os.fsencode(first.audio_path))
        self.source_rate = info.samplerate
        self.segment_seconds = round(info.frames / info.samplerate)
        self.feature_dim = int(np.load(first.feature_path, mmap_mode="r").shape[1])
        if info.frames * self.sample_rate / info.samplerate < self.audio_length:
            raise PreparedDataError(
                f"audio segments are {self.segment_seconds} s but audio_length={self.audio_length} "
                f"samples needs {self.audio_length / self.sample_rate:.2f} s; use a smaller SampleCNN input")
        if self.n_seconds > self.segment_seconds:
            raise PreparedDataError(f"a {self.n_seconds} s video crop does not fit {self.segment_seconds} s segments")

    def __len__(self) -> int:
        return len(self.segments)

    def crop_start(self, idx: int) -> int:
        """Start of the audio crop in samples at ``sample_rate`` (random in training)."""
        seg_len = self.segment_seconds * self.sample_rate
        # the video crop [sec, sec + n_seconds) must stay inside the segment
        last_sec = self.segment_seconds - self.n_seconds
        max_start = min(seg_len - self.audio_length, (last_sec + 1) * self.sample_rate - 1)
        if self.split != "train":
            return 0
        # ``epoch`` is set in the reading process (vcmr.data.sampling.EpochItems)
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        return int(rng.integers(0, max_start + 1))

    def __getitem__(self, idx: int):
        seg = self.segments[idx]
        start = self.crop_start(idx)
        second = start // self.sample_rate
        src_start = int(start * self.source_rate / self.sample_rate)
        n_src = int(np.ceil(self.audio_length * self.source_rate / self.sample_rate))
        x, _ = sf.read(os.fsencode(seg.audio_path), start=src_start, frames=n_src, dtype="float32", always_2d=False)
        x = resample(to_mono(x), self.source_rate, self.sample_rate)
        x = np.pad(x, (0, max(0, self.audio_length - len(x))))[: self.audio_length]
        feature_path, feature_index = self.feature_of[idx]
        feats = np.load(feature_path, mmap_mode="r")
        row = feature_index * self.segment_seconds + second
        v = np.array(feats[row: row + self.n_seconds], dtype=np.float32)  # copy out of the memmap
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(v), idx
