"""Many music videos at the features level: a prepared dataset written directly, without mp4s.

Stage 2 needs many videos to find a subtle audio-video link, and rendering, encoding, decoding
and embedding frames costs most of the time of a synthetic corpus. This path skips the pictures:
it writes the layout ``vcmr prepare`` writes (``manifest.jsonl``, ``audio/<id>/<id>_<k>.wav``,
``video/<id>.npy``), with the per-second frame features drawn from what a frame encoder would see
in the video (:func:`visual_features`). The mp4 path (:mod:`vcmr.demo.synth.corpus`) stays the
one that exercises the preparation pipeline.

What the pictures show, per second (each a fixed random direction of the feature space, the
"camera" of the world, the same for every video of a seed):

- the **mode** (major: warm palette, minor: cool palette) with weight ``visual_mode``: the
  visually grounded attribute. In the audio it is only the mode's figure at level
  ``mode_salience`` (:func:`vcmr.demo.synth.music.render_music`: the tonic triad arpeggiated
  on every beat, rising in major and falling in minor, in any key and register), which a
  frozen random encoder does not read (probe ROC-AUC about 0.5) and a trained one learns
  (about 0.9, see docs/synthetic-data.md);
- the **instruments** (one shape each) with weight ``visual_instruments``: audible and visible;
- per-scene layout (new random offset at each cut) and per-second noise: visible, not audible.

Tempo and dynamics are not shown: they are audible, and a video that showed them would let
stage 2 align on them first (they are the easiest link).

    from vcmr.demo.synth.features import write_feature_corpus
    rows = write_feature_corpus("data/av_features", n=400, seed=0)
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vcmr.audio.io import write_wav
from vcmr.demo.synth.corpus import normal_cuts, youtube_like_id
from vcmr.demo.synth.music import render_music
from vcmr.demo.synth.parallel import run_parallel
from vcmr.demo.synth.tags import INSTRUMENTS, random_tags
from vcmr.errors import VcmrError
from vcmr.paths import write_bytes_atomic


@dataclass(frozen=True)
class FeatureWorld:
    """The settings of a features-level corpus (saved in its ``world.json``)."""
    n_segments: int = 4
    segment_seconds: int = 3
    sample_rate: int = 8000
    feature_dim: int = 64
    mode_salience: float = 2.0
    visual_mode: float = 3.0
    visual_instruments: float = 0.3
    visual_scene: float = 1.0
    visual_noise: float = 0.5
    scene_range: tuple[float, float] = (2.0, 6.0)


def camera(world: FeatureWorld, seed: int) -> dict[str, np.ndarray]:
    """The fixed unit directions of the world's feature space: 'mode' and one per instrument."""
    rng = np.random.default_rng([seed, 5150])
    names = ["mode", *INSTRUMENTS]
    dirs = rng.standard_normal((len(names), world.feature_dim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return dict(zip(names, dirs))


def visual_features(spec: dict, world: FeatureWorld, cam: dict[str, np.ndarray],
                    rng: np.random.Generator) -> np.ndarray:
    """``(n_seconds, feature_dim)`` float32 features of one video (see the module docstring)."""
    n = world.n_segments * world.segment_seconds
    sign = 1.0 if spec["mode"] == "major" else -1.0
    base = world.visual_mode * sign * cam["mode"]
    for inst in spec["instruments"]:
        base = base + world.visual_instruments * cam[inst]
    scene_of = np.searchsorted(np.asarray(spec["scene_cuts"]), np.arange(n) + 0.5)
    scenes = rng.standard_normal((int(scene_of.max()) + 1, world.feature_dim))
    scenes *= world.visual_scene / np.sqrt(world.feature_dim)
    noise = rng.standard_normal((n, world.feature_dim)) * world.visual_noise / np.sqrt(world.feature_dim)
    return (base[None] + scenes[scene_of] + noise).astype(np.float32)


def plan_feature_corpus(n: int, seed: int, world: FeatureWorld) -> list[dict]:
    """Per-video specs (id, tags, mode, seed, scene cuts), drawn in the parent process; modes
    alternate in a shuffled order so both are equally frequent."""
    if n < 2:
        raise VcmrError(f"a features-level corpus needs at least 2 videos, got n={n}")
    rng = np.random.default_rng([seed, 9091])
    modes = rng.permutation(np.arange(n) % 2)
    ids, specs = set(), []
    duration = world.n_segments * world.segment_seconds
    for i in range(n):
        vid = youtube_like_id(rng)
        while vid in ids:
            vid = youtube_like_id(rng)
        ids.add(vid)
        specs.append({"id": vid, "tags": random_tags(rng), "mode": ("major", "minor")[modes[i]],
                      "seed": int(rng.integers(0, 2**31 - 1)),
                      "scene_cuts": normal_cuts(duration, rng, world.scene_range)})
    return specs


def _render(job: tuple) -> dict:
    spec, root, world, cam = job
    w = FeatureWorld(**world)
    duration = w.n_segments * w.segment_seconds
    clip = render_music(spec["tags"], duration, w.sample_rate, spec["seed"], mode=spec["mode"],
                        mode_salience=w.mode_salience)
    seg = w.segment_seconds * w.sample_rate
    vid, root = spec["id"], Path(root)
    files = []
    for k in range(w.n_segments):
        rel = f"audio/{vid}/{vid}_{k}.wav"
        write_wav(root / rel, clip.audio[k * seg:(k + 1) * seg], w.sample_rate)
        files.append(rel)
    facts = {**spec, "tags": clip.tags, "instruments": clip.instruments, "tempo_bpm": clip.tempo_bpm,
             "key": clip.key, "dynamics": clip.dynamics}
    feats = visual_features(facts, w, cam, np.random.default_rng([spec["seed"], 77]))
    _save_npy(root / "video" / f"{vid}.npy", feats)
    return {**facts, "audio_files": files, "video_file": f"video/{vid}.npy"}


def _save_npy(path: Path, x: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    write_bytes_atomic(path, buf.getvalue())


def write_feature_corpus(out_dir, n: int, seed: int = 0, world: FeatureWorld | None = None,
                         workers: int | None = None, progress: bool = False) -> list[dict]:
    """Write ``n`` videos at the features level into ``out_dir`` (a prepared dataset that
    ``vcmr train music`` (its ``audio/``) and ``vcmr train video`` read as they are). Returns the
    rows of its ``metadata.jsonl`` (tags, mode, instruments, tempo, ...)."""
    world = world or FeatureWorld()
    out = Path(out_dir)
    (out / "video").mkdir(parents=True, exist_ok=True)
    cam = camera(world, seed)
    specs = plan_feature_corpus(n, seed, world)
    jobs = [(s, str(out), asdict(world), cam) for s in specs]
    rows = run_parallel(_render, jobs, workers, progress, desc="feature-level videos")
    manifest = [{"id": r["id"], "source": "synthetic-features", "status": "kept", "reason": None,
                 "n_segments": world.n_segments, "feature_dim": world.feature_dim,
                 "audio_files": r["audio_files"], "video_file": r["video_file"]} for r in rows]
    write_bytes_atomic(out / "manifest.jsonl", "".join(json.dumps(m) + "\n" for m in manifest).encode())
    write_bytes_atomic(out / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    write_bytes_atomic(out / "world.json", json.dumps({"seed": seed, **asdict(world)}, indent=1).encode())
    return rows
