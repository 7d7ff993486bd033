"""One held-out example for the demo report: which seconds of a video matched which music
(``vcmr retrieve --explain``). The audio is the video's own music for the first half and the
music of another held-out video, of the other mode, for the second half; the real stage 2
should follow its own music and drop on the other."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

import vcmr
from vcmr.data.audio_visual import kept_ids, split_ids
from vcmr.evaluate.explain import similarity_timeline, write_explanation


def _audio(root: Path, row: dict) -> tuple[np.ndarray, int]:
    parts = [sf.read(root / f, dtype="float32") for f in row["audio_files"]]
    return np.concatenate([x for x, _ in parts]), parts[0][1]


def explain_example(stage2_ckpt: str, cfg, out_dir: Path) -> dict[str, Any] | None:
    """Write ``out_dir/explain_example.{png,csv}``; returns what the report says about it."""
    root = Path(cfg.dataset_dir)
    meta = {r["id"]: r for r in map(json.loads, (root / "metadata.jsonl").read_text().splitlines())}
    held = split_ids(kept_ids(root), "valid", cfg.valid_fraction)
    if len(held) < 2:
        return None
    first = meta[held[0]]
    other = next((meta[i] for i in held[1:] if meta[i]["mode"] != first["mode"]), meta[held[1]])
    a, sr = _audio(root, first)
    b, _ = _audio(root, other)
    half = len(a) // 2
    audio = np.concatenate([a[:half], b[half:len(a)]])
    feats = np.load(root / "video" / f"{first['id']}.npy")
    model = vcmr.load_model(stage2_ckpt, device="cpu")
    tl = similarity_timeline(model, audio, sr, feats)
    seg = int(cfg.segment_seconds)
    png, csv = write_explanation(tl, out_dir, "explain_example", segment_seconds=seg,
                                 title=f"held-out video {first['id']} ({first['mode']}): its music, then "
                                       f"{other['id']}'s ({other['mode']}) from {half / sr:g} s")
    cut = tl.seconds < half / sr
    return {"video": first["id"], "video_mode": first["mode"], "other": other["id"],
            "other_mode": other["mode"], "switch_second": half / sr, "png": str(png), "csv": str(csv),
            "mean_own": float(tl.similarity[cut].mean()), "mean_other": float(tl.similarity[~cut].mean())}
