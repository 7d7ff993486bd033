"""Why a video and a piece of music matched: the per-second audio <-> video similarity timeline.

    from vcmr.evaluate.explain import similarity_timeline, write_explanation
    tl = similarity_timeline(model, audio, 16000, frame_features)   # a stage-2 EmbeddingModel
    tl.seconds, tl.similarity                                        # (N,), (N,)
    write_explanation(tl, "out", "song_video", segment_seconds=10)   # out/song_video.{png,csv}

Definition (also in docs/using-models.md, "Retrieval"). The audio and the frame features start
together at time 0; row ``s`` of the features describes second ``s`` (``[s, s + 1)``).
``N = min(whole seconds of audio, feature rows)`` points, one per second ``s = 0..N-1``. The
video branch reads ``n = model.video_seconds`` rows at a time (the LSTM ends in one clip-level
output, so there is no per-second output to read off): the window of second ``s`` is rows
``s - (n - 1) // 2 .. s - (n - 1) // 2 + n - 1``, centred on the middle of second ``s`` for odd
``n`` and half a second later (the end of second ``s``) for even ``n``; near the ends it is
shifted inward to stay within the ``N`` seconds (the CSV gives each window). The audio window,
``model.segment_samples`` long, is centred on the centre of the video window (and shifted inward
the same way; audio shorter than one window is zero-padded), so both branches see the same span
of time. The similarity is the cosine of the two joint-space embeddings, the score
``vcmr retrieve`` ranks by.

matplotlib (``train`` extra) is imported only when the PNG is drawn.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from vcmr.audio.io import read_audio, resample
from vcmr.data.audio_visual import list_segments
from vcmr.errors import VcmrError
from vcmr.inference import to_mono_waveform
from vcmr.paths import atomic_output

__all__ = ["Timeline", "window_rows", "audio_window_starts", "similarity_timeline",
           "write_explanation", "explanation_name", "explain_hits"]

CHUNK_SECONDS = 256  # timeline points embedded at a time: memory bounded for hour-long audio


class Timeline(NamedTuple):
    """``seconds`` (N,) int, ``similarity`` (N,) cosine, and each point's window
    ``window_start`` / ``window_end`` (N,) in seconds (the video rows the point reads)."""
    seconds: np.ndarray
    similarity: np.ndarray
    window_start: np.ndarray
    window_end: np.ndarray


def window_rows(n_points: int, n: int) -> np.ndarray:
    """First feature row of the ``n``-row window of each second ``0..n_points-1`` (rule above)."""
    if n_points < n:
        raise VcmrError(f"a timeline needs at least {n} seconds of audio and of frame features "
                        f"(the model's video window), got {n_points}")
    s = np.arange(n_points)
    return np.clip(s - (n - 1) // 2, 0, n_points - n).astype(np.int64)


def audio_window_starts(rows: np.ndarray, n: int, n_samples: int, segment: int,
                        sample_rate: int) -> np.ndarray:
    """First sample of the audio window of each point: centred on the centre of its video window
    (``rows + n / 2`` seconds), shifted inward to lie within the audio when it is long enough."""
    start = np.floor((rows + n / 2) * sample_rate - segment / 2 + 0.5).astype(np.int64)  # halves up
    return np.clip(start, 0, max(0, n_samples - segment))


def _check_model(model) -> None:
    if getattr(model, "stage", None) != "video":
        raise VcmrError(f"a similarity timeline needs a stage-2 (video-conditioned) model; "
                        f"{getattr(model, 'source', 'this model')} is stage "
                        f"{getattr(model, 'stage', None)!r}")


def _features(frame_features: Any, width: int) -> np.ndarray:
    f = np.asarray(frame_features, dtype=np.float32)
    if f.ndim != 2 or f.shape[1] != width:
        raise VcmrError(f"frame features of shape {f.shape} do not fit this model: give "
                        f"(seconds, {width}) per-second features (from `vcmr prepare` with the "
                        f"frame encoder the model was trained with)")
    if not np.isfinite(f).all():
        raise VcmrError("the frame features contain NaN or infinite values")
    return f


def similarity_timeline(model, audio: Any, sample_rate: int, frame_features: Any) -> Timeline:
    """Per-second cosine similarity of ``audio`` (any length, mono or multi-channel, at
    ``sample_rate`` Hz) and ``frame_features`` ((seconds, feature_dim)) under a stage-2
    ``EmbeddingModel``, by the rule in the module docstring."""
    _check_model(model)
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise VcmrError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    x = to_mono_waveform(audio)
    if x.size == 0 or not np.isfinite(x).all():
        raise VcmrError("the audio is empty or contains NaN or infinite samples")
    sr, seg, n = model.sample_rate, model.segment_samples, model.video_seconds
    x = resample(x, int(sample_rate), sr)
    feats = _features(frame_features, model.net.video_encoder.feature_dim)
    n_points = min(len(x) // sr, len(feats))
    rows = window_rows(n_points, n)
    starts = audio_window_starts(rows, n, len(x), seg, sr)
    sims = []
    for i in range(0, n_points, CHUNK_SECONDS):
        r = rows[i:i + CHUNK_SECONDS]
        a = model.embed_segments(_windows(x, seg, starts[i:i + CHUNK_SECONDS]), space="joint").cpu()
        v = torch.as_tensor(model.embed_video_features(np.stack([feats[k:k + n] for k in r])))
        sims.append((F.normalize(a, dim=1) * F.normalize(v, dim=1)).sum(1).numpy())
    return Timeline(np.arange(n_points), np.concatenate(sims).astype(np.float64),
                    rows.astype(np.float64), (rows + n).astype(np.float64))


# ----------------------------------------------------------------------------- output files
def explanation_name(query: str, match: str) -> str:
    """``<query>_<match>`` as a file name: characters other than letters, digits, ``-``, ``_``
    and ``.`` replaced by ``_``, each side cut to 80 characters."""
    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:80].strip(".") or "_"
    return f"{clean(query)}_{clean(match)}"


def write_explanation(timeline: Timeline, out_dir: str | Path, name: str,
                      segment_seconds: int | None = None, title: str | None = None,
                      highlight_segment: int | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/name.csv`` (second, similarity, segment, window_start, window_end;
    segment = ``second // segment_seconds``, empty without ``segment_seconds``) and
    ``out_dir/name.png`` (the timeline; segments shaded, ``highlight_segment`` marked).
    Returns (png path, csv path)."""
    out = Path(out_dir)
    segments = (timeline.seconds // segment_seconds if segment_seconds
                else [None] * len(timeline.seconds))
    csv_path, png_path = out / f"{name}.csv", out / f"{name}.png"
    with atomic_output(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["second", "similarity", "segment", "window_start", "window_end"])
        for s, sim, seg, a, b in zip(timeline.seconds, timeline.similarity, segments,
                                     timeline.window_start, timeline.window_end):
            w.writerow([int(s), f"{sim:.6f}", "" if seg is None else int(seg), int(a), int(b)])
    with atomic_output(png_path) as tmp:
        _plot(timeline, tmp, segment_seconds, title or name, highlight_segment)
    return png_path, csv_path


def _plot(tl: Timeline, path: Path, segment_seconds, title: str, highlight) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.12 * len(tl.seconds) + 4)), 3.2))
    if segment_seconds:
        for k, lo in enumerate(range(0, len(tl.seconds), segment_seconds)):
            hi = min(lo + segment_seconds, len(tl.seconds))
            colour = "#f4c27a" if k == highlight else ("#eeeeee" if k % 2 else "#ffffff")
            ax.axvspan(lo, hi, color=colour, zorder=0)
            ax.text((lo + hi) / 2, 1.02, f"seg {k}", ha="center", va="bottom", fontsize=7,
                    transform=ax.get_xaxis_transform())
    # one step per second: point s covers [s, s + 1)
    ax.stairs(tl.similarity, np.append(tl.seconds, len(tl.seconds)), color="#1f5fa8", lw=1.6, baseline=None)
    ax.set_xlim(0, len(tl.seconds))
    ax.set_ylim(min(-0.05, float(tl.similarity.min()) - 0.05), 1.0)
    ax.set_xlabel("second")
    ax.set_ylabel("audio-video cosine")
    ax.set_title(title, fontsize=9, pad=14)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- vcmr retrieve
def video_audio(root: Path, video_id: str, sample_rate: int) -> tuple[np.ndarray, int]:
    """The audio of a prepared video (its segments in order, joined) and its segment length in
    whole seconds."""
    parts = [read_audio(seg.audio_path, sample_rate=sample_rate)[0]
             for seg in list_segments(root, [video_id])]
    return np.concatenate(parts), max(1, round(len(parts[0]) / sample_rate))


def explain_hits(model, dataset_dir, hits: list[dict], out_dir, query_video: str | None = None,
                 query_audio: str | None = None) -> list[tuple[Path, Path]]:
    """Timelines of ``vcmr retrieve``'s hits, one (png, csv) pair per hit, in order.

    ``query_video``: the hits are music segments ``{"id", "segment"}``; each timeline compares
    the matched video's whole audio with the query video's features, the hit segment marked.
    ``query_audio``: the hits are videos ``{"id"}``; each compares the query file's audio with
    the matched video's features. The CSV's segment is the matched video's segment."""
    root, sr = Path(dataset_dir), model.sample_rate
    out, cache = [], {}  # video id -> (timeline, segment seconds): several hits may share a video
    if query_audio is not None:
        audio = read_audio(query_audio, sample_rate=sr)[0]
    for hit in hits:
        vid = hit["id"]
        if vid not in cache:
            match_audio, seg_seconds = video_audio(root, vid, sr)
            if query_video is not None:
                tl = similarity_timeline(model, match_audio, sr, np.load(root / "video" / f"{query_video}.npy"))
            else:
                tl = similarity_timeline(model, audio, sr, np.load(root / "video" / f"{vid}.npy"))
            cache[vid] = tl, seg_seconds
        tl, seg_seconds = cache[vid]
        if query_video is not None:
            name = explanation_name(query_video, f"{vid}_segment{hit['segment']}")
            title = f"video {query_video} vs music of {vid} (hit: segment {hit['segment']})"
        else:
            name, title = explanation_name(Path(query_audio).stem, vid), f"{query_audio} vs video {vid}"
        out.append(write_explanation(tl, out_dir, name, seg_seconds, title, hit.get("segment")))
    return out


def _windows(x: np.ndarray, segment: int, starts: np.ndarray) -> np.ndarray:
    """``(len(starts), segment)`` windows of ``x`` (zero-padded past its end)."""
    w = np.zeros((len(starts), segment), dtype=np.float32)
    for j, s in enumerate(starts):
        piece = x[int(s):int(s) + segment]
        w[j, :len(piece)] = piece
    return w
